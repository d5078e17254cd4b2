# gamio: `make demo` runs the embedded offline pipeline, `make test` runs the whole suite.
# Both install everything they need on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 5000
ARTIFACTS ?= artifacts
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench bench-quick clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium drives the play-page test; installed once, skipped when already there.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; }

demo: install
	$(PY) -m scraping paths.artifacts=$(ARTIFACTS)
	$(PY) -m training paths.artifacts=$(ARTIFACTS)
	$(PY) -m eval paths.artifacts=$(ARTIFACTS)
	$(PY) -m serving model=best host=127.0.0.1 port=$(PORT) paths.artifacts=$(ARTIFACTS)

test: install browser
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# Every bench/*_bench.py (`python -m bench --help`); bench-quick is each bench's quick mode, a few minutes.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf $(ARTIFACTS) .pytest_cache
