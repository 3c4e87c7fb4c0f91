"""The grader: fabricated submissions (right, wrong, crashing, hostile ...) give the right rows.

A synthetic assignment (no model, no data) with two checked answers and a written one; its
answer key is a dict, so these tests need no lesson run. Submissions run in the sandbox.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mnli_lesson import sandbox
from mnli_lesson.classroom import make_assignment
from mnli_lesson.errors import LessonError
from mnli_lesson.exercises import Want
from mnli_lesson.feedback import merge_points
from mnli_lesson.grading import grade

pytestmark = pytest.mark.skipif(bool(sandbox.unavailable()), reason=str(sandbox.unavailable()))
MEAN = "mean = sum(numbers) / len(numbers)"


class DictKey:
    WANTS = {"mean": Want("number", 2.8, tol=1e-9, hint="the mean of `numbers`"),
             "largest": Want("number", 5, tol=0, hint="the largest of `numbers`")}

    def expect(self, exercise):
        return self.WANTS.get(exercise)


def _marked(cell, **meta):
    cell.metadata["nbgrader"] = {"schema_version": 3, "solution": False, "grade": False,
                                 "locked": False, **meta}
    return cell


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("assignment")
    cells = [
        new_code_cell("from mnli_lesson import checks\n\nnumbers = [3, 1, 4, 1, 5]"),
        _marked(new_code_cell(f"### BEGIN SOLUTION\n{MEAN}\n### END SOLUTION"),
                solution=True, grade_id="mean"),
        _marked(new_code_cell('checks.check("mean", mean)'), grade=True, locked=True,
                grade_id="mean-check", points=2),
        _marked(new_code_cell("largest = max(numbers)"), solution=True, grade_id="largest"),
        _marked(new_code_cell('checks.check("largest", largest)'), grade=True, locked=True,
                grade_id="largest-check", points=1),
        _marked(new_markdown_cell("The mean is pulled up by 5."), solution=True,
                grade_id="essay"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    (root / "src").mkdir()
    nbformat.write(nb, root / "src" / "01_mean.ipynb")
    make_assignment(root / "src", root / "out")
    return root / "out" / "student"


def submit(release, path, *, mean=None, largest=None, extra=None, edit=None):
    """A student's copy of the release: answers filled in, maybe an extra cell or an edit."""
    nb = nbformat.read(release / "01_mean.ipynb", as_version=4)
    if mean is not None:
        nb.cells[1].source = mean
    if largest is not None:
        nb.cells[3].source = largest
    if edit is not None:
        edit(nb)
    if extra is not None:
        nb.cells.insert(1, new_code_cell(extra))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def run(subs, out, release, **kwargs):
    kwargs.setdefault("timeout", 120)
    return {(r["student"]): r for r in grade(subs, out, release=release, key=DictKey(),
                                             jobs=2, **kwargs)}


def test_right_wrong_crashing_and_untouched(release, tmp_path):
    subs = tmp_path / "subs"
    submit(release, subs / "ada" / "01_mean.ipynb", mean=MEAN, largest="largest = 5")
    submit(release, subs / "bob__01_mean.ipynb", mean="mean = 3.5", largest="largest = 5")
    submit(release, subs / "cy-01_mean.ipynb", mean="mean = 1 / 0")
    submit(release, subs / "dee" / "01_mean.ipynb")
    (subs / "fay").mkdir()
    (subs / "fay" / "01_mean.ipynb").write_text("{ not json")

    def pasted(nb):  # every cell copied into a new notebook: metadata and cell ids are new
        for i, cell in enumerate(nb.cells):
            cell.metadata, cell["id"] = {}, f"pasted-{i}"
    submit(release, subs / "gil" / "01_mean.ipynb", mean=MEAN, largest="largest = 5",
           edit=pasted)
    rows = run(subs, tmp_path / "grades.csv", release)
    assert rows["fay"]["problem"].startswith("not a readable notebook")
    assert rows["fay"]["points"] == 0
    gil = rows["gil"]
    assert (gil["points"], gil["tampered"]) == (3, "")  # checks found again by their content
    assert "mean-check found by its content" in gil["notes"]
    ada, bob, cy, dee = rows["ada"], rows["bob"], rows["cy"], rows["dee"]
    assert (ada["points"], ada["points_total"], ada["mean"], ada["ran_to_end"]) == (
        3, 3, "right", "true")
    assert (bob["points"], bob["mean"], bob["largest"]) == (1, "not right yet", "right")
    assert cy["mean"] == "check cell failed" and cy["first_error"].startswith(
        "cell 2: ZeroDivisionError")
    assert (dee["points"], dee["mean"], dee["largest"]) == (0, "not answered yet",
                                                          "not answered yet")
    feedback = (tmp_path / "grades-feedback" / "bob.md").read_text()
    assert "✗ mean: not right yet — the mean of `numbers`" in feedback and "2.8" not in feedback
    essays = (tmp_path / "grades-written" / "essay.md").read_text()
    assert "## ada" in essays and "(not answered)" in essays
    with open(tmp_path / "grades-written" / "points.csv", newline="") as f:
        table = list(csv.reader(f))
    table[1][3] = "2"  # the instructor marks ada's essay
    table[2][3] = "1.5"
    table[3][3] = "0"
    table[4][3] = "0"
    with open(tmp_path / "grades-written" / "points.csv", "w", newline="") as f:
        csv.writer(f).writerows(table)
    merge_points(tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="") as f:
        merged = {r["student"]: r for r in csv.DictReader(f)}
    assert (merged["ada"]["written_points"], merged["ada"]["total"]) == ("2", "5")
    assert merged["bob"]["total"] == "2.5"


def test_cheats_score_nothing(release, tmp_path):
    subs = tmp_path / "subs"
    liar = ("class Anything(float):\n    def __eq__(self, other): return True\n"
            "    def __float__(self): return 2.8\nmean = Anything(0)")
    submit(release, subs / "eve" / "01_mean.ipynb", mean="mean = 0",
           edit=lambda nb: setattr(nb.cells[2], "source", 'print("✓ mean: right")'))
    submit(release, subs / "fay" / "01_mean.ipynb", mean=liar)
    patch = ("from mnli_lesson import checks\nchecks.check = lambda *a, **k: print('✓ right')\n"
             "get_ipython().set_custom_exc((Exception,), lambda *a, **k: print('✓ right'))")
    submit(release, subs / "gus" / "01_mean.ipynb", mean="mean = 0\nraise ValueError",
           extra=patch)
    submit(release, subs / "hal" / "01_mean.ipynb", mean=MEAN,
           edit=lambda nb: nb.cells.pop(2))  # the check deleted: put back, named
    submit(release, subs / "ivy" / "01_mean.ipynb", mean=MEAN,
           extra="from mnli_lesson import answer_key")  # the key is not in the box
    rewrite = ("def fake(lines):\n"
               "    if any('check' in line or 'collect' in line for line in lines):\n"
               "        return ['print(\"✓ mean: right\")\\n']\n"
               "    return lines\n"
               "get_ipython().input_transformers_post.append(fake)")
    submit(release, subs / "jon" / "01_mean.ipynb", mean="mean = 0", extra=rewrite)
    submit(release, subs / "kim" / "01_mean.ipynb", mean=MEAN,  # the check moved up
           edit=lambda nb: nb.cells.insert(1, nb.cells.pop(2)))
    rows = run(subs, tmp_path / "grades.csv", release)
    assert (rows["jon"]["mean"], rows["jon"]["points"]) == ("could not be read", 0)
    assert rows["eve"]["mean"] == "not right yet" and "mean-check (edited)" in rows["eve"][
        "tampered"]
    assert rows["fay"]["mean"] == "not a plain value"  # a float subclass, == always true
    assert (rows["kim"]["mean"], rows["kim"]["tampered"]) == ("right", "mean-check (moved)")
    assert rows["gus"]["mean"] in ("check cell failed", "could not be read", "not right yet")
    assert rows["gus"]["points"] == 0 and rows["gus"]["ran_to_end"] == "false"
    assert (rows["hal"]["mean"], rows["hal"]["tampered"]) == ("right", "mean-check (deleted)")
    assert rows["ivy"]["first_error"].startswith("cell 2: ImportError: cannot import name "
                                                 "'answer_key'")


def test_a_box_sees_and_touches_nothing_outside(release, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    subs = tmp_path / "subs"
    submit(release, subs / "ada" / "01_mean.ipynb", mean=MEAN)
    victim = subs / "ada" / "01_mean.ipynb"
    before = victim.read_bytes()
    attack = f"""import os, signal, subprocess, sys
from pathlib import Path
import mnli_lesson
leaks = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            if b"s3cret" in Path(f"/proc/{{pid}}/environ").read_bytes():
                leaks.append("environ")
        except OSError:
            pass
for path in ({str(victim)!r}, {str(release)!r}, {str(tmp_path)!r}):
    if Path(path).exists():
        leaks.append("sees " + path)
try:
    Path(mnli_lesson.__file__).with_name("checks.py").write_text("hacked")
    leaks.append("wrote the package")
except OSError:
    pass
for pid in (os.getppid(), {os.getpid()}):
    try:
        os.kill(pid, 0)
        if pid == {os.getpid()}:
            leaks.append("signals the grader")
    except OSError:
        pass
later = "import time; time.sleep(4); open({str(tmp_path / 'grades.csv')!r}, 'w').write('x')"
subprocess.Popen([sys.executable, "-c", later], start_new_session=True)
print("leaks:", leaks)"""
    submit(release, subs / "mal" / "01_mean.ipynb", mean=MEAN, extra=attack)
    rows = run(subs, tmp_path / "grades.csv", release, executed_dir=tmp_path / "executed")
    text = (tmp_path / "executed" / "mal" / "01_mean.ipynb").read_text()
    assert "leaks: []" in text, text[-3000:]
    assert rows["mal"]["mean"] == "right"
    written = (tmp_path / "grades.csv").read_bytes()
    time.sleep(6)  # the background process would have rewritten it by now
    assert (tmp_path / "grades.csv").read_bytes() == written and victim.read_bytes() == before
    assert "GRADER_SECRET" in os.environ  # the test's own environment still has it


def test_roster_resume_and_refusals(release, tmp_path, monkeypatch, capsys):
    subs = tmp_path / "subs"
    submit(release, subs / "ada" / "01_mean.ipynb", mean=MEAN)
    (subs / "bob").mkdir()
    (subs / "bob" / "01_mean.ipynb").symlink_to(subs / "ada" / "01_mean.ipynb")
    submit(release, subs / "cy" / "01_mean.ipynb", mean=MEAN)
    submit(release, subs / "cy__01_mean.ipynb", mean="mean = 1")  # two different copies
    submit(release, subs / "dan" / "1-mean.IPYNB", mean=MEAN)  # a lenient name
    submit(release, subs / "dan" / "notes.ipynb")  # no notebook of this assignment
    roster = tmp_path / "roster.csv"
    roster.write_text("student\nada\nbob\ncy\ndan\nzed\n")
    rows = grade(subs, tmp_path / "grades.csv", release=release, key=DictKey(), roster=roster,
                 timeout=120, jobs=2)
    by = {(r["student"], r["notebook"]): r for r in rows}
    assert {s for s, _ in by} == {"ada", "bob", "cy", "dan", "zed"}
    assert "link" in by["bob", "01_mean"]["problem"] and by["bob", "01_mean"]["points"] == 0
    assert by["cy", "01_mean"]["problem"].startswith("two files for this notebook")
    assert by["dan", "01_mean"]["points"] == 2  # mean (2 points) right, largest unanswered
    assert any("not a notebook name" in r["problem"] for k, r in by.items() if k[0] == "dan")
    assert by["zed", "01_mean"]["problem"].startswith("missing")
    rows = {r["student"]: r for r in rows if r["notebook"] == "01_mean"}
    again = grade(subs, tmp_path / "grades.csv", release=release, key=DictKey(), roster=roster,
                  timeout=120)
    assert {r["student"]: str(r["points"]) for r in again if r["notebook"] == "01_mean"} == {
        s: str(r["points"]) for s, r in rows.items()}
    assert capsys.readouterr().out.count("(unchanged, kept)") == 2  # ada's and dan's
    notes = tmp_path / "grades-feedback" / "ada.md"
    notes.write_text(notes.read_text() + "\nSee me about question 2.\n")
    with pytest.raises(LessonError, match="ada.md was edited after `mnli-lesson grade`"):
        grade(subs, tmp_path / "grades.csv", release=release, key=DictKey(), roster=roster)
    assert notes.read_text().endswith("See me about question 2.\n")  # refused before grading
    with pytest.raises(LessonError, match="not a grades CSV this tool wrote"):
        grade(subs, roster.with_suffix(".csv"), release=release, key=DictKey())
    monkeypatch.setattr(sandbox, "unavailable", lambda: "no user namespaces")
    with pytest.raises(LessonError, match="pass --unsafe"):
        grade(subs, tmp_path / "other.csv", release=release, key=DictKey())


def test_time_limit_is_per_notebook(release, tmp_path):
    subs = tmp_path / "subs"
    submit(release, subs / "gus" / "01_mean.ipynb", mean=MEAN,
           largest="import time\ntime.sleep(600)")
    (row,) = grade(subs, tmp_path / "g.csv", release=release, key=DictKey(), timeout=15)
    assert (row["mean"], row["largest"], row["ran_to_end"]) == ("right", "not run", "false")
    assert row["first_error"] == "timed out after 15 s"


def test_sigterm_stops_every_box_and_leaves_nothing_behind(release, tmp_path):
    import signal
    import subprocess
    import sys
    import tempfile

    subs = tmp_path / "subs"
    submit(release, subs / "gus" / "01_mean.ipynb", mean="import time\ntime.sleep(600)")
    before = set(os.listdir(tempfile.gettempdir()))
    cmd = [sys.executable, "-m", "mnli_lesson", "grade", str(subs), "--release", str(release),
           "--out", str(tmp_path / "g.csv"), "--timeout", "300"]
    # The lesson's key knows no "mean": grade through a key-less release would be refused,
    # so the test grades with the CLI's own key check turned off by a tiny wrapper.
    wrapper = tmp_path / "run.py"
    wrapper.write_text(
        "import sys\nfrom mnli_lesson import grading, cli\n"
        "from test_grading import DictKey\n"
        "real = grading.grade\n"
        "grading.grade = lambda *a, **k: real(*a, **{**k, 'key': DictKey()})\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(wrapper), *cmd[3:]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the notebook is running inside its box
        if any("time.sleep(600)" in _cmdline(pid) or "grade_runner" in _cmdline(pid)
               for pid in os.listdir("/proc") if pid.isdigit()):
            break
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: run the same command again to resume" in err
    time.sleep(1)
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and (
        "grade_runner" in _cmdline(pid) or str(subs) in _cmdline(pid))]
    assert left == [], [_cmdline(p) for p in left]
    assert not [n for n in set(os.listdir(tempfile.gettempdir())) - before
                if n.startswith("mnli-grade")]


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_unsafe_grades_the_same_without_a_box(release, tmp_path):
    subs = tmp_path / "subs"
    submit(release, subs / "ada" / "01_mean.ipynb", mean=MEAN, largest="largest = 5")
    submit(release, subs / "bob" / "01_mean.ipynb", mean="mean = 3.5")
    rows = run(subs, tmp_path / "grades.csv", release, unsafe=True)
    assert (rows["ada"]["points"], rows["bob"]["points"], rows["bob"]["mean"]) == (
        3, 0, "not right yet")


def test_refusals_name_the_graders_own_flags(release, tmp_path):
    """grade reads --out and --executed, never MNLI_LESSON_OUT_DIR: its one-line refusals
    name the flag the instructor typed."""
    subs = tmp_path / "subs"
    submit(release, subs / "ada" / "01_mean.ipynb", mean=MEAN)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(LessonError) as err:
        grade(subs, tmp_path / "grades.csv", release=release, key=DictKey(),
              executed_dir=blocker / "executed")
    assert str(err.value).endswith("is a file, not a folder; choose another --executed")
    assert not (tmp_path / "grades-feedback").exists()  # refused before anything was written
    if Path("/proc/self").is_dir():  # a folder that takes no new files
        with pytest.raises(LessonError) as err:
            grade(subs, "/proc/grades.csv", release=release, key=DictKey())
        assert str(err.value).startswith("cannot write /proc ")
        assert "--out" in str(err.value) and "MNLI_LESSON_OUT_DIR" not in str(err.value)
