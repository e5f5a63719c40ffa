"""pyproject.toml and environment.yml must list the same packages (and the same version bounds)."""

import json
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.9/3.10: the same parser as a package (pytest itself depends on it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: conda names that differ from the pip name of the same package
CONDA_TO_PIP = {"pytorch": "torch", "pytorch-cpu": "torch", "matplotlib-base": "matplotlib"}
#: entries of environment.yml that are tools, not packages stlib depends on
NOT_PACKAGES = {"python", "pip"}


def _split(requirement: str) -> "tuple[str, str]":
    """'torch>=2.1  # comment' -> ('torch', '>=2.1'); names normalised as PEP 503 does."""
    requirement = requirement.split("#")[0].split(";")[0].strip()
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    spec = match.group(3).replace(" ", "")
    if spec.startswith("="):  # conda's single '=' pin
        spec = "==" + spec.lstrip("=")
    return CONDA_TO_PIP.get(name, name), spec


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment():
    path = ROOT / "environment.yml"
    if not path.exists():
        pytest.skip("environment.yml does not exist yet (the lead adds it)")
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with JupyterLab) reads environment.yml")
    env = yaml.safe_load(path.read_text())
    found: "dict[str, str]" = {}
    for entry in env["dependencies"]:
        items = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in items:
            item = str(item).strip()
            if item.startswith(("-", ".", "git+", "http")) or "/" in item:
                continue  # pip options (--extra-index-url), the local package, URLs
            name, spec = _split(item)
            if name not in NOT_PACKAGES:
                found[name] = spec
    return found


def test_parser_understands_the_forms_we_use():
    assert _split("ipywidgets>=7.7,<9   # sliders") == ("ipywidgets", ">=7.7,<9")
    assert _split("pytorch=2.3") == ("torch", "==2.3")
    assert _split("Pillow >= 9.1") == ("pillow", ">=9.1")


def test_every_runtime_dependency_is_in_environment_yml(pyproject, environment):
    runtime = dict(_split(r) for r in pyproject["project"]["dependencies"])
    missing = sorted(set(runtime) - set(environment))
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"
    for name, spec in runtime.items():
        if environment[name]:
            assert environment[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml {environment[name]!r}"


def test_environment_yml_lists_nothing_pyproject_lacks(pyproject, environment):
    declared = dict(_split(r) for r in pyproject["project"]["dependencies"])
    for extra in pyproject["project"].get("optional-dependencies", {}).values():
        declared.update(_split(r) for r in extra)
    unknown = sorted(set(environment) - set(declared))
    assert not unknown, f"in environment.yml but not in pyproject.toml: {unknown}"


def test_console_script_points_at_cli_main(pyproject):
    assert pyproject["project"]["scripts"]["stlib"] == "stlib.cli:main"
    from stlib.cli import main

    assert callable(main)


def _environment_entries() -> "tuple[list[str], list[str]]":
    """environment.yml's (conda entries, pip entries) as strings."""
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with JupyterLab) reads environment.yml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [str(e) for e in env["dependencies"] if not isinstance(e, dict)]
    pip = [str(i) for e in env["dependencies"] if isinstance(e, dict) for i in e.get("pip", [])]
    return conda, pip


def test_binder_cannot_get_a_cuda_torch():
    """Binder has no GPU and 2 GB: torch must be a CPU-only build, never PyPI's multi-GB CUDA wheel."""
    conda, pip = _environment_entries()
    conda_torch = [e for e in conda if _split(e)[0] == "torch"]
    pip_torch = [e for e in pip if not e.startswith("-") and _split(e)[0] in ("torch", "torchvision")]
    assert conda_torch or pip_torch, "environment.yml does not install torch"
    for entry in conda_torch:
        assert entry.split()[0].split("=")[0].split(">")[0] == "pytorch-cpu", f"{entry!r} may resolve to a CUDA build"
    for entry in pip_torch:  # a pip torch must be pinned to the CPU index's local version
        assert re.search(r"==[0-9.]+\+cpu$", _split(entry)[1]), f"pip may pick PyPI's CUDA build for {entry!r}"


def test_binder_shuts_down_kernels():
    """postBuild's JupyterLab override names a real boolean setting and turns it on; the server culls kernels."""
    post_build = (ROOT / "postBuild").read_text()
    overrides = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON\n", post_build, re.S).group(1))
    assert overrides == {"@jupyterlab/notebook-extension:tracker": {"kernelShutdown": True}}
    commands = pytest.importorskip("jupyterlab.commands", reason="JupyterLab's schemas name the settings")
    schema = Path(commands.get_app_dir()) / "schemas" / "@jupyterlab" / "notebook-extension" / "tracker.json"
    assert json.loads(schema.read_text())["properties"]["kernelShutdown"]["type"] == "boolean"
    assert "c.MappingKernelManager.cull_idle_timeout" in post_build and "cull_connected = True" in post_build


def test_readme_states_the_declared_floors(pyproject):
    """The README's version section names every declared lower bound, and the lowest Python."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Versions", 1)[1].split("\n## ", 1)[0]
    stated = " ".join(section.split())
    python = re.fullmatch(r">=\s*([0-9.]+)", pyproject["project"]["requires-python"]).group(1)
    assert f"Python {python}," in stated
    for requirement in pyproject["project"]["dependencies"]:
        name, spec = _split(requirement)
        floor = re.search(r">=([0-9.]+)", spec).group(1)
        assert f"{name} {floor}" in stated, f"README's Versions section does not state {name} >= {floor}"
