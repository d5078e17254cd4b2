"""Every dependency in pyproject.toml has a lower bound, and `make test-lowest` installs exactly those bounds
(.ci/lowest_pins.py): the range pyproject.toml claims is the range that is tested."""
from __future__ import annotations

import subprocess
import sys

from adventure.paths import REPO_ROOT

PINS = REPO_ROOT / ".ci" / "lowest_pins.py"


def pins(pyproject=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PINS), *([str(pyproject)] if pyproject else [])],
                          capture_output=True, text=True, timeout=60)


def test_every_dependency_is_pinned_to_its_lower_bound():
    proc = pins()
    assert proc.returncode == 0, proc.stderr
    pinned = dict(line.split("==") for line in proc.stdout.split())
    assert pinned["transformers"] == "5.19"  # the oldest tested (5.0 failed the suite); .venv-vllm has it too
    assert {"torch", "numpy", "datasets", "accelerate", "openai", "pytest"} <= set(pinned)


def test_a_dependency_without_a_lower_bound_is_refused(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["torch>=2.13", "numpy"]\n', encoding="utf-8")
    proc = pins(pyproject)
    assert proc.returncode != 0 and "'numpy'" in proc.stderr and "no lower bound" in proc.stderr
