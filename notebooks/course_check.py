"""Run course notebooks as students do and check what they see: every figure appears, every claim holds.

    python notebooks/course_check.py                    # all notebooks at students' sizes (normal mode)
    python notebooks/course_check.py --mode fast 02 06  # some notebooks in fast mode
    python notebooks/course_check.py --figures out/figs # ... and save every figure as a PNG to look at

Each notebook runs in a fresh kernel with the offline seeded weights (``make_notebooks.course_env``). A probe
cell placed first records every ``stlib.plots`` call that made a figure, by the cell it ran in; a notebook
fails when a cell shows fewer images than it made figures (a figure returned inside a loop, or not by the
cell's last line, is never drawn), and when a cell raises - in normal mode that includes ``course.claim``,
which asserts each figure's claim. ``make test-course`` runs this through ``tests/test_course_figures.py``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import importlib.util

import nbformat

HERE = Path(__file__).resolve().parent


def _sibling(name: str):
    """Import a script that sits beside this one (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_stlib_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks = _sibling("make_notebooks")

#: Runs first in the kernel: wraps every public ``stlib.plots`` function that returns a figure so that the
#: outermost call is recorded under the ordinal of the code cell it ran in.
PROBE = '''\
import functools as _functools
import inspect as _inspect
import stlib.plots as _plots
from matplotlib.figure import Figure as _Figure

_figure_calls = {}
_plot_depth = [0]
_cell_number = [0]  # ordinal of the code cell now running, counted from the one after this probe


def _next_cell(*args):
    _cell_number[0] += 1


get_ipython().events.register("pre_run_cell", _next_cell)


def _record_figures(function):
    @_functools.wraps(function)
    def wrapper(*args, **kwargs):
        _plot_depth[0] += 1
        try:
            result = function(*args, **kwargs)
        finally:
            _plot_depth[0] -= 1
        if _plot_depth[0] == 0 and isinstance(result, _Figure) and kwargs.get("ax") is None:
            _figure_calls.setdefault(str(_cell_number[0]), []).append(function.__name__)
        return result
    return wrapper


for _name, _function in list(vars(_plots).items()):
    if _inspect.isfunction(_function) and not _name.startswith("_") and _function.__module__ == _plots.__name__:
        setattr(_plots, _name, _record_figures(_function))
'''
REPORT = "import json as _json\nprint(_json.dumps(_figure_calls))"


@dataclass
class CourseRun:
    """What running one notebook showed: seconds, missing figures (cell number, functions), claim sentences."""

    name: str
    seconds: float
    missing: List[str] = field(default_factory=list)
    claims: List[str] = field(default_factory=list)
    images: List[bytes] = field(default_factory=list)


def _images(cell: nbformat.NotebookNode) -> List[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for o in cell.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def run_notebook(nb: nbformat.NotebookNode, name: str, mode: str, timeout: int = 1200) -> CourseRun:
    """Run ``nb`` (a copy is made) in ``mode`` ("fast" or "normal") with the figure probe; see the module doc."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE, id="probe-start"))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT, id="probe-report"))
    seconds = make_notebooks.execute(nb, mode, timeout=timeout)
    calls: Dict[str, List[str]] = json.loads(_text(nb.cells[-1]).strip().splitlines()[-1])
    run = CourseRun(name, seconds)
    for number, cell in enumerate([c for c in nb.cells[1:-1] if c.cell_type == "code"], start=1):
        made = calls.get(str(number), [])
        shown = _images(cell)
        run.images.extend(shown)
        if len(shown) < len(made):
            run.missing.append(f"code cell {number} made {len(made)} figure(s) ({', '.join(made)}) but shows "
                               f"{len(shown)}: display each figure (display(fig)) or make the call the cell's last line")
        run.claims.extend(line for line in _text(cell).splitlines()
                          if line.startswith(("Checked: ", "Claim (measured at students' sizes")))
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("fast", "normal"), default="normal")
    parser.add_argument("--figures", type=Path, help="save every figure as DIR/<notebook>_<n>.png")
    parser.add_argument("only", nargs="*", help="notebooks (file names or their two-digit numbers)")
    args = parser.parse_args(argv)
    failed = 0
    for name, _ in make_notebooks.generated():
        if args.only and name not in args.only and name[:2] not in args.only:
            continue
        start = time.perf_counter()
        try:
            run = run_notebook(nbformat.read(HERE / name, as_version=4), name, args.mode)
        except Exception as error:  # a cell raised: a failed claim or a bug; say which and go on
            failed += 1
            message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the traceback's terminal colours
            print(f"{name}: FAILED after {time.perf_counter() - start:.0f} s\n{message[-1500:]}", flush=True)
            continue
        print(f"{name:<36} {run.seconds:6.1f} s  {len(run.images)} figures  {len(run.claims)} claims", flush=True)
        for line in run.claims + run.missing:
            print("   ", line)
        failed += bool(run.missing)
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            for i, png in enumerate(run.images, start=1):
                (args.figures / f"{name[:2]}_{i:02d}.png").write_bytes(png)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
