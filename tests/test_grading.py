"""The grader: fabricated submissions (right, wrong, crashing, ...) give the expected rows."""

from __future__ import annotations

import csv
import os

import nbformat
import pytest
from test_classroom import SOLUTION_MEAN, write_source  # tests/ is on sys.path under pytest

from mnli_lesson.classroom import make_assignment
from mnli_lesson.errors import LessonError
from mnli_lesson.grading import find_submissions, grade


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("assignment")
    make_assignment(write_source(root / "src").parent, root / "out")
    return root / "out"


def submit(assignment, path, *, mean: str | None = None, largest: str | None = None,
           check: str | None = None):
    """A student's copy of the student notebook, with cells 1 and 3 (the answers) filled in."""
    nb = nbformat.read(assignment / "student" / "01_mean.ipynb", as_version=4)
    if mean is not None:
        nb.cells[1].source = mean
    if largest is not None:
        nb.cells[3].source = largest
    if check is not None:  # a student who edits a locked check
        nb.cells[2].source = check
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["student"], r["notebook"]): r for r in csv.DictReader(f)}


def test_right_wrong_and_crashing_submissions(assignment, tmp_path):
    subs = tmp_path / "submissions"
    submit(assignment, subs / "ada" / "01_mean.ipynb", mean=SOLUTION_MEAN,
           largest="largest = max(numbers)")
    submit(assignment, subs / "bob__01_mean.ipynb", mean="mean = 3.5",
           largest="largest = max(numbers)")
    submit(assignment, subs / "cy-01_mean.ipynb", mean="mean = 1 / 0")
    out = tmp_path / "grades.csv"
    rows = grade(subs, out, timeout=120, jobs=3, release=assignment,
                 executed_dir=tmp_path / "executed")
    assert [r["student"] for r in rows] == ["ada", "bob", "cy"]
    got = read_rows(out)
    assert list(next(iter(got.values()))) == ["student", "notebook", "checks_passed",
                                              "checks_total", "ran_to_end", "first_error"]
    ada, bob, cy = got["ada", "01_mean"], got["bob", "01_mean"], got["cy", "01_mean"]
    assert (ada["checks_passed"], ada["checks_total"], ada["ran_to_end"]) == ("2", "2", "true")
    assert ada["first_error"] == ""
    assert (bob["checks_passed"], bob["checks_total"], bob["ran_to_end"]) == ("1", "2", "true")
    assert bob["first_error"].startswith("cell 3: CheckFailed: mean: not right yet")
    assert "2.8" not in bob["first_error"]
    assert (cy["checks_passed"], cy["checks_total"], cy["ran_to_end"]) == ("0", "2", "false")
    assert cy["first_error"] == "cell 2: ZeroDivisionError: division by zero"
    assert (tmp_path / "executed" / "ada" / "01_mean.ipynb").is_file()


def test_unanswered_stale_outputs_and_edited_checks_do_not_pass(assignment, tmp_path):
    subs = tmp_path / "submissions"
    submit(assignment, subs / "dee" / "01_mean.ipynb")  # handed in as it was handed out
    submit(assignment, subs / "eve" / "01_mean.ipynb", check='print("✓ mean: right")')
    stale = nbformat.read(subs / "dee" / "01_mean.ipynb", as_version=4)
    stale.cells[4].outputs = [nbformat.v4.new_output("stream", text="✓ largest: right\n")]
    nbformat.write(stale, subs / "dee" / "01_mean.ipynb")
    (subs / "fay").mkdir()
    (subs / "fay" / "01_mean.ipynb").write_text("{ not json")
    rows = {r["student"]: r for r in grade(subs, tmp_path / "g.csv", timeout=120, jobs=3,
                                           release=assignment / "student")}
    assert (rows["dee"]["checks_passed"], rows["dee"]["ran_to_end"]) == (0, "true")
    assert rows["eve"]["checks_passed"] == 0  # the released check ran, not the edited one
    assert rows["fay"]["first_error"].startswith("not a readable notebook")
    assert (rows["fay"]["checks_total"], rows["fay"]["ran_to_end"]) == (2, "false")


def test_time_limit_is_per_notebook(assignment, tmp_path):
    subs = tmp_path / "submissions"
    submit(assignment, subs / "gus" / "01_mean.ipynb", mean=SOLUTION_MEAN,
           largest="import time\ntime.sleep(600)")
    (row,) = grade(subs, tmp_path / "g.csv", timeout=8)
    assert (row["checks_passed"], row["ran_to_end"]) == (1, "false")  # the check before ran
    assert row["first_error"] == "timed out after 8 s"


def test_notebook_runs_in_its_own_folder_and_environment(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    subs = tmp_path / "submissions"
    probe = ("import os\nfrom pathlib import Path\n"
             "assert 'GRADER_SECRET' not in os.environ\n"
             "assert os.environ['HF_HUB_OFFLINE'] == '1'\n"
             "assert os.environ['MNLI_LESSON_PROFILE'] == 'tiny'\n"
             "for key in ('HOME', 'TMPDIR', 'MPLCONFIGDIR', 'MNLI_LESSON_OUT_DIR'):\n"
             "    assert Path(os.environ[key]).parent == Path.cwd().parent, key\n"
             "assert Path.cwd() != Path(os.environ['ORIGINAL_CWD'])\n")
    monkeypatch.setenv("ORIGINAL_CWD", os.getcwd())
    submit(assignment, subs / "hal" / "01_mean.ipynb", mean=probe + SOLUTION_MEAN)
    (row,) = grade(subs, tmp_path / "g.csv", timeout=120)
    # ORIGINAL_CWD is not passed either, so the probe fails on that line if it gets that far.
    assert row["first_error"] == "cell 2: KeyError: 'ORIGINAL_CWD'"


def test_find_submissions_layouts_and_mistakes(tmp_path):
    subs = tmp_path / "subs"
    (subs / "ada" / "repo" / "notebooks").mkdir(parents=True)
    (subs / "ada" / "repo" / "notebooks" / "01_data.ipynb").write_text("{}")
    (subs / "ada" / ".ipynb_checkpoints").mkdir()
    (subs / "ada" / ".ipynb_checkpoints" / "02_model_io.ipynb").write_text("{}")
    (subs / "mary-jane-02_model_io.ipynb").write_text("{}")
    (subs / "bob__01_data.ipynb").write_text("{}")
    (subs / "notes.txt").write_text("")
    found = [(s.student, s.notebook) for s in find_submissions(subs)]
    assert found == [("ada", "01_data"), ("bob", "01_data"), ("mary-jane", "02_model_io")]
    (subs / "ada__01_data.ipynb").write_text("{}")
    with pytest.raises(LessonError, match="are both ada's 01_data; keep one"):
        find_submissions(subs)
    with pytest.raises(LessonError, match="no submissions in"):
        find_submissions(subs / "ada" / ".ipynb_checkpoints")
    with pytest.raises(LessonError, match="unknown profile"):
        grade(subs, tmp_path / "g.csv", profile="huge")
