"""`python -m bench`: benches found by file name, --only checked, a failure reported without stopping the rest."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.paths import REPO_ROOT
BENCHES = sorted(p.name.removesuffix("_bench.py") for p in (REPO_ROOT / "bench").glob("*_bench.py"))


def run_bench(*args: str, cwd: Path = REPO_ROOT, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_every_bench_file():
    done = run_bench("--help")
    assert done.returncode == 0, done.stderr
    assert {"conversion", "scraping", "training", "serving", "eval"} <= set(BENCHES)
    listing = done.stdout.partition("benchmarks (bench/<name>_bench.py):")[2].split()
    assert all(name in listing for name in BENCHES)


def test_unknown_only_name_is_a_one_line_error_naming_the_valid_ones():
    done = run_bench("--only", "serving,nosuch")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "nosuch" in lines[0]
    assert all(name in lines[0] for name in BENCHES)


def test_new_bench_file_is_run_with_the_flags_and_a_failure_does_not_stop_the_rest(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    shutil.copy(REPO_ROOT / "bench" / "__main__.py", bench)
    (bench / "__init__.py").write_text("")
    (bench / "a_bench.py").write_text('"""Fails."""\nimport sys\nsys.exit(3)\n')
    (bench / "b_bench.py").write_text('"""Writes its flags."""\nimport sys, pathlib\n'
                                      'pathlib.Path("b.out").write_text(" ".join(sys.argv[1:]))\n')
    done = run_bench("--quick", cwd=tmp_path)
    assert done.returncode == 1
    assert (tmp_path / "b.out").read_text() == "--quick"
    assert "| a | FAILED (3) |" in done.stdout and "| b | passed |" in done.stdout
    assert "a: FAILED (exit status 3)" in done.stderr


@pytest.mark.slow
def test_scraping_quick_runs_end_to_end_through_the_runner(tmp_path):
    done = run_bench("--quick", "--only", "scraping", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| crawl: HTTP requests per link followed" in done.stdout  # the bench's own table came through
    assert "| scraping | passed |" in done.stdout and "1/1 passed" in done.stdout
