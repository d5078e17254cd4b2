"""Run the benchmarks: every `bench/<name>_bench.py`, each in its own child process.

    python -m bench [--quick] [--only NAME,...] [--record]

Benches are found by file name, so a new `bench/<name>_bench.py` is run without editing this file. Each one is
started as `python bench/<name>_bench.py [--quick] [--record]` (its own process, so that its imports, monkey
patches and sys.exit stay its own); its output streams through. A failing bench is reported and the others still
run; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import ast
import logging
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")
HERE = Path(__file__).resolve().parent
SUFFIX = "_bench.py"


def discover(folder: Path = HERE) -> dict[str, Path]:
    """{name: script} for every `<name>_bench.py` in `folder`, by name."""
    return {path.name.removesuffix(SUFFIX): path for path in sorted(folder.glob(f"*{SUFFIX}"))}


def summary(path: Path) -> str:
    """The first line of a bench's docstring, read without importing it (imports pull in torch)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.partition("\n")[0]


def parse_args(benches: dict[str, Path], argv: list[str] | None) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<12} {summary(path)}" for name, path in benches.items())
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.partition("\n")[0],
                                     epilog=f"benchmarks (bench/<name>{SUFFIX}):\n{listing}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="each bench's quick mode (a few minutes in all)")
    parser.add_argument("--only", metavar="NAME,...", help=f"comma-separated subset of: {', '.join(benches)}")
    parser.add_argument("--record", action="store_true", help="each bench writes its section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    args.names = list(benches)
    if args.only is not None:
        args.names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in args.names if name not in benches]
        if unknown or not args.names:
            # One line, no usage block: the valid names are what the caller needs.
            what = f"unknown bench {', '.join(unknown)}" if unknown else "--only names no bench"
            parser.exit(2, f"{parser.prog}: error: {what}; valid names: {', '.join(benches)}\n")
    return args


def run(name: str, script: Path, flags: list[str]) -> tuple[int, float]:
    log.info("%s: python %s %s", name, script.relative_to(HERE.parent), " ".join(flags))
    started = time.perf_counter()
    try:
        code = subprocess.run([sys.executable, str(script), *flags], cwd=HERE.parent).returncode
    except OSError as exc:  # could not even start: the other benches still run
        log.error("%s: cannot start: %s", name, exc)
        code = 1
    seconds = time.perf_counter() - started
    if code:
        log.error("%s: FAILED (exit status %d) after %.1f s", name, code, seconds)
    else:
        log.info("%s: passed in %.1f s", name, seconds)
    return code, seconds


def main(argv: list[str] | None = None) -> int:
    benches = discover()
    args = parse_args(benches, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    flags = [flag for flag, on in (("--quick", args.quick), ("--record", args.record)) if on]
    results = {name: run(name, benches[name], flags) for name in args.names}
    total = sum(seconds for _, seconds in results.values())
    print("\n".join(["", "| bench | result | wall s |", "|---|---|---:|",
                     *(f"| {name} | {'FAILED (' + str(code) + ')' if code else 'passed'} | {seconds:.1f} |"
                       for name, (code, seconds) in results.items()),
                     f"| total | {sum(not code for code, _ in results.values())}/{len(results)} passed | "
                     f"{total:.1f} |"]), flush=True)
    return 1 if any(code for code, _ in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
