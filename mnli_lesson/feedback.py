"""What grading leaves beside the CSV: feedback per student, written answers per question
(for the instructor to mark), the executed notebooks if asked, and the merge of the
instructor's points for written answers into the CSV.

``grades.csv`` gets ``grades-feedback/<student>.md`` and ``grades-written/<question>.md`` plus
``grades-written/points.csv`` (one row per student and question, a ``points`` column to fill
in); ``merge_points`` adds ``written_points`` and ``total`` to the CSV. A folder is written
only if it is new or was written by the grader before (it holds ``MARKER``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mnli_lesson.errors import LessonError
from mnli_lesson.ledger import Ledger
from mnli_lesson.store import atomic_write, make_folder

MARKER = ".mnli-grade"
POINTS_FIELDS = ("student", "notebook", "question", "points")
#: The grades CSV's first columns; one column per exercise follows.
FIELDS = ("student", "notebook", "problem", "points", "points_total", "checks_passed",
          "checks_total", "tampered", "ran_to_end", "first_error", "notes", "submission_sha256",
          "graded_with")


def _own(folder: Path, flag: str = "--out") -> Path:
    """``folder``, made if new; refused if it exists and the grader did not make it."""
    if folder.exists() and not (folder / MARKER).is_file() and (
            not folder.is_dir() or any(folder.iterdir())):
        raise LessonError(f"{folder} exists and was not written by the grader; move it "
                          f"away or choose another {flag}")
    make_folder(folder, flag)  # one line below a file or in /proc, before any grading
    (folder / MARKER).write_text("written by mnli-lesson grade\n")
    return folder


@dataclass
class Folders:
    feedback: Path
    written: Path
    executed: Path | None
    ledgers: dict[Path, Ledger] = field(default_factory=dict)
    """The feedback and written-answers folders' ledgers, read once when they are checked."""

    @classmethod
    def beside(cls, out_csv: Path, executed: str | Path | None) -> Folders:
        stem = out_csv.with_suffix("")
        if executed is not None and not str(executed).strip():
            raise LessonError("--executed is empty: name a folder for the executed notebooks, "
                              "or leave the flag out")
        folders = cls(Path(f"{stem}-feedback"), Path(f"{stem}-written"),
                      Path(executed).expanduser().resolve() if executed else None)
        if folders.executed is not None:  # first: a refusal leaves nothing beside --out
            _own(folders.executed, "--executed")
        for folder in (folders.feedback, folders.written):  # an edited .md: refused now
            folders.ledgers[folder] = Ledger(_own(folder), "grade")
            folders.ledgers[folder].check(sorted(p.name for p in folder.glob("*.md")))
        return folders

    def keep_executed(self, sub, nb) -> None:
        if self.executed is not None:
            target = self.executed / sub.student / f"{sub.notebook}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)

    def write(self, rows: list[dict], said: dict, written: dict) -> None:
        """The feedback files and the written answers, from every row of this run."""
        by_student: dict[str, list[dict]] = {}
        for row in sorted(rows, key=lambda r: (r["student"], r["notebook"])):
            by_student.setdefault(row["student"], []).append(row)
        for student, mine in by_student.items():
            lines = [f"# Feedback for {student}", ""]
            for row in mine:
                lines += [f"## {row['notebook']}: {row.get('points', 0)} of "
                          f"{row.get('points_total', 0)} points", ""]
                if row.get("problem"):
                    lines += [f"Not graded: {row['problem']}", ""]
                if row.get("tampered"):
                    lines += [f"Locked cells changed (the handed-out ones were used): "
                              f"{row['tampered']}", ""]
                for exercise, text in said.get((student, row["notebook"]), {}).items():
                    mark = "✓" if text == "right" else "✗"
                    lines.append(f"- {mark} {exercise}: {text}")
                if row.get("first_error"):
                    lines += ["", f"First error: {row['first_error']}"]
                lines.append("")
            _write_own(self.ledgers[self.feedback], f"{_safe(student)}.md", "\n".join(lines))
        questions: dict[str, list[tuple[str, str, str]]] = {}
        for (student, notebook), answers in sorted(written.items()):
            for question, text in answers.items():
                questions.setdefault(question, []).append((student, notebook, text))
        points = self.written / "points.csv"
        old = _read_points(points)
        for question, answers in questions.items():
            body = [f"# {question}", ""]
            for student, _notebook, text in answers:
                body += [f"## {student}", "", text, ""]
            _write_own(self.ledgers[self.written], f"{_safe(question)}.md", "\n".join(body))
        table = {(s, n, q): old.get((s, n, q), "") for q, a in questions.items()
                 for s, n, _ in a}
        table.update({k: v for k, v in old.items() if k not in table})
        tmp = points.with_name(points.name + ".part")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(POINTS_FIELDS)
            writer.writerows([*k, v] for k, v in sorted(table.items()))
        tmp.replace(points)  # the instructor's points already there are kept


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:100] or "_"


def _write_own(ledger: Ledger, name: str, text: str) -> None:
    """Write ``name`` in the ledger's folder unless it was edited since the grader last wrote
    it (an instructor's notes in a feedback file are refused in one line, never replaced)."""
    ledger.check([name])
    atomic_write(ledger.folder / name, text, option="--out")  # grade reads no environment
    ledger.record(name)


def _read_points(path: Path) -> dict[tuple[str, str, str], str]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["student"], r["notebook"], r["question"]): (r.get("points") or "").strip()
                for r in csv.DictReader(f)}


def merge_points(out_csv: str | Path) -> Path:
    """Add the instructor's written-answer points (``<stem>-written/points.csv``) to the
    grades CSV as ``written_points`` and ``total``; a blank points cell stays blank."""
    out_csv = Path(out_csv).expanduser().resolve()
    points_csv = Path(f"{out_csv.with_suffix('')}-written") / "points.csv"
    if not out_csv.is_file() or not points_csv.is_file():
        raise LessonError(f"need {out_csv} and {points_csv}; run mnli-lesson grade first")
    given = _read_points(points_csv)
    with open(out_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = [n for n in (reader.fieldnames or []) if n not in ("written_points", "total")]
        rows = list(reader)
    for row in rows:
        mine = [v for (s, n, _q), v in given.items()
                if (s, n) == (row["student"], row["notebook"])]
        try:
            values = [float(v) for v in mine if v]
        except ValueError:
            bad = next(v for v in mine if v and not _is_number(v))
            raise LessonError(f"{points_csv}: {bad!r} is not a number of points; fix that "
                              "cell") from None
        complete = bool(mine) and all(mine)
        row["written_points"] = f"{sum(values):g}" if complete else ""
        row["total"] = (f"{float(row.get('points') or 0) + sum(values):g}" if complete or not mine
                        else "")
    tmp = out_csv.with_name(out_csv.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*fields, "written_points", "total"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out_csv)
    return out_csv


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(rows: list[dict], out_csv: Path, columns: list[str]) -> None:
    tmp = out_csv.with_name(out_csv.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*FIELDS, *columns], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["student"], r["notebook"])))
    tmp.replace(out_csv)  # a reader never sees half a file


def earlier_rows(out_csv: Path) -> dict[tuple[str, str], dict]:
    """Rows of an earlier run of this grader at ``out_csv`` ({} if none); anything else
    there is refused: the grader replaces only its own files."""
    if not out_csv.exists():
        return {}
    try:
        with open(out_csv, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ())[:len(FIELDS)] != FIELDS:
                raise ValueError
            return {(r["student"], r["notebook"]): r for r in reader}
    except (OSError, ValueError, UnicodeDecodeError, csv.Error):
        raise LessonError(f"{out_csv} exists and is not a grades CSV this tool wrote; "
                          "choose another --out") from None
