"""The package's import graph, read from the source with ``ast``: no module imports itself back, directly or
through others (issue 17: ``budget.py <-> transfer.py`` was a cycle hidden behind a function-level import).

Function-level imports count too: they only postpone a cycle to the first call."""

import ast
import importlib
from pathlib import Path

import pytest

import stlib

ROOT = Path(stlib.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = ["stlib", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The stlib modules that module ``name`` imports anywhere in its body (absolute or relative imports)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # "from . import settings"
    return {m for m in found if m in MODULES and m != name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def package_graph() -> dict[str, set[str]]:
    """Module -> the stlib modules it imports; a package's ``__init__`` is left out as a target (importing
    ``stlib.engine.x`` runs ``stlib.engine/__init__`` first, which imports nothing back)."""
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    return {name: deps - packages for name, deps in graph.items() if name not in packages}


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_are_resolved():
    deps = imported_modules("stlib.engine.budget", MODULES["stlib.engine.budget"])
    assert {"stlib.engine.objective", "stlib.model"} <= deps


def test_no_import_cycles_in_stlib():
    assert find_cycles(package_graph()) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    if name.startswith("stlib.studio"):
        pytest.importorskip("ipywidgets")
    importlib.import_module(name)
