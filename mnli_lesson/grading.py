"""Grade submitted notebooks: run each one headless, count its checks, write one CSV row.

Submissions are found in one folder, in either layout (they may be mixed):

* ``SUBMISSIONS/<student>/NN_name.ipynb`` (also deeper, e.g. an unzipped repository), or
* ``SUBMISSIONS/<student>__NN_name.ipynb`` or ``SUBMISSIONS/<student>-NN_name.ipynb``.

Each runs in its own process, kernel and temporary folder (cwd, HOME, TMPDIR, MPLCONFIGDIR,
MNLI_LESSON_OUT_DIR), with a small environment, HF_HUB_OFFLINE=1 and a time limit. That stops
accidents, not attacks: see docs/INSTRUCTORS.md. A check cell (``nbgrader.grade: true``)
passes when it ran without error and printed ``✓ <name>: right``; with ``release`` the check
cells are first restored from the handed-out notebooks by ``grade_id``.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

import nbformat

from mnli_lesson.checks import PASS_MARK, UNANSWERED_MARK
from mnli_lesson.classroom import clear_outputs, is_check, nbgrader_meta
from mnli_lesson.errors import LessonError

FIELDS = ("student", "notebook", "checks_passed", "checks_total", "ran_to_end", "first_error")
NOTEBOOK = re.compile(r"^\d\d_.+\.ipynb$")
FLAT = re.compile(r"^(?P<student>.+?)(?:__|-)(?P<notebook>\d\d_.+)\.ipynb$")
# The runner process. jsonschema (under nbformat) spends seconds compiling rfc3987_syntax's
# grammar at import, for a URL format check that notebooks never need: it is skipped.
RUNNER = ("import sys; sys.modules['rfc3987_syntax'] = None; "
          "from mnli_lesson.grading import _run; sys.exit(_run(*sys.argv[1:]))")
_LIVE: set[subprocess.Popen] = set()  # runners now running: Ctrl-C must stop them too
GRACE_S = 60  # kernel start and shutdown, on top of the notebook's own time limit
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
ROOT = Path(__file__).resolve().parent.parent


class Submission(NamedTuple):
    student: str
    notebook: str  # the file name without .ipynb, e.g. 01_data
    path: Path


def find_submissions(folder: str | Path) -> list[Submission]:
    """Every submitted notebook in ``folder``, sorted by student and notebook."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise LessonError(f"submissions folder {root} does not exist; give the folder that "
                          "holds one folder (or file prefix) per student")
    found: dict[tuple[str, str], Path] = {}

    def add(student: str, notebook: str, path: Path) -> None:
        other = found.setdefault((student, notebook), path)
        if other != path:
            raise LessonError(f"{other} and {path} are both {student}'s {notebook}; keep one")

    for entry in sorted(root.iterdir()):
        if entry.is_dir():  # skips hidden folders such as .ipynb_checkpoints, at any depth
            for path in sorted(entry.rglob("*.ipynb")):
                hidden = any(p.startswith(".") for p in path.relative_to(root).parts)
                if NOTEBOOK.match(path.name) and not hidden:
                    add(entry.name, path.stem, path)
        elif (match := FLAT.match(entry.name)) and not entry.name.startswith("."):
            add(match["student"], match["notebook"], entry)
    if not found:
        raise LessonError(f"no submissions in {root}; expected <student>/NN_name.ipynb or "
                          "<student>__NN_name.ipynb")
    return [Submission(s, n, p) for (s, n), p in sorted(found.items())]


def _kill(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):  # it may have ended meanwhile
        os.killpg(proc.pid, 9)  # the runner and anything it started in its group


def _row(sub: Submission, error: str = "") -> dict:
    return dict(student=sub.student, notebook=sub.notebook, checks_passed=0, checks_total=0,
                ran_to_end="false", first_error=error)


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # tracebacks carry terminal colours
    return " ".join(text.split())[:limit]


def _sandbox_env(box: Path, profile: str, threads: int) -> dict[str, str]:
    """A small environment: none of the grader's secrets, every path inside ``box``."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    for key, value in os.environ.items():  # the instructor's lesson settings apply to all
        if key.startswith("MNLI_LESSON_"):
            # Resolved: the notebook runs in another folder, where a relative path would miss.
            local = key in ("MNLI_LESSON_DATA", "MNLI_LESSON_MODEL") and Path(value).exists()
            env[key] = str(Path(value).resolve()) if local else value
    if profile != "tiny":  # downloaded data and models stay findable although HOME moves
        cache = Path.home() / ".cache"
        env["HF_HOME"] = os.environ.get("HF_HOME", str(cache / "huggingface"))
        env["KAGGLEHUB_CACHE"] = os.environ.get("KAGGLEHUB_CACHE", str(cache / "kagglehub"))
    for name in ("home", "tmp", "mpl", "out", "work"):
        (box / name).mkdir()
    env.update(HOME=str(box / "home"), TMPDIR=str(box / "tmp"), MPLCONFIGDIR=str(box / "mpl"),
               MNLI_LESSON_OUT_DIR=str(box / "out"), MNLI_LESSON_PROFILE=profile,
               HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PYTHONPATH=str(ROOT),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(threads)))
    return env


def _restore_checks(nb, release) -> list[str]:
    """Put the released check cells back (by grade_id); return the ids that count."""
    wanted = {nbgrader_meta(c)["grade_id"]: c for c in release.cells if is_check(c)}
    seen: set[str] = set()
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in wanted and grade_id not in seen and cell.cell_type == "code":
            seen.add(grade_id)
            cell.source = wanted[grade_id].source
            cell.metadata["nbgrader"] = dict(wanted[grade_id].metadata["nbgrader"])
    return list(wanted)


def _passed(cell) -> bool:
    outs = cell.get("outputs", [])
    lines = "".join(o.get("text", "") for o in outs if o.get("name") == "stdout").splitlines()
    return (not any(o.get("output_type") == "error" for o in outs)
            and any(line.startswith(f"{PASS_MARK} ") for line in lines)
            and not any(line.startswith(f"{UNANSWERED_MARK} ") for line in lines))


def _first_error(nb, stopped: str) -> tuple[str, bool]:
    """(the error to read first, whether the notebook ran to the end): what stopped the run,
    else the first crash, else the first failed check (those are in checks_passed too)."""
    crash, failed = "", ""
    for i, cell in enumerate(nb.cells, start=1):
        for out in (o for o in cell.get("outputs", []) if o.get("output_type") == "error"):
            line = _one_line(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            if out.get("ename") == "CheckFailed":
                failed = failed or line
            else:
                crash = crash or line
    return stopped or crash or failed, not (crash or stopped)


def grade_notebook(sub: Submission, *, profile: str = "tiny", timeout: float = 600,
                   release=None, threads: int = 1, executed: Path | None = None) -> dict:
    """Run one submission in its own temporary folder; return its CSV row."""
    row = _row(sub)
    try:
        nb = nbformat.read(sub.path, as_version=4)
    except Exception as err:  # broken JSON, wrong format, unreadable file: one row, go on
        total = sum(map(is_check, release.cells)) if release is not None else 0
        return {**row, "checks_total": total,
                "first_error": _one_line(f"not a readable notebook: {err}")}
    clear_outputs(nb)  # outputs that came with the submission must never count
    ids = _restore_checks(nb, release) if release is not None else None
    with tempfile.TemporaryDirectory(prefix="mnli-grade-") as tmp:
        box = Path(tmp)
        env = _sandbox_env(box, profile, threads)
        src, dst = box / "work" / f"{sub.notebook}.ipynb", box / "executed.ipynb"
        nbformat.write(nb, src)
        cmd = [sys.executable, "-c", RUNNER, str(src), str(dst), str(timeout)]
        with open(box / "runner.log", "w+") as log:
            proc = subprocess.Popen(cmd, cwd=box / "work", env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            _LIVE.add(proc)
            try:
                stopped = "" if proc.wait(timeout=timeout + GRACE_S) == 0 else "the runner failed"
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
                stopped = f"timed out after {timeout:g} s"
            finally:
                _LIVE.discard(proc)
            log.seek(0)
            tail = [line for line in log.read().splitlines() if line.strip()][-1:]
        reason = dst.with_suffix(".stopped")  # the runner's own words, if it could say them
        if reason.exists():
            stopped = _one_line(reason.read_text())
        elif stopped == "the runner failed":
            stopped = _one_line(f"{stopped}: {tail[0] if tail else proc.returncode}")
        if dst.exists():
            nb = nbformat.read(dst, as_version=4)
        if executed is not None:
            executed.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, executed / f"{sub.notebook}.ipynb")
    by_id: dict[object, object] = {}  # each check once; with a release only its checks count
    for cell in (c for c in nb.cells if is_check(c)):
        by_id.setdefault(nbgrader_meta(cell).get("grade_id") or id(cell), cell)
    checks = list(by_id.values()) if ids is None else [by_id.get(i) for i in ids]
    row["checks_total"] = len(checks)
    row["checks_passed"] = sum(c is not None and _passed(c) for c in checks)
    row["first_error"], ran = _first_error(nb, stopped)
    row["ran_to_end"] = "true" if ran else "false"
    return row


def _write_csv(rows: list[dict], out_csv: Path) -> None:
    tmp = out_csv.with_name(out_csv.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["student"], r["notebook"])))
    tmp.replace(out_csv)  # a reader never sees half a file


def grade(submissions: str | Path, out_csv: str | Path, *, profile: str = "tiny",
          timeout: float = 600, jobs: int = 1, release: str | Path | None = None,
          executed_dir: str | Path | None = None) -> list[dict]:
    """Grade every submission in ``submissions``; write and return one row per notebook.

    ``timeout`` is seconds per notebook; ``jobs`` notebooks run at once; ``release`` is the
    student folder that was handed out; ``executed_dir`` keeps each executed notebook.
    The CSV is rewritten after every notebook, so an interrupted run keeps its rows.
    """
    from mnli_lesson.config import resolve_config

    profile = resolve_config(profile, environ={}).profile  # a typo fails before any run
    if timeout <= 0 or jobs < 1:
        raise LessonError("--timeout must be positive seconds and --jobs at least 1")
    subs = find_submissions(submissions)
    out_csv = Path(out_csv).expanduser().resolve()
    if out_csv.is_dir() or not out_csv.parent.is_dir():
        raise LessonError(f"cannot write {out_csv}; give a .csv file in an existing folder")
    releases: dict = {}
    if release is not None:
        folder = Path(release).expanduser().resolve()
        folder = folder / "student" if (folder / "student").is_dir() else folder
        with suppress(Exception):  # a damaged release is refused below, like a missing one
            releases = {p.stem: nbformat.read(p, as_version=4) for p in folder.glob("*.ipynb")}
        if not releases:
            raise LessonError(f"no readable notebooks in the release folder {folder}; give the "
                              "student folder that make_assignment wrote")
    executed = Path(executed_dir).expanduser().resolve() if executed_dir else None
    threads = max(1, (os.cpu_count() or 1) // jobs)
    rows: list[dict] = []

    def run(sub: Submission) -> dict:
        if releases and sub.notebook not in releases:
            return _row(sub, f"no {sub.notebook}.ipynb in the release; rename the file")
        try:
            return grade_notebook(sub, profile=profile, timeout=timeout,
                                  release=releases.get(sub.notebook), threads=threads,
                                  executed=executed / sub.student if executed else None)
        except Exception as err:  # never let one submission stop the others
            return _row(sub, _one_line(f"grader error: {type(err).__name__}: {err}"))

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in as_completed([pool.submit(run, s) for s in subs]):
            rows.append(row := future.result())
            _write_csv(rows, out_csv)
            stop = "" if row["ran_to_end"] == "true" else f"; stopped: {row['first_error']}"
            print(f"[{len(rows)}/{len(subs)}] {row['student']} {row['notebook']}: "
                  f"{row['checks_passed']}/{row['checks_total']} checks{stop}", flush=True)
    except KeyboardInterrupt:  # runners have their own sessions, so Ctrl-C does not reach them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(_LIVE):
            _kill(proc)
        raise
    pool.shutdown()
    return sorted(rows, key=lambda r: (r["student"], r["notebook"]))


def _run(src: str, dst: str, timeout: str) -> int:
    """The runner process: execute ``src`` into ``dst`` with a time limit for the whole run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(src, as_version=4)
    deadline = time.monotonic() + float(timeout)
    # allow_errors: a wrong answer or a crash must not stop the checks after it.
    client = NotebookClient(nb, kernel_name="python3", allow_errors=True,
                            shutdown_kernel="immediate",
                            timeout_func=lambda cell: max(1.0, deadline - time.monotonic()),
                            resources={"metadata": {"path": str(Path(src).parent)}})
    reason = ""
    try:
        client.execute()
    except CellTimeoutError:
        reason = f"timed out after {float(timeout):g} s"
    except DeadKernelError:
        reason = "the kernel died (out of memory, or the notebook ended its process)"
    except Exception as err:  # the row says what happened; the grader goes on
        reason = f"{type(err).__name__}: {err}"
    finally:
        nbformat.write(nb, dst)
    if reason:
        Path(dst).with_suffix(".stopped").write_text(reason)
    return 3 if reason else 0

