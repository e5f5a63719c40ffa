"""The committed notebooks: clean (no stray outputs), Colab-ready, linked, and in step with their sources."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS_DIR / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _make_notebooks()
GENERATED = dict(MAKE.generated())


def _read(path):
    return nbformat.read(path, as_version=4)


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_course_is_complete():
    names = [p.name for p in NOTEBOOKS]
    assert names == [entry[0] for entry in MAKE.COURSE]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_uses_the_python3_kernel(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_checked_cells_carry_outputs(path):
    for i, cell in enumerate(_code(_read(path))):
        if CHECK_MARK in cell.source:
            assert cell.outputs, f"{path.name} code cell {i} is marked for nbval but has no committed output"
            assert cell.execution_count is not None, f"{path.name} code cell {i}: nbval skips cells never run"
            for output in cell.outputs:
                assert output.output_type in ("stream", "execute_result"), \
                    f"{path.name} code cell {i}: only text outputs can be compared"
                assert output.get("name") != "stderr", f"{path.name} code cell {i}: a warning leaked into a checked cell"
        else:
            assert cell.outputs == [], f"{path.name} code cell {i} has outputs: strip them (make_notebooks.py)"
            assert cell.execution_count is None, f"{path.name} code cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_sys_path_manipulation_and_stlib_imported(path):
    nb = _read(path)
    sources = "\n".join(c.source for c in _code(nb))
    assert "sys.path" not in sources, f"{path.name} edits sys.path; install stlib instead (pip install -e .)"
    assert re.search(r"^import stlib$", sources, re.M), f"{path.name} never runs `import stlib`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_row_and_colab_aware_first_cell(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert MAKE.colab_url(path.name) in first.source, f"{path.name}: Colab badge missing or pointing elsewhere"
    assert MAKE.binder_url(path.name) in first.source, f"{path.name}: Binder badge missing or pointing elsewhere"
    setup = _code(nb)[0].source
    assert '"google.colab" in sys.modules' in setup
    install_block = setup.split('"google.colab" in sys.modules', 1)[1].split("\nimport stlib", 1)[0]
    assert "pip" in install_block and "git" in install_block, f"{path.name}: the Colab cell must clone and install"
    assert all(line.startswith((" ", "#")) or not line.strip() for line in install_block.splitlines()[1:]), \
        f"{path.name}: everything that installs must sit inside the Colab `if`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_relative_links_point_to_existing_notebooks(path):
    nb = _read(path)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    links = re.findall(r"\]\(([^)#:]+\.ipynb)\)", markdown)
    for link in links:
        assert (NOTEBOOKS_DIR / link).exists(), f"{path.name} links to missing {link}"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_notebooks_match_their_sources(name):
    assert MAKE.in_sync(name, GENERATED[name]), f"{name} is out of date: run python notebooks/make_notebooks.py"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_notebooks_navigate(name):
    last = _read(NOTEBOOKS_DIR / name).cells[-1]
    assert last.cell_type == "markdown" and MAKE.navigation(name) in last.source
    i = [entry[0] for entry in MAKE.COURSE].index(name)
    if i + 1 < len(MAKE.COURSE):
        assert f"({MAKE.COURSE[i + 1][0]})" in last.source


@pytest.mark.parametrize("name", ["01_content_representation.ipynb", "02_gram_matrices.ipynb", "03_losses.ipynb",
                                  "04_optimisation.ipynb"])
def test_exercises_have_checks_and_hidden_solutions(name):
    nb = _read(NOTEBOOKS_DIR / name)
    checks = [c for c in _code(nb) if "stlib.checks.check_" in c.source]
    solutions = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("<details>")]
    assert len(checks) >= 2 and len(solutions) >= 2
    for cell in checks:
        assert CHECK_MARK in cell.source, "an exercise check's message must be compared by nbval"
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "not implemented yet" in text, "the committed notebook must ship the unsolved stub"


def test_repository_slug_is_written_once():
    source = (NOTEBOOKS_DIR / "make_notebooks.py").read_text()
    assert source.count(MAKE.REPO) == 1
    assert MAKE.REPO in MAKE.colab_url("x.ipynb") and MAKE.REPO in MAKE.binder_url("x.ipynb")
    assert MAKE.REPO in MAKE.SETUP_CODE.format(repo=MAKE.REPO, branch=MAKE.BRANCH)


def test_strip_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
        nbformat.v4.new_code_cell(f"{CHECK_MARK}\nprint(2)", execution_count=4,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")]),
    ])
    MAKE.strip(nb)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert nb.cells[1].outputs[0]["text"] == "2\n" and nb.cells[1].execution_count == 2
