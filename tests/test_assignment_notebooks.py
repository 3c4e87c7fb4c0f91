"""The lesson's own notebooks as an assignment: the student version runs top to bottom with
its placeholders (every check "not answered yet"), on the seconds-long tiny profile.

Both versions are graded (in the sandbox): the student version's answers are all "not answered
yet", the solution version's all right, judged outside the kernel against the answer key.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat

from mnli_lesson import colab
from mnli_lesson.classroom import make_assignment
from mnli_lesson.grading import grade

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_student_notebooks_run_with_their_placeholders(tmp_path):
    written = make_assignment(NOTEBOOKS, tmp_path / "assignment")
    student = tmp_path / "assignment" / "student"
    assert [p.name for p in written["student"]] == sorted(p.name for p in NOTEBOOKS.glob("0*"))
    for path in student.glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "YOUR ANSWER HERE" in text and "### BEGIN SOLUTION" not in text
        assert '"outputs": []' in text or '"outputs"' not in text.replace('"outputs": []', "")
        for name in ("q1_answer", "q2_answer", "q3_answer", "summary_answer", "answer_key",
                     "SOLUTION PROSE", colab.REPO_URL):
            assert name not in text, (path.name, name)  # nothing points at the answers
    for who, kind in (("placeholder", "student"), ("solved", "solution")):
        submissions = tmp_path / "submissions" / who
        submissions.mkdir(parents=True)
        for path in (tmp_path / "assignment" / kind).glob("*.ipynb"):
            (submissions / path.name).write_bytes(path.read_bytes())
    # A student who rewrites what the checks would read, instead of answering.
    cheat = nbformat.read(student / "01_data.ipynb", as_version=4)
    answers = {"ex01-4": "lengths = lengths * 0 + 7\nn_longest = int((lengths == lengths.max())"
                         ".sum())"}
    for cell in cheat.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    (tmp_path / "submissions" / "cheat").mkdir()
    nbformat.write(cheat, tmp_path / "submissions" / "cheat" / "01_data.ipynb")
    grade(tmp_path / "submissions", tmp_path / "grades.csv", profile="tiny", timeout=600,
          jobs=2, release=student)
    with (tmp_path / "grades.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    cheat_row = next(r for r in rows if (r["student"], r["notebook"]) == ("cheat", "01_data"))
    assert cheat_row["ex01-4"] == "not right yet", cheat_row  # judged with the grader's lengths
    rows = [r for r in rows if r["student"] != "cheat"]
    assert len(rows) == 8
    for row in rows:
        assert row["ran_to_end"] == "true" and not row["tampered"], row
        total = int(row["checks_total"])
        assert total >= 2, row
        if row["student"] == "placeholder":
            assert row["checks_passed"] == "0", row
        else:  # the solutions, judged outside their kernels against the answer key
            assert row["checks_passed"] == str(total), row
