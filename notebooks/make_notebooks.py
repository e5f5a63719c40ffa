"""Build the course notebooks from their Python sources in ``notebooks/src/``.

One script writes what every notebook shares - the badge row, the Colab-aware set-up cell, the
navigation links and the hidden exercise solutions (taken from ``stlib.checks.SOLUTIONS``) - so they
never drift apart. Committed notebooks carry no outputs or execution counts except in cells marked
``# NBVAL_CHECK_OUTPUT``, whose outputs ``pytest --nbval-lax notebooks/`` compares.

    python notebooks/make_notebooks.py                 # write the .ipynb files (checked outputs are kept)
    python notebooks/make_notebooks.py --execute       # ... and run them in fast mode to refresh checked outputs
    python notebooks/make_notebooks.py --check         # exit 1 if a notebook differs from its source
    python notebooks/make_notebooks.py --time normal   # run each notebook into a temp folder and report times

It also writes ``present.ipynb``: one cell that shows the studio in projector layout, which ``make present``
serves with Voilà (outputs only, no code) for a lecture.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"

#: The GitHub repository the badges and the Colab set-up cell point to (the only place it is written).
#: A fork changes this line (and BRANCH), then runs `python notebooks/make_notebooks.py` (see the README).
REPO = "stlib-course/stlib"
BRANCH = "main"

#: The course in order: (notebook file, short title, source module in src/ or None for a hand-made notebook).
COURSE: Tuple[Tuple[str, str, Optional[str]], ...] = (
    ("00_start_here.ipynb", "Start here", "nb00_start_here.py"),
    ("01_content_representation.ipynb", "Content representation", "nb01_content_representation.py"),
    ("02_gram_matrices.ipynb", "Gram matrices", "nb02_gram_matrices.py"),
    ("03_losses.ipynb", "Losses and weights", "nb03_losses.py"),
    ("04_optimisation.ipynb", "Optimisation", "nb04_optimisation.py"),
    ("05_studio.ipynb", "The live studio", "nb05_studio.py"),
    ("06_beyond.ipynb", "Beyond the paper", "nb06_beyond.py"),
    ("07_capstone.ipynb", "Capstone", "nb07_capstone.py"),
    ("08_realtime.ipynb", "Real time", "nb08_realtime.py"),
)

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"

#: The page ``make present`` serves with Voilà: only the studio, laid out for a 1280x720 projector.
PRESENT = "present.ipynb"
PRESENT_CODE = '''\
# The studio for a projector, served without code cells by `make present` (Voila). Edit the images or size here.
import os

from stlib.studio import Studio

FAST = os.environ.get("STLIB_FAST") == "1"  # set by the test-suite: small and quick
Studio("astronaut", "swirls", layout="projector", size=128 if FAST else 256, steps=40 if FAST else 200)'''

#: Under every notebook's navigation links: following "next →" on Binder leaves this kernel running.
BINDER_MEMORY_NOTE = ("<small>On Binder: close this notebook's tab before opening the next one - that shuts its "
                      "kernel down. Each kernel holds about 0.8 GB and Binder gives you 2 GB, so three open "
                      "notebooks run out of memory.</small>")

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

SETUP_CODE = '''\
# Set-up. On Google Colab this fetches the course and installs stlib (about a minute, once per session);
# anywhere else stlib is already installed (see the README) and only the import runs.
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.util
    import os
    import subprocess

    url = "https://github.com/{repo}"
    # Colab's working folder (/content) is on the import path: a clone named "stlib" would hide the package.
    folder = os.path.abspath("stlib-course")

    def _run(command, failure):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\\n")
            raise RuntimeError(failure)

    if importlib.util.find_spec("stlib") is None:  # not installed yet (a second run skips this)
        if not os.path.isdir(os.path.join(folder, ".git")):
            _run(["git", "clone", "--quiet", "--depth", "1", "--branch", "{branch}", url + ".git", folder],
                 f"Could not download the course from {{url}} (git's message is above): check that this "
                 "runtime is online and that the repository exists, then run this cell again.")
        # Plain (not editable) install: pip keeps Colab's own torch and ipywidgets, which satisfy stlib.
        _run([sys.executable, "-m", "pip", "install", "--quiet", folder],
             f"Could not install stlib from {{folder}} (pip's message is above): restart the runtime and run "
             f"this cell again, and if it still fails report it at {{url}}/issues.")
        importlib.invalidate_caches()  # let this running Python see the fresh install, without a restart
        if importlib.util.find_spec("stlib.studio") is None:
            raise RuntimeError(f"stlib was installed but cannot be imported: restart the runtime, run this "
                               f"cell again, and if it still fails report it at {{url}}/issues.")

import stlib'''


# ------------------------------------------------------------------------------------------------ links
def colab_url(name: str) -> str:
    """Open-in-Colab link of a notebook."""
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{name}"


def binder_url(name: str) -> str:
    """Binder link that opens a notebook in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{REPO}/{BRANCH}?labpath=notebooks%2F{name}"


def badge_row(name: str) -> str:
    """The Colab and Binder badges that open ``name``."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(name)})")


def navigation(name: str) -> str:
    """``< previous | contents | next >`` links for ``name``."""
    files = [entry[0] for entry in COURSE]
    i = files.index(name)
    parts = []
    if i > 0:
        parts.append(f"[← {_label(i - 1)}]({files[i - 1]})")
    if i != 0:
        parts.append(f"[Contents]({files[0]})")
    if i < len(files) - 1:
        parts.append(f"[{_label(i + 1)} →]({files[i + 1]})")
    return " | ".join(parts)


def _label(i: int) -> str:
    return f"{COURSE[i][0][:2]} · {COURSE[i][1]}"


# ------------------------------------------------------------------------------------------------ building
def _load_source(path: Path) -> List[Tuple[str, str]]:
    spec = importlib.util.spec_from_file_location(f"_stlib_nb_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.CELLS)


def _solution_markdown(key: str) -> str:
    from stlib.checks import SOLUTIONS

    code = SOLUTIONS[key].strip("\n")
    return ("<details><summary><b>Show a solution</b> (try first!)</summary>\n\n"
            f"```python\n{code}\n```\n\n</details>")


def build(name: str, source: Path) -> nbformat.NotebookNode:
    """The notebook ``name`` from its source: badges, set-up cell, the source's cells, navigation."""
    cells = _load_source(source)
    if not cells or cells[0][0] != "md":
        raise ValueError(f"{source.name}: the first cell must be markdown (the title)")
    stem = name[:2]
    out: List[nbformat.NotebookNode] = []

    def add(kind: str, text: str) -> None:
        cell_id = f"nb{stem}-{len(out):02d}"
        text = text.strip("\n")
        if kind == "md":
            out.append(nbformat.v4.new_markdown_cell(text, id=cell_id))
        else:
            out.append(nbformat.v4.new_code_cell(text, id=cell_id))

    add("md", f"{badge_row(name)}\n\n{cells[0][1].strip()}")
    add("code", SETUP_CODE.format(repo=REPO, branch=BRANCH))
    for kind, text in cells[1:]:
        if kind == "solution":
            add("md", _solution_markdown(text))
        elif kind in ("md", "code"):
            add(kind, text)
        else:
            raise ValueError(f"{source.name}: unknown cell kind {kind!r}")
    add("md", f"---\n{navigation(name)}\n\n{BINDER_MEMORY_NOTE}")
    nb = nbformat.v4.new_notebook(cells=out)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


def build_present() -> nbformat.NotebookNode:
    """The one-cell notebook ``make present`` serves: the studio in projector layout."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PRESENT_CODE, id="present-00")])
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


def is_checked(cell: Any) -> bool:
    """True for a code cell whose outputs nbval compares (marked ``# NBVAL_CHECK_OUTPUT``)."""
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs and execution counts, except in checked cells: those keep their outputs and, because
    nbval only compares cells that ran, an execution count (their position among the code cells)."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}  # no saved widget state
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code_cells, start=1):
        cell.metadata = {}
        checked = is_checked(cell) and bool(cell.outputs)
        cell.execution_count = number if checked else None
        if not checked:
            cell.outputs = []
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = number
    return nb


def _keep_outputs(new: nbformat.NotebookNode, old_path: Path) -> None:
    """Copy checked outputs from the committed notebook for cells whose source did not change."""
    if not old_path.exists():
        return
    old = nbformat.read(old_path, as_version=4)
    previous = {c.source: c.outputs for c in old.cells if is_checked(c)}
    for cell in new.cells:
        if is_checked(cell) and cell.source in previous:
            cell.outputs = copy.deepcopy(previous[cell.source])


def course_env(mode: str) -> Dict[str, str]:
    """Environment for running notebooks: offline seeded weights; ``mode`` "fast" sets STLIB_FAST=1."""
    env = dict(os.environ)
    env.update({"STLIB_WEIGHTS": "random", "STLIB_OFFLINE": "1"})
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads crawl on a shared 2-core machine
    env.pop("MPLBACKEND", None)  # let Jupyter's inline backend draw the figures
    if mode == "fast":
        env["STLIB_FAST"] = "1"
    else:
        env.pop("STLIB_FAST", None)
    return env


def execute(nb: nbformat.NotebookNode, mode: str, timeout: int = 900) -> float:
    """Run ``nb`` in place in a fresh kernel (cwd: this folder) with ``course_env(mode)``; returns seconds."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
    start = time.perf_counter()
    client.execute(env=course_env(mode))
    return time.perf_counter() - start


def checked_outputs(nb: nbformat.NotebookNode) -> List[Tuple[str, str]]:
    """(cell id, text of its outputs) for every checked cell: what nbval compares."""
    result = []
    for cell in nb.cells:
        if is_checked(cell):
            text = "".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
            result.append((cell.get("id", ""), text))
    return result


def generated() -> List[Tuple[str, Path]]:
    """(notebook file, source path) for every notebook this script builds."""
    return [(name, SOURCES / src) for name, _, src in COURSE if src is not None]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks (fast mode) to refresh checked outputs")
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is out of date with its source")
    parser.add_argument("--time", choices=("fast", "normal"), help="run each notebook in a temp folder and time it")
    parser.add_argument("only", nargs="*", help="notebook files to handle (default: all generated ones)")
    args = parser.parse_args(argv)
    todo = [(n, s) for n, s in generated() if not args.only or n in args.only or n[:2] in args.only]

    if args.check:
        stale = [name for name, source in todo if not in_sync(name, source)]
        if not args.only and not _same_cells(HERE / PRESENT, build_present()):
            stale.append(PRESENT)
        for name in stale:
            print(f"{name} is out of date: run python notebooks/make_notebooks.py")
        return 1 if stale else 0

    if args.time:
        for name, _ in todo:
            nb = nbformat.read(HERE / name, as_version=4)
            expected = checked_outputs(nb)
            seconds = execute(nb, args.time)
            same = "same" if checked_outputs(nb) == expected else "DIFFERENT"
            print(f"{name:<36} {seconds:6.1f} s   checked outputs: {same}", flush=True)
        return 0

    for name, source in todo:
        nb = build(name, source)
        if args.execute:
            seconds = execute(nb, "fast")
            print(f"executed {name} in fast mode: {seconds:.1f} s", flush=True)
        else:
            _keep_outputs(nb, HERE / name)
        nbformat.write(strip(nb), HERE / name)
        print(f"wrote {name}")
    if not args.only:
        nbformat.write(build_present(), HERE / PRESENT)
        print(f"wrote {PRESENT}")
    return 0


def in_sync(name: str, source: Path) -> bool:
    """True when the committed notebook has exactly the cells (kind and source) its source file builds."""
    path = HERE / name
    if not path.exists():
        return False
    return _same_cells(path, build(name, source))


def _same_cells(path: Path, fresh: nbformat.NotebookNode) -> bool:
    if not path.exists():
        return False
    committed = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in fresh.cells]


if __name__ == "__main__":
    sys.exit(main())
