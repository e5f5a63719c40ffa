"""Version matrix: the test suite on the oldest declared versions, the newest, and every supported Python.

    make test-matrix                      # every session below (downloads several GB of torch wheels)
    .venv/bin/nox -s oldest               # one session; `-- notebooks` also runs the course notebooks
    .venv/bin/nox -s "python-3.10" -- tests/test_images.py   # any other arguments go to pytest
    .venv/bin/nox -s newest -- --nbval-lax notebooks/        # the notebooks only

Sessions:
    oldest       the lowest Python in requires-python, every runtime dependency pinned to its declared floor
    newest       the newest Python here, everything at its latest release
    python-3.X   each Python from the lowest declared to 3.12, latest releases that support it (3.13: newest)

Virtual environments and uv's download cache live outside the repository, in $STLIB_MATRIX_DIR
(default ~/.cache/stlib-matrix): each torch install is ~3 GB; delete the folder when you are done.
Pythons come from pyenv (~/.pyenv/versions) or PATH: uv cannot download interpreters on every machine.
pip is installed too: tests/test_install.py builds and installs with it. The browser test is left out
(it needs JupyterLab 4's widget manager and Chromium; `make test` runs it).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
MATRIX_DIR = Path(os.environ.get("STLIB_MATRIX_DIR", Path.home() / ".cache" / "stlib-matrix"))
NEWEST_PYTHON = "3.13"
TEST_ENV = {"STLIB_FAST": "1", "STLIB_WEIGHTS": "random", "STLIB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE",
            "MPLBACKEND": "Agg", "UV_CACHE_DIR": str(MATRIX_DIR / "uv-cache")}

nox.options.default_venv_backend = "uv"
nox.options.envdir = str(MATRIX_DIR / "envs")
nox.options.reuse_existing_virtualenvs = True
# pyenv's interpreters are not on PATH unless a shell has run `pyenv init`: let nox and uv find them.
_pyenv = sorted((Path.home() / ".pyenv" / "versions").glob("3.*/bin"), reverse=True)
os.environ["PATH"] = os.pathsep.join([*map(str, _pyenv), os.environ.get("PATH", "")])
os.environ["UV_CACHE_DIR"] = TEST_ENV["UV_CACHE_DIR"]

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOWEST_PYTHON = re.fullmatch(r">=\s*(\d+\.\d+)", PROJECT["requires-python"]).group(1)
PYTHONS = [f"3.{minor}" for minor in range(int(LOWEST_PYTHON.split(".")[1]), int(NEWEST_PYTHON.split(".")[1]))]


def floors() -> list[str]:
    """Each runtime dependency pinned to its declared lower bound: 'torch>=2.1' -> 'torch==2.1' (= 2.1.0)."""
    pins = []
    for requirement in PROJECT["dependencies"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
        assert match, f"{requirement!r} has no >= floor to test"
        name, version = match.groups()
        pins.append(f"{name}=={version}")
    return pins


def run_suite(session: nox.Session) -> None:
    """Unit tests (not the browser test); `-- notebooks` adds the course notebooks, other arguments go to pytest."""
    session.run("python", "-c", "import sys, torch, numpy, PIL, matplotlib, ipywidgets; print("
                "'python', sys.version.split()[0], '| torch', torch.__version__, '| numpy', numpy.__version__,"
                " '| pillow', PIL.__version__, '| matplotlib', matplotlib.__version__,"
                " '| ipywidgets', ipywidgets.__version__)")
    args = list(session.posargs)
    if "notebooks" in args:  # the unit tests and every notebook
        args.remove("notebooks")
        args += ["--nbval-lax", "tests", "notebooks"]
    elif all(arg.startswith("-") for arg in args):  # no paths given: the unit tests
        args.append("tests")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not browser", *args, env=TEST_ENV)


@nox.session(python=LOWEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """The declared floors, on the lowest supported Python."""
    constraints = Path(session.create_tmp()) / "floors.txt"
    constraints.write_text("\n".join(floors()) + "\n")
    session.install("pip", "-e", ".[dev]", "--override", str(constraints))
    run_suite(session)


@nox.session(python=NEWEST_PYTHON)
def newest(session: nox.Session) -> None:
    """Latest releases of everything, on the newest Python."""
    session.install("--upgrade", "pip", "-e", ".[dev]")
    run_suite(session)


@nox.session(name="python", python=PYTHONS)
def each_python(session: nox.Session) -> None:
    """Latest releases that support this Python."""
    session.install("pip", "-e", ".[dev]")
    run_suite(session)
