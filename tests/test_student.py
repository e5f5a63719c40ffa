"""The student edition (notebooks/make_student.py): solutions gone, checks kept and still instant."""

import importlib.util
import time
from pathlib import Path

import nbformat
import pytest

import stlib.checks as checks

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _load_make_student():
    spec = importlib.util.spec_from_file_location("_make_student", NOTEBOOKS / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _load_make_student()


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert make_student.main(["--out", str(out)]) == 0
    return out


def solution_lines():
    """The body lines of every solution (not the signature or docstring the exercise shows, nor a bare
    `return x`), as they would appear in a notebook."""
    lines = set()
    for code in checks.SOLUTIONS.values():
        lines |= {line.strip() for line in code.splitlines()
                  if len(line.strip()) > 25 and not line.strip().startswith(('"""', "def "))}
    return lines


def test_student_copies_have_no_solutions_but_every_exercise_and_check(student):
    secrets = solution_lines()
    teacher_total = 0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        teacher = nbformat.read(path, as_version=4)
        pupil = nbformat.read(student / path.name, as_version=4)
        teacher_text = "\n".join(c.source for c in teacher.cells)
        pupil_text = "\n".join(c.source for c in pupil.cells)
        hidden_text = "\n".join(c.source for c in teacher.cells if make_student.is_solution(c))
        shown_text = "\n".join(c.source for c in teacher.cells if not make_student.is_solution(c))
        # a solution line that the lesson itself also shows (e.g. a plain loop over the style layers) is no secret
        found = {line for line in secrets if line in hidden_text and line not in shown_text}
        teacher_total += len(found)
        leaked = {line for line in found if line in pupil_text}
        assert not leaked, f"{path.name}: solution lines in the student copy: {sorted(leaked)[:3]}"
        assert "Show a solution" not in pupil_text
        assert pupil_text.count("stlib.checks.check_") == teacher_text.count("stlib.checks.check_")
        assert pupil_text.count("raise NotImplementedError") == teacher_text.count("raise NotImplementedError")
        assert all(not c.get("outputs") for c in pupil.cells if c.cell_type == "code")
        assert "stlib.checks.hide_solutions()" in pupil.cells[1].source
        assert pupil.metadata["stlib"]["edition"] == "student"
    assert teacher_total > 0, "the instructor copies should carry solutions (else this test cannot fail)"


def test_hidden_solutions_and_instant_checks(monkeypatch, capsys):
    monkeypatch.setattr(checks.EDITION, "solutions_hidden", False)
    checks.solution("gram")
    assert "def gram_matrix" in capsys.readouterr().out  # the instructor copy keeps solutions

    checks.hide_solutions()
    checks.solution("gram")
    assert "def gram_matrix" not in capsys.readouterr().out

    def wrong(features):
        b, c, h, w = features.shape
        flat = features.reshape(b, c, h * w)
        return flat @ flat.transpose(1, 2)  # not divided by C*H*W

    t0 = time.perf_counter()
    result = checks.check_gram(wrong)
    assert time.perf_counter() - t0 < 5.0  # instant, like the instructor's
    assert result.status == "wrong" and "solution(" not in result.message
