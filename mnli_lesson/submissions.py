"""Find students' notebooks in a submissions folder, and read the class roster.

Layouts, which may be mixed in one folder:

* ``FOLDER/<student>/NN_name.ipynb``, also deeper (e.g. an unzipped repository), or
* ``FOLDER/<student>__NN_name.ipynb``, ``<student>-NN_name.ipynb`` or ``<student>_NN_name.ipynb``.

Every (student, notebook) gets exactly one row; anything that cannot be graded gets a row
whose ``problem`` says why, so that one student's mistake never stops a class's grading.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mnli_lesson.errors import LessonError

# Skipped silently at any depth: Jupyter's autosaves (.ipynb_checkpoints), macOS zip debris
# (__MACOSX, ._name, .DS_Store) and other hidden files are never a student's answer, and a
# row for each would bury the problems an instructor must act on.
SKIPPED = {"__MACOSX"}
# Where a flat file name may split into student and notebook: __, - or _ before a number.
SPLIT = re.compile(r"(?=(__|-|_)\d{1,2}[_-])")
LAYOUTS = "<student>/NN_name.ipynb or <student>__NN_name.ipynb"


class Submission(NamedTuple):
    student: str
    notebook: str  # the release's notebook name without .ipynb, e.g. "01_data"; in a
    # "not a notebook name" row, the file's path below the student's folder instead
    path: Path | None  # None when there is nothing to grade (missing, refused)
    problem: str = ""  # "" when the file is to be graded; else why not, for an instructor


def read_roster(path: str | Path) -> list[str]:
    """Student ids, in file order, from a CSV with a header; the column is ``student``
    (any case), else the first column. Blank lines and surrounding spaces are ignored."""
    path = Path(path).expanduser()
    fix = "give a UTF-8 CSV whose header names a `student` column"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LessonError(f"roster {path} does not exist; {fix}") from None
    except OSError as err:  # a folder, no permission, ...
        raise LessonError(f"roster {path} could not be read ({err.strerror}); {fix}") from None
    try:
        if b"\0" in raw:  # csv would read binary files (and UTF-16) as garbage ids
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8-sig")  # -sig: Excel starts its CSVs with a BOM
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if "".join(r).strip()]
    except (UnicodeDecodeError, csv.Error):
        raise LessonError(f"roster {path} is not a CSV text file; {fix}") from None
    if not rows:
        raise LessonError(f"roster {path} is empty; {fix}")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("student") if "student" in header else 0
    students = [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]
    if not students:
        raise LessonError(f"roster {path} has a header but no students; {fix}")
    twice = sorted(s for s, n in Counter(students).items() if n > 1)
    if twice:
        raise LessonError(f"roster {path} lists {', '.join(twice)} more than once; "
                          "keep one line per student")
    return students


def find_submissions(folder: str | Path, notebooks: list[str],
                     roster: list[str] | None = None) -> list[Submission]:
    """One Submission per (student, notebook), sorted by student then ``notebooks`` order.

    The students are the roster's and those found (without a roster, those found): each
    gets a row for every release notebook, "missing" where there is none. Students found
    but not on the roster are graded like the others (problem ""): ``unexpected_students``
    names them, for a note column. Files whose name is no release notebook get one extra
    row each (path None), after the student's release rows, under the file's name when no
    student can be told. Symbolic links are never followed (a student could link to another
    student's work); an unreadable file is still returned, for the grader to report.
    """
    if not notebooks:
        raise LessonError("no notebook names given; give the release's NN_name list")
    root = Path(folder).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise LessonError(f"submissions folder {root} {what}; give the folder that holds "
                          f"one folder (or file prefix) per student: {LAYOUTS}")
    root = root.resolve()
    found: dict[tuple[str, str], list[tuple[Path, bool]]] = {}
    notes: dict[str, list[str]] = {}  # per student found: why some files may be missing
    extra: list[Submission] = []

    def add(student: str, name: str, label: str, path: Path, link: bool) -> None:
        notebook = match_name(name, notebooks)
        if notebook is None:  # label: the file's path below the student's folder (or FOLDER)
            extra.append(Submission(student, label, None, _unknown(path.name, notebooks)))
        else:
            found.setdefault((student, notebook), []).append((path, link))

    for entry in _entries(root, root, None):
        path = Path(entry.path)
        if entry.is_dir():  # follows a link, so that a linked student folder gets its rows
            student_notes = notes.setdefault(entry.name, [])
            if entry.is_symlink():
                student_notes.append(_link(path, root))
                continue
            for file, link in _files(path, root, student_notes):
                add(entry.name, file.name, file.relative_to(path).as_posix(), file, link)
        elif _is_notebook(entry.name):
            split = _split_flat(entry.name, notebooks)
            if split:
                notes.setdefault(split[0], [])
                add(*split, entry.name, path, entry.is_symlink())
            elif notebook := match_name(entry.name, notebooks):
                extra.append(Submission(entry.name, notebook, None, (
                    f"no student in this file name: {entry.name}; name it "
                    f"<student>__{notebook}.ipynb or put it in the student's folder")))
            else:
                extra.append(Submission(entry.name, entry.name, None,
                                        _unknown(entry.name, notebooks)))
        elif _misnamed(entry):
            extra.append(Submission(entry.name, entry.name, None, (
                f"{entry.name} is a notebook saved under another name: rename it to end in "
                ".ipynb")))
    students = set(notes) | set(roster or ())
    if not students and not extra:
        raise LessonError(f"no submissions in {root}; expected {LAYOUTS}")
    rows = [_resolve(s, nb, found.get((s, nb), []), notes.get(s, []), root)
            for s in students for nb in notebooks] + extra
    order = {nb: i for i, nb in enumerate(notebooks)}
    return sorted(rows, key=lambda r: (r.student, order.get(r.notebook, len(order)), r.notebook))


def unexpected_students(subs: list[Submission], roster: list[str]) -> list[str]:
    """Students with rows in ``subs`` who are not on ``roster``, sorted: a typo in a folder
    name shows here (and as that roster student's "missing" rows), and so does the file name
    standing in for the student of a file whose student cannot be told."""
    return sorted({s.student for s in subs} - set(roster))


def match_name(name: str, notebooks: list[str]) -> str | None:
    """The release notebook a file name stands for, or None. Lenient only where unambiguous
    (and reported nowhere): the extension in any case, ``-`` for ``_``, and a number without
    its leading zero: ``1-data.IPYNB`` is 01_data, ``01_Data.ipynb`` is nothing."""
    if not _is_notebook(name):
        return None
    stem = name[:-len(".ipynb")]
    if stem in notebooks:
        return stem
    hits = [nb for nb in notebooks if _loose(nb) == _loose(stem)]
    return hits[0] if len(hits) == 1 else None


def _loose(stem: str) -> str:
    return re.sub(r"^0+(?=\d)", "", stem.replace("-", "_"))


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _misnamed(entry: os.DirEntry) -> bool:
    """A notebook saved under another name: ``.ipynb`` inside a file's name, not at its end
    (a browser's ``01_data.ipynb.txt``, a second download's ``x.ipynb (1)``)."""
    return ".ipynb" in entry.name.lower() and entry.is_file(follow_symlinks=False)


def _unknown(name: str, notebooks: list[str]) -> str:
    return (f"not a notebook name this assignment has: {name} "
            f"(expected one of {', '.join(notebooks)})")


def _split_flat(name: str, notebooks: list[str]) -> tuple[str, str] | None:
    """(student, notebook file name) of a flat ``<student>__NN_name.ipynb``, or None.
    Student ids may hold ``_`` and ``-`` too: the split that names a release notebook wins."""
    stem, ext = name[:-len(".ipynb")], name[-len(".ipynb"):]
    splits = [(stem[:m.start()], stem[m.end(1):] + ext)
              for m in SPLIT.finditer(stem) if m.start() > 0]
    if not splits and "__" in stem.strip("_"):  # e.g. ada__Untitled.ipynb: still ada's
        student, _, rest = stem.strip("_").partition("__")
        splits = [(student, rest + ext)]
    return next((s for s in splits if match_name(s[1], notebooks)), splits[0] if splits else None)


def _entries(folder: Path, root: Path, notes: list[str] | None) -> list[os.DirEntry]:
    """The folder's entries that are not hidden, sorted. If it cannot be read: a note for
    the student's missing rows, or (``notes`` None, FOLDER itself) a LessonError."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError as err:
        name = folder if notes is None else _rel(folder, root)
        why = f"{name} could not be read ({err.strerror}); make it readable"
        if notes is None:
            raise LessonError(f"submissions folder {why}") from None
        notes.append(why)
        return []
    shown = (e for e in entries if not e.name.startswith(".") and e.name not in SKIPPED)
    return sorted(shown, key=lambda e: e.name)


def _files(folder: Path, root: Path, notes: list[str]) -> Iterator[tuple[Path, bool]]:
    """Notebook files below ``folder``, each with whether it is a symbolic link (to be
    refused); links are never followed, and a linked folder becomes a note."""
    for entry in _entries(folder, root, notes):
        path = Path(entry.path)
        if _is_notebook(entry.name) and not entry.is_dir(follow_symlinks=False):
            yield path, entry.is_symlink()
        elif _misnamed(entry):
            notes.append(f"{_rel(path, root)} is a notebook saved under another name (a "
                         "browser's .txt?): rename it to end in .ipynb")
        elif entry.is_symlink():
            if entry.is_dir():
                notes.append(_link(path, root))
        elif entry.is_dir():
            yield from _files(path, root, notes)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _link(link: Path, root: Path, what: str = "the files themselves") -> str:
    target = _rel(Path(os.path.realpath(link)), root)
    return f"a symbolic link: {_rel(link, root)} (to {target}); submit {what}"


def _resolve(student: str, notebook: str, files: list[tuple[Path, bool]], notes: list[str],
             root: Path) -> Submission:
    """The row for one (student, notebook) from every file found for it."""
    if not files:
        why = "".join(f"; {note}" for note in notes)
        return Submission(student, notebook, None,
                          f"missing: no {notebook} notebook from this student{why}")
    links = sorted(path for path, link in files if link)
    if links:
        return Submission(student, notebook, None, _link(links[0], root, "the file itself"))
    paths = sorted(path for path, _ in files)
    if len(paths) > 1 and not _same_bytes(paths):
        count = "two" if len(paths) == 2 else str(len(paths))
        named = ", ".join(_rel(p, root) for p in paths)
        return Submission(student, notebook, None,
                          f"{count} files for this notebook: {named}; keep one")
    return Submission(student, notebook, paths[0])


def _same_bytes(paths: list[Path]) -> bool:
    """Whether all files hold the same bytes (unreadable ones count as different)."""
    try:
        first = paths[0].read_bytes()
        return all(p.read_bytes() == first for p in paths[1:])
    except OSError:
        return False
