"""The lesson's own notebooks as an assignment: the student version runs top to bottom with
its placeholders (every check "not answered yet"), on the seconds-long tiny profile.

The solution version is what `pytest --nbval-lax notebooks/` runs, so its checks passing is
tested there, on the offline profile.
"""

from __future__ import annotations

import csv
from pathlib import Path

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
    submissions = tmp_path / "submissions" / "placeholder"
    submissions.mkdir(parents=True)
    for path in student.glob("*.ipynb"):
        (submissions / path.name).write_bytes(path.read_bytes())
    grade(tmp_path / "submissions", tmp_path / "grades.csv", profile="tiny", timeout=600,
          jobs=2, release=student)
    with (tmp_path / "grades.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        assert row["ran_to_end"] == "true", row
        assert row["checks_passed"] == "0" and int(row["checks_total"]) >= 2, row
