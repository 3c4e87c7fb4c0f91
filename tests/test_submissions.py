"""Finding submissions: layouts, lenient names, missing, duplicate and linked files; rosters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnli_lesson.errors import LessonError
from mnli_lesson.submissions import (
    Submission,
    find_submissions,
    match_name,
    read_roster,
    unexpected_students,
)

NOTEBOOKS = ["01_data", "02_model_io", "03_finetune_vs_frozen", "04_pretrained_vs_scratch"]


def put(root: Path, rel: str, text: str = "{}") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rows(folder: Path, roster: list[str] | None = None) -> dict[tuple[str, str], Submission]:
    return {(s.student, s.notebook): s for s in find_submissions(folder, NOTEBOOKS, roster)}


def graded(folder: Path, roster: list[str] | None = None) -> dict[tuple[str, str], str]:
    """(student, notebook) -> path relative to folder, for the rows that will be graded."""
    return {key: sub.path.relative_to(folder).as_posix()
            for key, sub in rows(folder, roster).items() if not sub.problem}


def test_every_layout_mixed(tmp_path):
    put(tmp_path, "ada/01_data.ipynb")
    put(tmp_path, "ada/repo/notebooks/02_model_io.ipynb")  # an unzipped repository
    put(tmp_path, "bob__01_data.ipynb")
    put(tmp_path, "mary-jane-02_model_io.ipynb")
    put(tmp_path, "cs_2_eve__02_model_io.ipynb")  # the split that names a notebook wins
    put(tmp_path, "notes.txt")  # not a notebook: no row
    assert graded(tmp_path) == {
        ("ada", "01_data"): "ada/01_data.ipynb",
        ("ada", "02_model_io"): "ada/repo/notebooks/02_model_io.ipynb",
        ("bob", "01_data"): "bob__01_data.ipynb",
        ("cs_2_eve", "02_model_io"): "cs_2_eve__02_model_io.ipynb",
        ("mary-jane", "02_model_io"): "mary-jane-02_model_io.ipynb"}


@pytest.mark.parametrize("rel", ["ada/01_data.IPYNB", "ada/01-data.ipynb", "ada/1_data.ipynb",
                                 "ada_01_data.ipynb", "ada__1-data.ipynb", "ada-01-data.ipynb"])
def test_lenient_names(tmp_path, rel):
    put(tmp_path, rel)
    found = rows(tmp_path)
    assert found[("ada", "01_data")] == Submission("ada", "01_data", tmp_path / rel)
    assert len(found) == len(NOTEBOOKS)  # no "not a notebook name" row besides


def test_lenience_stops_where_ambiguous_or_unlisted():
    assert match_name("1_data.ipynb", ["01_data", "001_data"]) is None
    assert match_name("001_data.ipynb", ["01_data", "001_data"]) == "001_data"
    assert match_name("01_Data.ipynb", NOTEBOOKS) is None  # case of the name itself: no
    assert match_name("01_data-Copy1.ipynb", NOTEBOOKS) is None


def test_unmatched_names_get_rows(tmp_path):
    put(tmp_path, "ada/work/01_Data.ipynb")
    put(tmp_path, "ada__05_extra.ipynb")
    put(tmp_path, "ada__Untitled.ipynb")  # no number, yet still ada's
    put(tmp_path, "_01_data.ipynb")  # no student before the separator
    put(tmp_path, "notes.ipynb")  # no student can be told
    put(tmp_path, "02_model_io.ipynb")
    found = rows(tmp_path)
    odd = found[("ada", "work/01_Data.ipynb")]
    assert odd.path is None
    assert odd.problem == ("not a notebook name this assignment has: 01_Data.ipynb (expected "
                           "one of 01_data, 02_model_io, 03_finetune_vs_frozen, "
                           "04_pretrained_vs_scratch)")
    assert found[("ada", "ada__05_extra.ipynb")].problem.startswith("not a notebook name")
    assert found[("ada", "ada__Untitled.ipynb")].problem.startswith("not a notebook name")
    assert found[("_01_data.ipynb", "_01_data.ipynb")].problem.startswith("not a notebook")
    assert found[("ada", "01_data")].problem.startswith("missing: no 01_data notebook")
    assert found[("notes.ipynb", "notes.ipynb")].problem.startswith("not a notebook name")
    assert found[("02_model_io.ipynb", "02_model_io")].problem.startswith(
        "no student in this file name: 02_model_io.ipynb; name it <student>__02_model_io")
    # Only the student found gets a row per notebook; the other files one row each.
    assert len(found) == len(NOTEBOOKS) + 6


def test_a_notebook_saved_under_another_name_is_named_in_its_row(tmp_path):
    """A browser's download of 01_data.ipynb as 01_data.ipynb.txt was only "missing"."""
    put(tmp_path, "hank/01_data.ipynb.txt")
    put(tmp_path, "ivy__02_model_io.ipynb (1)")
    found = rows(tmp_path)
    assert found[("hank", "01_data")].problem == (
        "missing: no 01_data notebook from this student; hank/01_data.ipynb.txt is a notebook "
        "saved under another name (a browser's .txt?): rename it to end in .ipynb")
    assert found[("ivy__02_model_io.ipynb (1)", "ivy__02_model_io.ipynb (1)")].problem == (
        "ivy__02_model_io.ipynb (1) is a notebook saved under another name: rename it to end "
        "in .ipynb")


def test_missing_rows_from_roster_and_students_not_on_it(tmp_path):
    put(tmp_path, "ada/01_data.ipynb")
    put(tmp_path, "eve/01_data.ipynb")
    found = rows(tmp_path, ["ada", "zed"])
    assert {k for k, s in found.items() if s.problem == ""} == {("ada", "01_data"),
                                                                 ("eve", "01_data")}
    assert found[("zed", "02_model_io")] == Submission(
        "zed", "02_model_io", None, "missing: no 02_model_io notebook from this student")
    assert len(found) == 3 * len(NOTEBOOKS)
    assert unexpected_students(list(found.values()), ["ada", "zed"]) == ["eve"]


def test_without_roster_found_students_get_missing_rows(tmp_path):
    put(tmp_path, "ada/01_data.ipynb")
    found = rows(tmp_path)
    assert sorted(found) == [("ada", nb) for nb in sorted(NOTEBOOKS)]
    assert found[("ada", "04_pretrained_vs_scratch")].problem.startswith("missing:")


def test_empty_or_absent_folder(tmp_path):
    put(tmp_path, "subs/.DS_Store")
    subs = tmp_path / "subs"
    assert {s.problem[:8] for s in find_submissions(subs, NOTEBOOKS, ["ada"])} == {"missing:"}
    with pytest.raises(LessonError, match="no submissions in"):
        find_submissions(subs, NOTEBOOKS)
    with pytest.raises(LessonError, match="does not exist"):
        find_submissions(tmp_path / "nope", NOTEBOOKS)
    with pytest.raises(LessonError, match="is not a folder"):
        find_submissions(subs / ".DS_Store", NOTEBOOKS)


def test_identical_duplicates_are_graded_once(tmp_path):
    put(tmp_path, "ada/01_data.ipynb", "same")
    put(tmp_path, "ada/repo/01_data.ipynb", "same")
    put(tmp_path, "ada__01_data.ipynb", "same")
    assert graded(tmp_path)[("ada", "01_data")] == "ada/01_data.ipynb"


def test_different_duplicates_stop_only_that_row(tmp_path):
    put(tmp_path, "ada/a/01_data.ipynb", "first")
    put(tmp_path, "ada/b/01_data.ipynb", "second")
    put(tmp_path, "ada/02_model_io.ipynb")
    found = rows(tmp_path)
    assert found[("ada", "01_data")] == Submission("ada", "01_data", None, (
        "two files for this notebook: ada/a/01_data.ipynb, ada/b/01_data.ipynb; keep one"))
    assert found[("ada", "02_model_io")].problem == ""


def test_linked_notebook_is_refused(tmp_path):
    put(tmp_path, "ada/01_data.ipynb")
    put(tmp_path, "bob/02_model_io.ipynb")
    (tmp_path / "bob" / "01_data.ipynb").symlink_to(tmp_path / "ada" / "01_data.ipynb")
    (tmp_path / "cy__01_data.ipynb").symlink_to("ada/01_data.ipynb")
    found = rows(tmp_path)
    assert found[("bob", "01_data")] == Submission("bob", "01_data", None, (
        "a symbolic link: bob/01_data.ipynb (to ada/01_data.ipynb); submit the file itself"))
    assert found[("cy", "01_data")].path is None
    assert "symbolic link" in found[("cy", "01_data")].problem
    assert found[("ada", "01_data")].problem == ""
    assert found[("bob", "02_model_io")].problem == ""


@pytest.mark.parametrize("link", ["bob", "bob/repo"])
def test_linked_student_folder_is_refused(tmp_path, link):
    put(tmp_path, "ada/01_data.ipynb")
    (tmp_path / link).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / link).symlink_to(tmp_path / "ada", target_is_directory=True)
    found = rows(tmp_path)
    assert found[("ada", "01_data")].problem == ""
    bob = [s for s in found.values() if s.student == "bob"]
    assert [s.notebook for s in bob] == NOTEBOOKS
    assert all(s.path is None for s in bob)
    assert bob[0].problem == (f"missing: no 01_data notebook from this student; a symbolic "
                              f"link: {link} (to ada); submit the files themselves")


def test_hidden_files_and_folders_are_skipped(tmp_path):
    put(tmp_path, "ada/01_data.ipynb", "answer")
    put(tmp_path, "ada/.ipynb_checkpoints/01_data-checkpoint.ipynb")
    put(tmp_path, "ada/.ipynb_checkpoints/02_model_io.ipynb")
    put(tmp_path, "ada/._01_data.ipynb")
    put(tmp_path, "ada/.DS_Store")
    put(tmp_path, "__MACOSX/ada/._01_data.ipynb")
    put(tmp_path, "ada/__MACOSX/01_data.ipynb")
    put(tmp_path, ".hidden__01_data.ipynb")
    assert graded(tmp_path) == {("ada", "01_data"): "ada/01_data.ipynb"}
    assert len(rows(tmp_path)) == len(NOTEBOOKS)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_still_gets_a_row(tmp_path):
    path = put(tmp_path, "ada/01_data.ipynb")
    path.chmod(0)
    assert rows(tmp_path)[("ada", "01_data")] == Submission("ada", "01_data", path)


def test_unreadable_folders(tmp_path, monkeypatch):
    put(tmp_path, "ada/02_model_io.ipynb")
    (tmp_path / "ada" / "locked").mkdir()
    scandir = os.scandir

    def refuse(path):  # chmod cannot lock out root, who runs some CI
        if Path(path).name in ("locked", tmp_path.name + "-locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    found = rows(tmp_path)
    assert found[("ada", "01_data")].problem == (
        "missing: no 01_data notebook from this student; ada/locked could not be read "
        "(Permission denied); make it readable")
    assert found[("ada", "02_model_io")].problem == ""
    locked = tmp_path.parent / (tmp_path.name + "-locked")
    locked.mkdir()
    with pytest.raises(LessonError, match="-locked could not be read"):
        find_submissions(locked, NOTEBOOKS)


def test_rows_are_sorted_by_student_then_release_order(tmp_path):
    for rel in ["zoe/02_model_io.ipynb", "ada__04_pretrained_vs_scratch.ipynb",
                "ada/zz.ipynb", "ada/03_finetune_vs_frozen.ipynb", "bea/01_data.ipynb"]:
        put(tmp_path, rel)
    release = NOTEBOOKS[::-1]  # the release's order, not the alphabet's
    keys = [(s.student, s.notebook) for s in find_submissions(tmp_path, release, ["bea"])]
    assert keys == ([("ada", nb) for nb in release] + [("ada", "zz.ipynb")]
                    + [("bea", nb) for nb in release] + [("zoe", nb) for nb in release])


@pytest.mark.parametrize("text, expected", [
    ("name,student\nAda Lovelace, ada \n\nBob,bob\n", ["ada", "bob"]),
    ("id,email\nada,a@x\nbob,b@x\n", ["ada", "bob"]),  # no student column: the first one
    ("\ufeffStudent\r\nada\r\nbob\r\n", ["ada", "bob"]),  # Excel: BOM, CRLF, capital S
])
def test_read_roster(tmp_path, text, expected):
    path = tmp_path / "roster.csv"
    path.write_bytes(text.encode("utf-8"))
    assert read_roster(path) == expected


@pytest.mark.parametrize("content, message", [
    (b"student\nada\nbob\nada\n", "lists ada more than once; keep one line per student"),
    (b"", "is empty"),
    (b"\n \n", "is empty"),
    (b"student\n", "has a header but no students"),
    (b"PK\x03\x04\x14\x00\x00\x00binary", "is not a CSV text file"),
    ("student\nada\n".encode("utf-16"), "is not a CSV text file"),
    (b"student\n\xff\xfe\xfa\n", "is not a CSV text file"),
])
def test_read_roster_refuses(tmp_path, content, message):
    path = tmp_path / "roster.csv"
    path.write_bytes(content)
    with pytest.raises(LessonError, match=message):
        read_roster(path)


def test_read_roster_missing_file(tmp_path):
    with pytest.raises(LessonError, match="does not exist; give a UTF-8 CSV"):
        read_roster(tmp_path / "roster.csv")
    with pytest.raises(LessonError, match="could not be read"):
        read_roster(tmp_path)
