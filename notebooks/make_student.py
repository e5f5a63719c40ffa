"""Write the student edition of the course: the notebooks without their exercise solutions.

The committed notebooks are the instructor's copy: every exercise has a hidden "Show a solution" block
(written by make_notebooks.py from ``stlib.checks.SOLUTIONS``). The student copy drops those blocks and all
outputs, and its set-up cell calls ``stlib.checks.hide_solutions()``, so ``stlib.checks.solution(...)`` and
the checks' "Stuck?" hints keep the answers back. The checks themselves are unchanged and still instant.

    python notebooks/make_student.py                  # writes student/ at the top of the repository (git-ignored)
    python notebooks/make_student.py --out DIR        # somewhere else, e.g. a folder to hand out
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def _course() -> tuple:
    """make_notebooks.COURSE (the script beside this one; not part of the stlib package)."""
    spec = importlib.util.spec_from_file_location("_stlib_make_notebooks", HERE / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COURSE

SOLUTION_MARK = "<summary><b>Show a solution</b>"
HIDE_CALL = "stlib.checks.hide_solutions()  # student edition: solutions are with your instructor"


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """True for the hidden solution blocks make_notebooks.py writes after each exercise."""
    return cell.cell_type == "markdown" and SOLUTION_MARK in cell.source


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without solution cells and outputs; the first cell that imports stlib also hides solutions."""
    out = nbformat.v4.new_notebook(metadata=dict(nb.metadata))
    out.metadata["stlib"] = {"edition": "student"}
    hidden = False
    for cell in nb.cells:
        if is_solution(cell):
            continue
        cell = nbformat.from_dict(dict(cell))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if not hidden and cell.source.rstrip().endswith("import stlib"):
                cell.source = f"{cell.source.rstrip()}\n{HIDE_CALL}"
                hidden = True
        out.cells.append(cell)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "student", help="folder for the student notebooks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, _title, _source in _course():
        nb = nbformat.read(HERE / name, as_version=4)
        copy = student_copy(nb)
        removed = len(nb.cells) - len(copy.cells)
        nbformat.write(copy, args.out / name)
        print(f"wrote {args.out / name} ({removed} solution{'s' if removed != 1 else ''} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
