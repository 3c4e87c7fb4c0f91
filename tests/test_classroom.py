"""Classroom mode: one marked source notebook becomes a solution and a student version.

The notebooks are small and synthetic (no model, no data), built with nbformat in tmp_path,
and executed with nbclient on the ``python3`` kernel.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from mnli_lesson.classroom import make_assignment, student_source, student_version
from mnli_lesson.errors import LessonError

SOLUTION_MEAN = "mean = sum(numbers) / len(numbers)"
STUDENT_MEAN = "mean = None  # YOUR ANSWER HERE: the mean of `numbers`"


def _grader(cell, *, solution=False, grade=False, grade_id=None, tags=()):
    meta = {"solution": solution, "grade": grade, "locked": grade, "schema_version": 3}
    if grade_id:
        meta["grade_id"] = grade_id
    if grade:
        meta["points"] = 1
    cell.metadata["nbgrader"] = meta
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def source_notebook() -> nbformat.NotebookNode:
    """A lesson in miniature: setup, two answers, two checks, a written answer, a discussion."""
    setup = new_code_cell("from mnli_lesson import checks\n\nnumbers = [3, 1, 4, 1, 5]",
                          execution_count=1, outputs=[new_output("stream", text="stale\n")])
    mean = _grader(new_code_cell(
        f"### BEGIN SOLUTION\n{SOLUTION_MEAN}\n### END SOLUTION\n"
        f"### BEGIN STUDENT\n# {STUDENT_MEAN}\n### END STUDENT"),
        solution=True, grade_id="mean")
    check_mean = _grader(new_code_cell(
        'checks.close("mean", mean, expected=sum(numbers) / len(numbers), tol=1e-9)'),
        grade=True, grade_id="check-mean")
    largest = _grader(new_code_cell("largest = max(numbers)"), solution=True, grade_id="largest")
    check_largest = _grader(new_code_cell(
        'checks.same("largest", largest, sorted(numbers)[-1])'),
        grade=True, grade_id="check-largest")
    written = _grader(new_code_cell('print(f"The mean is {mean:.2f}.")'),
                      solution=True, grade_id="written", tags=["answer"])
    discuss = new_code_cell('print("numbers to discuss:", numbers)', metadata={"tags": ["discuss"]})
    essay = _grader(new_markdown_cell("Why: the largest number pulls the mean up."),
                    solution=True, grade_id="essay")
    return new_notebook(cells=[setup, mean, check_mean, largest, check_largest, written, discuss,
                               essay], metadata={"kernelspec": {"name": "python3",
                                                                "display_name": "Python 3",
                                                                "language": "python"}})


def write_source(folder: Path, name: str = "01_mean.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), folder / name)
    return folder / name


def execute(nb, folder: Path):
    """Run ``nb`` top to bottom; any error (a wrong answer included) raises."""
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_student_version_has_placeholders_and_no_outputs(tmp_path):
    written = make_assignment(write_source(tmp_path / "src").parent, tmp_path / "out")
    nb = nbformat.read(written["student"][0], as_version=4)
    sources = [c.source for c in nb.cells]
    assert STUDENT_MEAN in sources[1] and SOLUTION_MEAN not in sources[1]
    assert "max(numbers)" not in sources[3] and "largest = None" in sources[3]
    assert not any("### " in s for s in sources)  # no markers, no solution left behind
    assert nb.cells[5].cell_type == "markdown" and nb.cells[5].source == "YOUR ANSWER HERE"
    assert nb.cells[7].source == "YOUR ANSWER HERE"
    assert "numbers to discuss" in sources[6]  # the discussion cell stays
    for i in (2, 4):  # checks are kept as they are, and locked
        assert nb.cells[i].source == source_notebook().cells[i].source
        assert nb.cells[i].metadata["editable"] is False
        assert nb.cells[i].metadata["nbgrader"]["locked"] is True
    for kind in ("student", "solution"):
        for cell in nbformat.read(written[kind][0], as_version=4).cells:
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
    solution = nbformat.read(written["solution"][0], as_version=4)
    assert SOLUTION_MEAN in solution.cells[1].source
    assert solution.cells[5].cell_type == "code"


def test_student_notebook_runs_top_to_bottom_unanswered(tmp_path):
    nb = execute(student_version(source_notebook()), tmp_path)
    assert "… mean: not answered yet" in stdout(nb.cells[2])
    assert "… largest: not answered yet" in stdout(nb.cells[4])
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))


def test_solution_notebook_passes_every_check(tmp_path):
    written = make_assignment(write_source(tmp_path / "src").parent, tmp_path / "out")
    nb = execute(nbformat.read(written["solution"][0], as_version=4), tmp_path)
    assert "✓ mean: right" in stdout(nb.cells[2])
    assert "✓ largest: right" in stdout(nb.cells[4])


def test_wrong_answer_fails_its_check_without_the_value(tmp_path):
    nb = student_version(source_notebook())
    nb.cells[1].source = "mean = 3.5"
    with pytest.raises(Exception) as err:
        execute(nb, tmp_path)
    message = str(err.value)
    assert "CheckFailed" in message and "mean: not right yet" in message
    assert "2.8" not in message.split("CheckFailed:")[-1]


def test_student_source_placeholders():
    func = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    assert student_source(func, "t") == "def double(x):\n    # YOUR CODE HERE\n    pass"
    assert student_source("a, b = 1, 2", "t") == (
        "# YOUR CODE HERE\na = None  # YOUR ANSWER HERE\nb = None  # YOUR ANSWER HERE")
    text = "Intro.\n### BEGIN SOLUTION\nSecret.\n### END SOLUTION\nOutro."
    assert student_source(text, "t", code=False) == "Intro.\nYOUR ANSWER HERE\nOutro."
    with pytest.raises(LessonError, match="has no '### END SOLUTION'"):
        student_source("### BEGIN SOLUTION\nx = 1", "t")


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb.cells[0].__setitem__("source", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
     "no nbgrader solution: true"),
    (lambda nb: nb.cells[2].metadata.nbgrader.pop("grade_id"), "add a unique grade_id"),
    (lambda nb: nb.cells[4].metadata.nbgrader.__setitem__("grade_id", "check-mean"),
     "used twice"),
    (lambda nb: nb.cells[2].metadata.nbgrader.__setitem__("solution", True),
     "both solution and grade"),
    (lambda nb: nb.cells[2].__setitem__("source", "### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"),
     "does not hide"),
    (lambda nb: nb.cells[6].metadata.__setitem__("nbgrader", {"solution": True}),
     "tagged 'discuss'"),
])
def test_marking_mistakes_are_refused(change, message):
    nb = source_notebook()
    change(nb)
    with pytest.raises(LessonError, match=message):
        student_version(nb)


def test_out_dir_is_never_a_users_folder(tmp_path):
    src = write_source(tmp_path / "src").parent
    with pytest.raises(LessonError, match="inside the source folder"):
        make_assignment(src, src / "assignment")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(LessonError, match="not an earlier assignment"):
        make_assignment(src, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    out = tmp_path / "out"
    make_assignment(src, out)
    make_assignment(src, out)  # an earlier assignment is replaced
    (out / "student" / "01_mean.ipynb").write_text("{}")
    with pytest.raises(LessonError, match="was edited after it was made"):
        make_assignment(src, out)
    (out / "student" / "01_mean.ipynb").unlink()
    (out / "student" / "extra.ipynb").write_text("{}")
    with pytest.raises(LessonError, match="was not written by this tool"):
        make_assignment(src, out)


def test_cli_assignment(tmp_path, capsys):
    from mnli_lesson.cli import build_parser

    parser = build_parser()
    src = write_source(tmp_path / "src").parent
    args = parser.parse_args(["assignment", "--src", str(src), "--out", str(tmp_path / "o")])
    assert args.func(args) == 0
    assert "student: 1 notebooks" in capsys.readouterr().out
    args = parser.parse_args(["grade", "subs", "--out", "g.csv", "--timeout", "30",
                              "--release", "a/student"])
    assert (args.profile, args.timeout, args.jobs, args.unsafe) == ("tiny", 30.0, 1, False)
    with pytest.raises(SystemExit):  # without the release there is nothing to judge against
        parser.parse_args(["grade", "subs", "--out", "g.csv"])


def test_solution_prose_is_left_out_of_the_student_version():
    from mnli_lesson.classroom import student_prose

    source = ("## Q1\n\nCommon text.\n<!-- BEGIN SOLUTION PROSE -->\n`q1_answer` writes it.\n"
              "<!-- END SOLUTION PROSE -->\n<!-- STUDENT: Write your answer below. -->\nEnd.")
    assert student_prose(source, "cell") == ("## Q1\n\nCommon text.\nWrite your answer below."
                                              "\nEnd.")
    with pytest.raises(LessonError, match="has no"):
        student_prose("<!-- BEGIN SOLUTION PROSE -->\nopen", "cell 3")


def test_assignment_never_deletes_or_writes_through_what_it_did_not_make(tmp_path):
    import json

    src = write_source(tmp_path / "src").parent
    out = tmp_path / "out"
    make_assignment(src, out)
    manifest = out / ".mnli-assignment.json"
    body = json.loads(manifest.read_text())
    keep = tmp_path / "precious.txt"
    keep.write_text("mine")
    for bad in ("../precious.txt", str(keep)):  # an edited or foreign manifest
        manifest.write_text(json.dumps({**body, "files": {**body["files"], bad: "x"}}))
        with pytest.raises(LessonError, match="not an earlier assignment"):
            make_assignment(src, out)
        assert keep.read_text() == "mine"
    manifest.write_text(json.dumps(body))
    mine = tmp_path / "my-edits"
    (out / "student").rename(mine)
    (out / "student").symlink_to(mine)  # the user's own folder, linked in
    with pytest.raises(LessonError, match="is a symbolic link"):
        make_assignment(src, out)
    assert sorted(p.name for p in mine.iterdir()) == ["01_mean.ipynb"]
    with pytest.raises(LessonError, match="choose another --out"):
        make_assignment(src, keep / "sub")  # below a regular file: one line
