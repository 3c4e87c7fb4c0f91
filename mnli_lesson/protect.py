"""The handed-out cells a submission may not change: found, compared, put back.

As in nbgrader, every locked and check cell of the release has a checksum (its type, source
and nbgrader metadata). In a submission each is found by ``grade_id`` (or, without one, by the
cell id), else by identical source (a cell pasted into a new notebook loses its metadata);
an edited, moved or deleted one is replaced by the release's cell at the release's place
(right after the cell that precedes it there), and named in the grade's ``tampered`` column.
Cells the student added stay: they are their work, and nothing they print is trusted.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
from dataclasses import dataclass

from mnli_lesson.classroom import ANSWER_TEXT, is_check, nbgrader_meta
from mnli_lesson.errors import LessonError


@dataclass(frozen=True)
class Check:
    """A check cell: which exercise it checks, the answer's expression, its points."""

    grade_id: str
    exercise: str
    expression: str
    points: float


def checksum(cell) -> str:
    meta = nbgrader_meta(cell)
    body = json.dumps([cell.get("cell_type"), cell.get("source", ""), meta], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def checksum_notebook(nb) -> str:
    """One checksum of a release notebook's cells (the grade's ``graded_with`` uses it)."""
    return hashlib.sha256("".join(checksum(c) for c in nb.cells).encode()).hexdigest()


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_protected(cell) -> bool:
    return bool(nbgrader_meta(cell).get("locked")) or is_check(cell)


def _key(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id") or cell.get("id")


def _norm(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def checks_of(release, name: str = "notebook") -> list[Check]:
    """The release's check cells, each a ``checks.check("<exercise>", <answer>)`` call."""
    found: list[Check] = []
    for cell in (c for c in release.cells if is_check(c)):
        meta = nbgrader_meta(cell)
        calls = [node for node in ast.walk(ast.parse(cell.source))
                 if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "check"
                 and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)]
        if len(calls) != 1:
            raise LessonError(f"{name}: check cell {meta.get('grade_id')!r} must make exactly "
                              "one checks.check(\"<exercise>\", <answer>) call")
        exercise = calls[0].args[0].value
        expression = ast.get_source_segment(cell.source, calls[0].args[1])
        points = float(meta.get("points") or 1)
        found.append(Check(meta["grade_id"], str(exercise), str(expression), points))
    return found


def restore(nb, release) -> tuple[object, list[str], list[str]]:
    """``(notebook with the release's protected cells in place, tampered, notes)``.

    ``tampered`` names each protected cell (by grade_id) that was edited, moved or deleted;
    ``notes`` says which were found only by their content (their metadata was lost).
    """
    nb = copy.deepcopy(nb)
    protected = {_key(c): c for c in release.cells if is_protected(c)}
    release_keys = [_key(c) for c in release.cells]
    found: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        key = _key(cell)
        if key in protected and key not in found:
            found[key] = i
    notes: list[str] = []
    by_content: set[str] = set()  # put back in place, but not called tampered: a lost id
    for key, cell in protected.items():  # lost metadata: the same source, not yet claimed
        if key in found:
            continue
        for i, mine in enumerate(nb.cells):
            if i not in found.values() and _norm(mine.get("source", "")) == _norm(cell.source):
                found[key] = i
                notes.append(f"{key} found by its content (its metadata was lost)")
                by_content.add(key)
                break
    graded = {nbgrader_meta(c).get("grade_id") for c in release.cells} - {None}

    def before(cells, index: int) -> str | None:  # the nearest preceding graded cell
        return next((nbgrader_meta(c)["grade_id"] for c in reversed(cells[:index])
                     if nbgrader_meta(c).get("grade_id") in graded), None)

    tampered: list[str] = []
    for key, cell in protected.items():
        name = nbgrader_meta(cell).get("grade_id") or f"cell {release_keys.index(key) + 1}"
        if key not in found:
            tampered.append(f"{name} (deleted)")
        elif key in by_content:
            continue
        elif checksum(nb.cells[found[key]]) != checksum(cell):
            tampered.append(f"{name} (edited)")
        elif before(nb.cells, found[key]) != before(release.cells, release_keys.index(key)):
            tampered.append(f"{name} (moved)")
    cells = [c for i, c in enumerate(nb.cells) if i not in set(found.values())]
    answers = {c.grade_id: _root_name(c.expression) for c in checks_of(release)}
    for index, cell in enumerate(release.cells):  # in release order: anchors come first
        if not is_protected(cell):
            continue
        # Right after the release cell before it, found by grade_id or cell id; else after
        # the cell that assigns the answer it checks (metadata and ids lost in a copy-paste);
        # else after the nearest earlier release cell still there.
        at = _after(cells, release.cells[index - 1]) if index else 0
        if at is None:
            at = _after_binding(cells, answers.get(grade_id(cell)))
        for earlier in reversed(release.cells[:index - 1] if at is None else []):
            if (at := _after(cells, earlier)) is not None:
                break
        cells.insert(at or 0, copy.deepcopy(cell))
    nb.cells = cells
    return nb, tampered, notes


def _ids(cell) -> set[str]:
    return {k for k in (grade_id(cell), cell.get("id")) if k}


def _after(cells: list, wanted) -> int | None:
    """The index after the cell that is ``wanted`` (by grade_id or cell id), or None."""
    keys = _ids(wanted)
    return next((j + 1 for j, c in enumerate(cells) if keys & _ids(c)), None)


def _root_name(expression: str) -> str | None:
    node = ast.parse(expression, mode="eval").body
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _after_binding(cells: list, name: str | None) -> int | None:
    """The index after the last code cell that binds ``name`` at its top level, or None."""
    found = None
    for j, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or not name:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: not a cell that assigns an answer
            continue
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound = {stmt.name}
            else:
                targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
                bound = {n.id for t in targets if t is not None for n in ast.walk(t)
                         if isinstance(n, ast.Name)}
            if name in bound:
                found = j + 1
    return found


def written_answers(nb, release) -> dict[str, str]:
    """Each written answer (a solution cell that no check reads: Q1-Q3, open exercises), by
    grade_id, as the student left it."""
    checked = {check.exercise for check in checks_of(release)}
    wanted = [nbgrader_meta(c)["grade_id"] for c in release.cells
              if nbgrader_meta(c).get("solution") and nbgrader_meta(c).get("grade_id")
              and nbgrader_meta(c)["grade_id"] not in checked]
    mine = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    answers: dict[str, str] = {}
    for grade_id in wanted:
        cell = mine.get(grade_id)
        text = _norm(cell.source) if cell is not None else ""
        if cell is None:
            answers[grade_id] = "(no answer cell: its metadata was lost or it was deleted)"
        elif not text or text == ANSWER_TEXT:
            answers[grade_id] = "(not answered)"
        else:
            answers[grade_id] = text
    return answers
