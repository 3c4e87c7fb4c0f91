"""Classroom mode: one source notebook, two versions (solution and student), and a grader.

Cells are marked with nbgrader's cell metadata (``cell.metadata.nbgrader``: ``solution``,
``grade``, ``locked``, ``grade_id``, ``points``, ``schema_version: 3``) and with tags:

* **solution code cell** (``solution: true``): for students each ``### BEGIN SOLUTION`` ...
  ``### END SOLUTION`` block is removed, and the cell's ``### BEGIN STUDENT`` ...
  ``### END STUDENT`` block, written as comments, is uncommented (one leading ``# `` per
  line goes), so ``# baseline = None  # YOUR ANSWER HERE`` becomes code. Without a STUDENT
  block each name the solution assigns is set to None (or ``pass``). Unlike nbgrader there
  is no ``raise NotImplementedError()``: the student notebook must run top to bottom.
* **written answer** (a ``solution: true`` code cell tagged ``answer``, or a ``solution:
  true`` markdown cell): students get a markdown cell ``YOUR ANSWER HERE``.
* **discussion** (tag ``discuss``): kept in both versions, it shows the numbers to discuss.
* **check** (``grade: true``, unique ``grade_id``): kept and locked; it calls
  ``mnli_lesson.checks``, and the grader counts it. ``locked: true`` cells are read-only.

Both versions are written without outputs or execution counts. See docs/INSTRUCTORS.md.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import textwrap
from pathlib import Path

import nbformat

from mnli_lesson.errors import LessonError
from mnli_lesson.store import make_folder

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_STUDENT, END_STUDENT = "### BEGIN STUDENT", "### END STUDENT"
ANSWER_TAG, DISCUSS_TAG = "answer", "discuss"
ANSWER_TEXT = "YOUR ANSWER HERE"
# Prose for one version only, in any markdown cell (invisible when rendered): the lines between
# the first two are left out of the student version; the third's text replaces them there.
PROSE_BEGIN, PROSE_END, PROSE_STUDENT = ("<!-- BEGIN SOLUTION PROSE -->",
                                         "<!-- END SOLUTION PROSE -->", "<!-- STUDENT: ")
MANIFEST = ".mnli-assignment.json"  # marks a folder this module wrote, with its files' hashes


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when unmarked)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def is_check(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade")) and cell.cell_type == "code"


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _blocks(lines: list[str], begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """(begin, end) line indexes of each marked block; unbalanced markers are an error."""
    spans, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise LessonError(f"{where}: '{begin}' inside another one; close it with '{end}'")
            start = i
        elif text == end:
            if start is None:
                raise LessonError(f"{where}: '{end}' without '{begin}'; add or remove one")
            spans.append((start, i))
            start = None
    if start is not None:
        raise LessonError(f"{where}: '{begin}' has no '{end}'; add it")
    return spans


def _placeholder(solution: list[str], indent: str) -> list[str]:
    """Default student code: each name the solution assigns set to None, so later cells run."""
    names: list[str] = []
    try:
        tree = ast.parse(textwrap.dedent("\n".join(solution)))
    except SyntaxError:  # a fragment (e.g. one branch of an if): fall back to `pass`
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    lines = [f"{indent}# YOUR CODE HERE"]
    lines += [f"{indent}{n} = None  # {ANSWER_TEXT}" for n in names] or [f"{indent}pass"]
    return lines


def _uncomment(line: str) -> str:
    body = line.lstrip()
    indent = line[: len(line) - len(body)]
    for prefix in ("# ", "#"):
        if body.startswith(prefix):
            return indent + body[len(prefix):]
    return line


def student_source(source: str, where: str, *, code: bool = True) -> str:
    """``source`` with its SOLUTION blocks swapped for the STUDENT block or a placeholder."""
    lines = source.splitlines()
    solutions = _blocks(lines, BEGIN_SOLUTION, END_SOLUTION, where)
    students = _blocks(lines, BEGIN_STUDENT, END_STUDENT, where)
    if not code:
        students = []
    if not solutions:  # the whole cell is the solution, as in nbgrader
        if students:
            return "\n".join(_uncomment(line) for b, e in students for line in lines[b + 1:e])
        lines = [BEGIN_SOLUTION, *lines, END_SOLUTION]
        solutions = [(0, len(lines) - 1)]
    replace: dict[int, list[str]] = {}
    skip: set[int] = set()
    for begin, end in solutions:
        skip.update(range(begin, end + 1))
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        if code and not students:
            replace[begin] = _placeholder(lines[begin + 1:end], indent)
        elif not code:
            replace[begin] = [ANSWER_TEXT]
    for begin, end in students:
        skip.update(range(begin, end + 1))
        replace[begin] = [_uncomment(line) for line in lines[begin + 1:end]]
    out: list[str] = []
    for i, line in enumerate(lines):
        out.extend(replace.get(i, []))
        if i not in skip:
            out.append(line)
    return "\n".join(out)


def student_prose(source: str, where: str) -> str:
    """A markdown cell for students: solution-only prose out, student-only prose in."""
    lines = source.splitlines()
    spans = _blocks(lines, PROSE_BEGIN, PROSE_END, where)
    drop = {i for begin, end in spans for i in range(begin, end + 1)}
    out = []
    for i, line in enumerate(lines):
        if line.strip().startswith(PROSE_STUDENT) and line.strip().endswith("-->"):
            out.append(line.strip()[len(PROSE_STUDENT):-3].strip())
        elif i not in drop:
            out.append(line)
    return "\n".join(out)


def clear_outputs(nb) -> None:
    """No outputs, execution counts, timings or widget state: versions are handed out clean."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def _validate(nb, name: str) -> None:
    ids: set[str] = set()
    for i, cell in enumerate(nb.cells, start=1):
        where, meta = f"{name} cell {i}", nbgrader_meta(cell)
        marked = any(m in cell.source for m in (BEGIN_SOLUTION, BEGIN_STUDENT))
        if marked and not meta.get("solution"):
            raise LessonError(f"{where} has solution markers but no nbgrader solution: true; "
                              "mark the cell or remove the markers (else students see it)")
        if "### BEGIN HIDDEN TESTS" in cell.source:
            raise LessonError(f"{where} has hidden tests, which this tool does not hide; "
                              "move them out of the notebook")
        if meta.get("solution") and meta.get("grade"):
            raise LessonError(f"{where} is marked both solution and grade; split it into an "
                              "answer cell and a check cell")
        if meta.get("solution") and DISCUSS_TAG in _tags(cell):
            raise LessonError(f"{where} is tagged '{DISCUSS_TAG}' (shown to students) and "
                              "marked solution (hidden); remove one")
        if meta.get("grade"):
            grade_id = meta.get("grade_id")
            if cell.cell_type != "code" or not grade_id:
                raise LessonError(f"{where}: a check (grade: true) must be a code cell with a "
                                  "grade_id; add a unique grade_id")
            if grade_id in ids:
                raise LessonError(f"{where}: grade_id {grade_id!r} is used twice; rename one")
            ids.add(grade_id)


def solution_version(nb, name: str = "notebook"):
    """A copy of the source notebook without outputs (it keeps solutions and markers)."""
    _validate(nb, name)
    out = copy.deepcopy(nb)
    clear_outputs(out)
    return out


def student_version(nb, name: str = "notebook", handout_url: str | None = None):
    """The student copy: solutions replaced by runnable placeholders, checks locked, and the
    Colab badge and set-up cell pointing at ``handout_url`` (none without it), never at the
    lesson's repository, which holds the solutions."""
    from mnli_lesson.colab import for_students

    _validate(nb, name)
    out = copy.deepcopy(nb)
    clear_outputs(out)
    for_students(out, name, handout_url)
    for i, cell in enumerate(out.cells):
        meta, where = nbgrader_meta(cell), f"{name} cell {i + 1}"
        if meta.get("solution"):
            if cell.cell_type == "code" and ANSWER_TAG in _tags(cell):
                new = nbformat.v4.new_markdown_cell(ANSWER_TEXT, metadata=cell.metadata)
                new.pop("id")  # the old cell's id, or none in an nbformat 4.4 notebook
                if "id" in cell:
                    new["id"] = cell["id"]
                out.cells[i] = cell = new
            else:
                code = cell.cell_type == "code"
                cell.source = student_source(cell.source, where, code=code)
        elif cell.cell_type == "markdown":
            cell.source = student_prose(cell.source, where)
        if meta.get("locked") or meta.get("grade"):
            cell.metadata["nbgrader"] = {**meta, "locked": True}
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_out_dir(src: Path, out: Path) -> dict[str, str]:
    """Refuse an out folder that could hold a user's files; return the old manifest."""
    if out == src or src in out.parents:
        raise LessonError(f"output folder {out} is inside the source folder {src}; "
                          "choose an --out outside it")
    if out.exists() and not out.is_dir():
        raise LessonError(f"output folder {out} is a file; choose another --out")
    if not out.exists() or not any(out.iterdir()):
        return {}
    not_ours = LessonError(f"output folder {out} is not empty and is not an earlier "
                           "assignment; choose an empty or new --out")
    try:
        written = json.loads((out / MANIFEST).read_text())["files"]
        names = [Path(rel) for rel in written]
    except (OSError, ValueError, KeyError, TypeError):
        raise not_ours from None
    # A manifest lists only the files this tool writes: <kind>/<name>.ipynb, nothing else
    # (an edited one naming ../x or /etc/x must not make it delete those).
    if any(len(n.parts) != 2 or n.parts[0] not in ("solution", "student")
           or n.suffix != ".ipynb" for n in names):
        raise not_ours
    for kind in ("solution", "student"):
        if (out / kind).is_symlink():
            raise LessonError(f"{out / kind} is a symbolic link; the assignment writes only "
                              "into folders it made: move it away or choose another --out")
    for path in sorted(p for p in out.rglob("*") if (p.is_file() or p.is_symlink())
                       and p.name != MANIFEST):
        if path.is_symlink():
            raise LessonError(f"{path} is a symbolic link; move it away or choose another --out")
        rel = path.relative_to(out).as_posix()
        if rel not in written:
            raise LessonError(f"{path} was not written by this tool; move it away or choose "
                              "another --out")
        if _sha(path) != written[rel]:
            raise LessonError(f"{path} was edited after it was made; move it away or choose "
                              "another --out")
    return written


def make_assignment(src_dir: str | Path, out_dir: str | Path,
                    handout_url: str | None = None) -> dict[str, list[Path]]:
    """Write ``out_dir/solution/*.ipynb`` and ``out_dir/student/*.ipynb`` from ``src_dir``.

    ``handout_url`` is the repository students open on Colab (it must not hold solutions).
    An earlier assignment in ``out_dir`` is replaced; any other content is refused.
    """
    if not str(out_dir).strip():  # Path("") is the current folder: never a silent default
        raise LessonError("--out is empty: name the folder for solution/ and student/")
    src, out = Path(src_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not src.is_dir():
        raise LessonError(f"source folder {src} does not exist; give the notebooks folder")
    sources = sorted(src.glob("*.ipynb"))
    if not sources:
        raise LessonError(f"no .ipynb notebooks in {src}; give the notebooks folder")
    old = _check_out_dir(src, out)
    # Build every version first: a marking mistake in the last notebook writes nothing.
    versions = {}
    for path in sources:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as err:  # nbformat raises JSON, validation and OS errors
            why = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            raise LessonError(f"{path} is not a readable notebook ({why}); fix or remove it"
                              ) from None
        versions[path.name] = (solution_version(nb, path.name),
                               student_version(nb, path.name, handout_url))
    for rel in old:
        (out / rel).unlink(missing_ok=True)
    written: dict[str, list[Path]] = {"solution": [], "student": []}
    hashes: dict[str, str] = {}
    for name, pair in versions.items():
        for kind, nb in zip(("solution", "student"), pair, strict=True):
            target = out / kind / name
            make_folder(target.parent)  # one line below /proc or a file, not a traceback
            nbformat.write(nb, target)
            written[kind].append(target)
            hashes[target.relative_to(out).as_posix()] = _sha(target)
    (out / MANIFEST).write_text(json.dumps({"source": str(src), "files": hashes}, indent=1))
    return written
