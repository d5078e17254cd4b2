"""Project-wide shape rules: no import circles between the project's modules (imports inside functions
count too: a lazy import is still a dependency), and no module file over 400 lines."""
from __future__ import annotations

import ast
from pathlib import Path

from adventure.paths import REPO_ROOT

PACKAGES = ("adventure", "scraping", "training", "conversion", "eval", "serving", "bench")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            if "metrics" in parts[:-1] and parts[0] == "eval":
                continue  # evaluate modules load by path, outside the package graph
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that `name` imports anywhere in its file (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["serving.queue.worker"] >= {"adventure.turns"}  # the scan sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_sees_lazy_circles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_400_lines():
    long = {str(path.relative_to(REPO_ROOT)): n for path in project_modules().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


# ---- serving's rooms (serving/README.md): storage/ owns the database, web/ and compat/ only speak HTTP ----------

DRIVERS = ("sqlite3", "psycopg", "psycopg_pool")


def external_imports(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_storage_imports_a_database_driver():
    outside = {name: sorted(external_imports(path) & set(DRIVERS)) for name, path in project_modules().items()
               if name.startswith("serving.") and not name.startswith("serving.storage")}
    assert not {name: drivers for name, drivers in outside.items() if drivers}


def test_web_and_compat_reach_the_game_only_through_the_game_tier():
    modules = project_modules()
    for name, path in modules.items():
        if not name.startswith(("serving.web", "serving.compat")):
            continue
        below = {m for m in imports_of(name, path, modules) if m.startswith(("serving.storage", "serving.queue"))}
        assert not below, f"{name} imports {sorted(below)}: ask the game tier (serving/game/) instead"
        touched = {node.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, ast.Attribute) and node.attr in ("store", "worker", "hub", "database")}
        assert not touched, f"{name} reaches into the game tier's {sorted(touched)}"


def test_the_layout_rules_see_real_imports():
    modules = project_modules()
    assert "sqlite3" in external_imports(modules["serving.storage.sqlite"])
    assert "psycopg" in external_imports(modules["serving.storage.postgres"])
    assert "serving.game.tier" in imports_of("serving.web.story", modules["serving.web.story"], modules)
