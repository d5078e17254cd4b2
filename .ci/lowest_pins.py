"""Print pip constraints that pin every dependency of pyproject.toml (and its dev extra) to its declared lower
bound: `make test-lowest` installs the project so and runs the tests, which proves that each `>=` in
pyproject.toml is a version gamio works with, not a guess. Dependencies not named there resolve as usual (newest).

    python .ci/lowest_pins.py > lowest.txt && pip install -e '.[dev]' -c lowest.txt

A dependency without a `>=` bound is an error: an open range claims every version ever released."""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(.*)$")


def lower_bounds(pyproject: Path) -> dict[str, str]:
    """{distribution: its `>=` version} for the dependencies and the dev extra."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *project.get("optional-dependencies", {}).get("dev", [])]
    bounds = {}
    for requirement in requirements:
        name, spec = REQUIREMENT.match(requirement.split(";")[0]).groups()
        found = re.search(r">=\s*([^,\s]+)", spec)
        if not found:
            raise SystemExit(f"error: {requirement!r} in {pyproject} has no lower bound (>=): "
                             "name the oldest version that is tested")
        bounds[name] = found.group(1)
    return bounds


def main() -> None:
    pyproject = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "pyproject.toml"
    for name, version in lower_bounds(pyproject).items():
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
