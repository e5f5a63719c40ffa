"""The package's import graph, read from the source with ``ast``: no module imports itself back, directly or
through others (issue 17: ``budget.py <-> transfer.py`` was a cycle hidden behind a function-level import).

Function-level imports count too: they only postpone a cycle to the first call."""

import importlib
import importlib.util
import sys
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
    found = STRUCTURE.imported_names(name, path.name == "__init__.py", path.read_text())
    return {m for m in found if m in MODULES and m != name}


def _load_structure():
    """benchmarks/structure.py, whose ``cycles`` (Tarjan's algorithm) also reports cycles in STRUCTURE.md."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "structure.py"
    spec = importlib.util.spec_from_file_location("structure", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("structure", module)  # its dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


STRUCTURE = _load_structure()
#: Every strongly connected group of more than one module, sorted: one implementation for the test and the report.
find_cycles = STRUCTURE.cycles


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
