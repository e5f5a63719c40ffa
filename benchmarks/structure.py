"""The shape of stlib/, measured with ``ast``: longest functions and classes, import cycles, and how many places
list ``stylize``'s options (what adding an option has to touch). Issue 17's before/after.

    .venv/bin/python benchmarks/structure.py --before a1fcfa9 --after WORKTREE   # writes benchmarks/STRUCTURE.md

``--before``/``--after`` are git revisions (read with ``git archive``, nothing is checked out) or WORKTREE
for the files as they are on disk.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: stylize's keywords that are not run options (which network, where, regions, run control).
NOT_OPTIONS = {"model", "weights", "pooling", "device", "style_masks", "callback", "progress", "stop"}
#: A node that names at least this many options is a place where the options are listed.
LISTING = 5


@dataclass
class Tree:
    """stlib's Python files of one revision: ``{relative path: source}``."""

    label: str
    files: dict[str, str]


def read_tree(rev: str) -> Tree:
    if rev == "WORKTREE":
        return Tree(rev, {str(p.relative_to(REPO)): p.read_text() for p in sorted((REPO / "stlib").rglob("*.py"))})
    blob = subprocess.run(["git", "archive", rev, "stlib"], cwd=REPO, capture_output=True, check=True).stdout
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".py"):
                files[member.name] = tar.extractfile(member).read().decode()
    return Tree(rev, files)


def module_of(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(module: str, is_package: bool, source: str) -> set[str]:
    """Every dotted name ``module`` imports anywhere in ``source`` (absolute or relative imports, function-level
    ones included), with ``from a import b`` giving both ``a`` and ``a.b`` (b may be a submodule)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def imports(tree: Tree) -> dict[str, set[str]]:
    """Module -> the stlib modules it imports anywhere (function-level imports included); packages' __init__
    modules are left out as targets (they import nothing back)."""
    modules = {module_of(p): p for p in tree.files}
    packages = {m for m, p in modules.items() if p.endswith("__init__.py")}
    graph = {}
    for mod, path in modules.items():
        found = imported_names(mod, path.endswith("__init__.py"), tree.files[path])
        graph[mod] = {m for m in found if m in modules and m != mod} - packages
    return {m: d for m, d in graph.items() if m not in packages}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def longest(tree: Tree, kind: type, n: int = 8) -> list[tuple[int, str]]:
    """The ``n`` longest functions (or classes): (lines, "path:line name")."""
    found = []
    for path, src in tree.files.items():
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, kind):
                found.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)[:n]


def option_names(tree: Tree) -> set[str]:
    """stylize's run options: its keyword-only parameters minus ``NOT_OPTIONS``."""
    for node in ast.walk(ast.parse(tree.files["stlib/transfer.py"])):
        if isinstance(node, ast.FunctionDef) and node.name == "stylize":
            return {a.arg for a in node.args.kwonlyargs} - NOT_OPTIONS
    raise SystemExit("no stylize in stlib/transfer.py")


def listings(tree: Tree, options: set[str]) -> list[str]:
    """Places that list at least ``LISTING`` option names: signatures, calls with keywords, dict literals,
    class bodies, functions reading them back (``o["steps"]``, ``args.steps``) or adding CLI flags."""
    flags = {"--" + o.replace("_", "-") for o in options}
    sites = []
    for path, src in tree.files.items():
        for node in ast.walk(ast.parse(src)):
            what, names = None, set()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = {a.arg for a in node.args.args + node.args.kwonlyargs} & options
                what = f"signature of {node.name}"
                reads = {s.slice.value for s in ast.walk(node) if isinstance(s, ast.Subscript)
                         and isinstance(s.slice, ast.Constant) and s.slice.value in options}
                reads |= {a.attr for a in ast.walk(node) if isinstance(a, ast.Attribute) and a.attr in options
                          and isinstance(a.value, ast.Name) and a.value.id in ("args", "o", "options")}
                added = {c.args[0].value for c in ast.walk(node) if isinstance(c, ast.Call) and c.args
                         and isinstance(c.args[0], ast.Constant) and c.args[0].value in flags}
                if len(reads) >= LISTING:
                    sites.append(f"{path}:{node.lineno} reads back in {node.name} ({len(reads)})")
                if len(added) >= LISTING:
                    sites.append(f"{path}:{node.lineno} CLI flags in {node.name} ({len(added)})")
            elif isinstance(node, ast.Call):
                names = {k.arg for k in node.keywords if k.arg} & options
                func = ast.unparse(node.func)
                what = f"call of {func}"
            elif isinstance(node, ast.Dict):
                names = {k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in options}
                what = "dict literal"
            elif isinstance(node, ast.ClassDef):
                names = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                         and isinstance(s.target, ast.Name)} & options
                what = f"fields of class {node.name}"
            if what and len(names) >= LISTING:
                sites.append(f"{path}:{node.lineno} {what} ({len(names)})")
    return sorted(sites)


def report(tree: Tree) -> dict:
    graph = imports(tree)
    options = option_names(tree)
    return {"functions": longest(tree, (ast.FunctionDef, ast.AsyncFunctionDef)), "classes": longest(tree, ast.ClassDef),
            "cycles": cycles(graph), "options": options, "listings": listings(tree, options),
            "modules": len(graph), "lines": sum(len(s.splitlines()) for s in tree.files.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="main")
    ap.add_argument("--after", default="WORKTREE")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "STRUCTURE.md"))
    args = ap.parse_args()
    runs = [(rev, report(read_tree(rev))) for rev in (args.before, args.after)]
    lines = ["# stlib's structure, before and after issue 17", "",
             f"Generated by `benchmarks/structure.py --before {args.before} --after {args.after}` (ast and the "
             "import statements; function-level imports count).", ""]
    lines += ["| | " + " | ".join(f"`{rev}`" for rev, _ in runs) + " |", "|---|---|---|"]
    lines.append("| modules / lines | " + " | ".join(f"{r['modules']} / {r['lines']}" for _, r in runs) + " |")
    lines.append("| import cycles | " + " | ".join(
        ("; ".join(" <-> ".join(c) for c in r["cycles"]) or "none") for _, r in runs) + " |")
    lines.append(f"| places that list >= {LISTING} of stylize's {len(runs[0][1]['options'])} options | " +
                 " | ".join(str(len(r["listings"])) for _, r in runs) + " |")
    half = len(runs[0][1]["options"]) // 2
    lines.append(f"| places that list >= {half} of them (the lists a new option is threaded through) | " +
                 " | ".join(str(sum(int(s.rsplit("(", 1)[1][:-1]) >= half for s in r["listings"])) for _, r in runs)
                 + " |")
    lines += ["", "What adding a plain option (say `style_scale`) must edit, read from the listings below: before, "
              "stylize's signature, its call of resolve_settings, resolve_settings' reads, RunSettings' fields, its "
              "construction and summary, and the CLI's flags and dict (studio: optional); after, the declaration "
              "(`RunOptions`) and stylize's signature, which tests/test_options.py checks against it. The other "
              "listings after are functions' own parameters (gatys, objective, estimate), the presets, the "
              "studio's own settings, and the options resolved against the preset or device (RunSettings), which "
              "a plain option does not enter."]
    for rev, r in runs:
        lines += ["", f"## `{rev}`", "", "Longest functions (lines):", ""]
        lines += [f"- {n} {where}" for n, where in r["functions"]]
        lines += ["", "Longest classes (lines):", ""]
        lines += [f"- {n} {where}" for n, where in r["classes"]]
        lines += ["", f"Places that list >= {LISTING} options (count of option names in each):", ""]
        lines += [f"- {site}" for site in r["listings"]]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
