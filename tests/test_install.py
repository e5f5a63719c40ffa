"""stlib as a student gets it: a wheel installed away from the source tree, and Colab's first notebook cell.

Both tests install into a fresh virtual environment in a temporary folder. It has no pip or packages of its
own: a ``.pth`` file lends it this interpreter's site-packages (torch and the rest are already installed, so
nothing is downloaded). Paths listed in a ``.pth`` are searched but their own ``.pth`` files are not run, so
the editable install of this checkout stays invisible there; each test also checks which ``stlib`` it got.
Builds run offline (``--no-index --no-build-isolation``) from a git copy of the working tree, so nothing is
written into the checkout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "stlib" / "data"
SETUP_TIMEOUT_S = 300

pytestmark = pytest.mark.timeout(SETUP_TIMEOUT_S)


def _offline_pip_env(**extra: str) -> dict[str, str]:
    """Environment for a child process: pip may not reach an index, builds use the installed setuptools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "GIT_"))}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation
               PIP_CONFIG_FILE=os.devnull,  # no machine-wide find-links or constraints: only what is installed
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1", **extra)
    return env


def _bundled_files() -> set[str]:
    return {p.relative_to(DATA).as_posix() for p in DATA.glob("*/*") if p.is_file()}


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding the working tree as it is now (committed or not), on the course's branch."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of stlib")
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    dest = tmp_path_factory.mktemp("repo") / "stlib-src"
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():  # deleted-but-not-staged files are still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    branch = _make_notebooks().BRANCH
    git = ["git", "-c", "user.name=stlib tests", "-c", "user.email=tests@example.invalid", "-c", "init.defaultBranch=x"]
    for args in (["init", "--quiet"], ["checkout", "--quiet", "-b", branch], ["add", "--all"],
                 ["commit", "--quiet", "-m", "working tree"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("_stlib_make_notebooks", REPO / "notebooks" / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _needs_pip() -> None:
    if importlib.util.find_spec("pip") is None:  # e.g. a uv-made environment
        pytest.skip("these tests run pip from the current environment, which has none")


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment (no pip of its own) that borrows this interpreter's packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    ours.append(sysconfig.get_paths()["purelib"])
    (Path(purelib) / "_borrowed_packages.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return python


def _run_python(python: Path, code: str, cwd: Path, env: dict[str, str]) -> dict:
    """Run `code` in a fresh process; it prints one JSON line last, which is returned."""
    done = subprocess.run([str(python), "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=SETUP_TIMEOUT_S)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# The same check in both tests, run by the installed stlib: every module imports, every bundled image loads.
CHECK_INSTALLED = """
import importlib, json, pkgutil
import stlib
from stlib.images import bundled_images, images_dir, load_image
from stlib.studio import Studio
modules = sorted(m.name for m in pkgutil.walk_packages(stlib.__path__, "stlib."))
for name in modules:
    importlib.import_module(name)
shapes = {}
for name, path in bundled_images().items():
    image = load_image(name)
    shapes[path.relative_to(images_dir()).as_posix()] = list(image.shape)
from stlib.regions import MASKS_DIR, load_masks
for path in sorted(MASKS_DIR.iterdir()):
    masks = load_masks(path.stem)
    shapes[path.relative_to(MASKS_DIR.parent).as_posix()] = list(masks.shape)
print(json.dumps({"file": stlib.__file__, "images_dir": str(images_dir()), "modules": modules, "shapes": shapes}))
"""


def _assert_installed_copy(report: dict, site: Path) -> None:
    assert Path(report["file"]).resolve().is_relative_to(site.resolve()), f"imported the wrong stlib: {report['file']}"
    assert Path(report["images_dir"]).resolve().is_relative_to(site.resolve())
    source_modules = {p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
                      for p in (REPO / "stlib").rglob("*.py") if p.name != "__init__.py" and p.stem != "__main__"}
    missing = source_modules - set(report["modules"])
    assert not missing, f"modules missing from the installed package: {sorted(missing)}"
    assert set(report["shapes"]) == _bundled_files(), "the installed package does not carry every bundled image"
    for name, shape in report["shapes"].items():
        channels_ok = shape[1] >= 2 if name.startswith("masks/") else shape[1] == 3  # masks: (1, regions, H, W)
        assert shape[0] == 1 and channels_ok and min(shape[2:]) >= 64, (name, shape)


def test_wheel_carries_every_module_and_bundled_image(repo_copy: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    env = _offline_pip_env()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(repo_copy)],
                   check=True, env=env, timeout=SETUP_TIMEOUT_S)
    (wheel,) = dist.glob("stlib-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, env=env,
                   timeout=SETUP_TIMEOUT_S)
    elsewhere = tmp_path / "elsewhere"  # not the source tree: nothing there to import by accident
    elsewhere.mkdir()
    report = _run_python(python, CHECK_INSTALLED, elsewhere, env)
    _assert_installed_copy(report, tmp_path / "venv")


def test_colab_first_cell_installs_a_working_stlib(repo_copy: Path, tmp_path: Path) -> None:
    make = _make_notebooks()
    first_cell = next(c.source for c in nbformat.read(REPO / "notebooks" / make.COURSE[0][0], as_version=4).cells
                      if c.cell_type == "code")
    python = _fresh_venv(tmp_path / "venv")
    content = tmp_path / "content"  # Colab's working folder, on the kernel's import path
    content.mkdir()
    # The cell clones https://github.com/<REPO>; git's own URL rewriting sends it to the local copy instead.
    env = _offline_pip_env(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{repo_copy.as_uri()}.insteadOf",
                           GIT_CONFIG_VALUE_0=f"https://github.com/{make.REPO}.git")
    driver = f"""
    import os, sys, types
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the cell looks for
    sys.path.insert(0, os.getcwd())  # as in Colab's kernel: /content is importable
    cell = {first_cell!r}
    exec(compile(cell, "first cell", "exec"), {{"__name__": "__main__"}})
    exec(compile(cell, "first cell, run again", "exec"), {{"__name__": "__main__"}})
    """
    report = _run_python(python, textwrap.dedent(driver) + CHECK_INSTALLED, content, env)
    clones = [p for p in content.iterdir() if (p / ".git").is_dir()]
    assert [p.name for p in clones] != ["stlib"] and len(clones) == 1, clones
    assert not (content / "stlib").exists(), "a folder named stlib in /content would shadow the package"
    _assert_installed_copy(report, tmp_path / "venv")
    for kept in ("torch", "ipywidgets", "matplotlib"):  # Colab's own copies stay: no reinstall, no restart
        assert not list((tmp_path / "venv").glob(f"lib/python*/site-packages/{kept}")), f"the cell reinstalled {kept}"


def test_colab_first_cell_says_what_failed(tmp_path: Path) -> None:
    """A clone that cannot happen stops the cell with one sentence naming the repository, before pip runs."""
    make = _make_notebooks()
    cell = make.SETUP_CODE.format(repo=make.REPO, branch=make.BRANCH)
    python = _fresh_venv(tmp_path / "venv")
    env = _offline_pip_env(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{(tmp_path / 'nowhere').as_uri()}.insteadOf",
                           GIT_CONFIG_VALUE_0=f"https://github.com/{make.REPO}.git")
    driver = f"""
    import json, sys, types
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    try:
        exec(compile({cell!r}, "first cell", "exec"), {{"__name__": "__main__"}})
    except RuntimeError as error:
        print(json.dumps({{"error": str(error)}}))
    """
    report = _run_python(python, driver, tmp_path, env)
    message = report["error"]
    assert message.startswith("Could not download the course from ") and f"https://github.com/{make.REPO}" in message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    assert not list((tmp_path / "venv").rglob("stlib/__init__.py")), "pip ran although the clone failed"
