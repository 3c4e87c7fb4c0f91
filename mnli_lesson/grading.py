"""Grade submitted notebooks: each runs in its own box, its answers are judged outside it.

For every (student, notebook) the grader writes one CSV row, whatever happened:

1. ``submissions.find_submissions`` names every file (and every missing, misnamed, duplicated
   or linked one) against the release and the roster;
2. ``protect.restore`` puts the handed-out check cells back, naming any tampered one;
3. the submission runs in a sandbox (``sandbox``: no network, no other files or processes,
   limits; ``--unsafe`` runs it without one) where, after each check cell, the runner
   prints the answer as a plain JSON value (``grade_runner``);
4. the grader judges each answer against ``answer_key``, computed in this process from
   comparisons it ran itself (the student's box gets a copy, so their run reuses them).

Nothing the student's kernel prints or writes counts except the collected plain values.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from pathlib import Path

import nbformat

from mnli_lesson import feedback, protect, sandbox
from mnli_lesson.checks import RIGHT, UNANSWERED, WRONG, verdict
from mnli_lesson.classroom import clear_outputs
from mnli_lesson.errors import LessonError
from mnli_lesson.exercises import ANSWER_MARK
from mnli_lesson.store import check_writable
from mnli_lesson.submissions import Submission, find_submissions, read_roster

RUNNER = ("import sys; sys.modules['rfc3987_syntax'] = None; "  # seconds of jsonschema import
          "from mnli_lesson.grade_runner import run; sys.exit(run(*sys.argv[1:]))")
GRACE_S = 60  # kernel start and shutdown, on top of the notebook's own time limit
MAX_SUBMISSION_BYTES = 64 << 20
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT")
PACKAGE = Path(__file__).resolve().parent
KEPT_OUT = ("answer_key.py", "notebooks", "__pycache__")  # never in a student's box: the
# key, and the solution notebooks a wheel carries
_LIVE: set[subprocess.Popen] = set()  # runners now running: Ctrl-C must stop them too


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _one_line(text: object, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # tracebacks carry terminal colours
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))[:limit]


class Grader:
    """One grading run's fixed parts: the release, its checks, the key and the boxes."""

    def __init__(self, release: dict, key, cfg, *, timeout: float, threads: int, unsafe: bool,
                 work: Path, reference: Path, limits: sandbox.Limits | None = None):
        self.release, self.key, self.cfg = release, key, cfg
        self.checks = {name: protect.checks_of(nb, name) for name, nb in release.items()}
        self.timeout, self.threads, self.unsafe = timeout, threads, unsafe
        self.work, self.reference = work, reference
        self.limits = limits or sandbox.Limits()
        self.package = work / "package" / "mnli_lesson"  # the package without its key
        shutil.copytree(PACKAGE, self.package, ignore=shutil.ignore_patterns(*KEPT_OUT))
        self.graded_with = hashlib.sha256(json.dumps(
            [cfg.profile, timeout, sorted((n, protect.checksum_notebook(nb))
                                          for n, nb in release.items())]).encode()
        ).hexdigest()[:12]

    # ---------------------------------------------------------------- one submission
    def row(self, sub: Submission) -> tuple[dict, dict[str, str], dict[str, str], object]:
        """``(CSV row, feedback per check, written answers, executed notebook or None)``."""
        checks = self.checks.get(sub.notebook, [])  # none for a file the release lacks
        row = dict(student=sub.student, notebook=sub.notebook, problem=sub.problem, points=0,
                   points_total=_num(sum(c.points for c in checks)), checks_passed=0,
                   checks_total=len(checks), tampered="", ran_to_end="false", first_error="",
                   notes="", submission_sha256="", graded_with=self.graded_with)
        results = {c.exercise: "not graded" for c in checks}
        if sub.path is None:
            return row, {}, {}, None
        try:
            raw = sub.path.read_bytes()[:MAX_SUBMISSION_BYTES + 1]
            row["submission_sha256"] = hashlib.sha256(raw).hexdigest()
            if len(raw) > MAX_SUBMISSION_BYTES:
                raise ValueError(f"over {MAX_SUBMISSION_BYTES >> 20} MB")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        except Exception as err:  # broken JSON, wrong format, unreadable file: one row, go on
            row["problem"] = _one_line(f"not a readable notebook: {err}")
            return row, {}, {}, None
        clear_outputs(nb)  # outputs that came with the submission never count
        release = self.release[sub.notebook]
        nb, tampered, notes = protect.restore(nb, release)
        written = protect.written_answers(nb, release)
        row["tampered"], row["notes"] = "; ".join(tampered), "; ".join(notes)
        index = {protect.grade_id(c): i for i, c in enumerate(nb.cells)}
        run, executed = self._execute(nb, {index[c.grade_id]: (c.exercise, c.expression)
                                           for c in checks if c.grade_id in index})
        lines = {c.exercise: _collected(run, c.exercise) for c in checks}
        failed_cells = set(run.get("error_cells", []))
        said: dict[str, str] = {}
        for check in checks:
            status, hint = self._judge(check, lines[check.exercise],
                                       index.get(check.grade_id) in failed_cells)
            results[check.exercise], said[check.exercise] = status, hint
            if status == RIGHT:
                row["points"] = _num(row["points"] + check.points)
                row["checks_passed"] += 1
        row.update(results)
        stopped = _one_line(run.get("stopped", ""))
        crash = _first_error(executed, failed_cells) if executed is not None else ""
        row["first_error"] = stopped or crash
        row["ran_to_end"] = "false" if (stopped or failed_cells or executed is None) else "true"
        said = {e: s if s == RIGHT or not said.get(e) else f"{s} — {said[e]}"
                for e, s in results.items()}
        return row, said, written, executed

    def _judge(self, check: protect.Check, record: dict | None, cell_failed: bool
               ) -> tuple[str, str]:
        if record is None:
            return "not run", "the notebook stopped before this check"
        if cell_failed:  # whatever the cell printed, its kernel reply was an error
            return "check cell failed", "the check cell ended in an error; run it again"
        status = record.get("status")
        if status == "unanswered":
            return UNANSWERED, ""
        if status == "not a plain value":  # e.g. an object whose == is always true
            return status, _one_line(f"give a number, a word or a short list, not "
                                     f"{record.get('detail', '')}")
        if status == "raised":
            return WRONG, _one_line(f"your function raised {record.get('detail', '')}")
        if status != "answered":
            return "could not be read", "the answer's name is not defined when the check runs"
        return verdict(self.key.expect(check.exercise), record.get("value"))

    def _execute(self, nb, probes: dict[int, tuple[str, str]]) -> tuple[dict, object]:
        """Run the restored notebook in a box, collecting the answer after each cell in
        ``probes`` (cell index -> exercise, expression); ``(run.json, executed or None)``."""
        with tempfile.TemporaryDirectory(prefix="mnli-grade-", dir=self.work) as tmp:
            exchange = Path(tmp)
            boxed = not self.unsafe
            inside = "/exchange" if boxed else str(exchange)
            root = "/box" if boxed else str(exchange)  # its work, home, tmp and out folders
            for sub in ("out", "work", "home", "tmp"):
                (exchange / sub).mkdir()
            nbformat.write(nb, exchange / "submission.ipynb")
            (exchange / "plan.json").write_text(json.dumps(
                {"probes": probes, "out_dir": f"{root}/out", "workdir": f"{root}/work"}))
            env = self._env(root)
            argv = [sys.executable, "-c", RUNNER, inside, str(self.timeout), str(self.reference)]
            if boxed:
                box = sandbox.Box(read_only=self._visible(), exchange=exchange, env=env,
                                  replace=((self.package, PACKAGE),), limits=self.limits)
                cmd, kwargs = sandbox.command(box, argv), sandbox.popen_kwargs(box)
            else:
                cmd, kwargs = argv, dict(start_new_session=True, stdin=subprocess.DEVNULL,
                                         cwd=exchange / "work")
            with open(self.work / f"{exchange.name}.log", "w") as log:
                proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        **kwargs)
                _LIVE.add(proc)
                try:
                    proc.wait(timeout=self.timeout + GRACE_S)
                    stopped = ""
                except subprocess.TimeoutExpired:
                    stopped = f"timed out after {self.timeout:g} s"
                finally:
                    _kill(proc)
                    _LIVE.discard(proc)
            tail = [line for line in (self.work / f"{exchange.name}.log").read_text(
                errors="replace")[-4000:].splitlines() if line.strip()][-1:]
            run: dict = {"stopped": stopped or "the runner ended without a report: "
                         + (tail[0] if tail else f"exit {proc.returncode}")}
            with suppress(Exception):  # a report the box damaged counts as no report
                run = json.loads((exchange / "run.json").read_text()[:1 << 22])
                run["stopped"] = stopped or str(run.get("stopped", ""))
            executed = None
            with suppress(Exception):
                executed = nbformat.read(exchange / "executed.ipynb", as_version=4)
        return run, executed

    def _env(self, root: str) -> dict[str, str]:
        """A small environment: none of the grader's secrets; the lesson's own settings;
        every folder it writes below ``root``."""
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env.update(_lesson_env())
        env.update(HOME=f"{root}/home", TMPDIR=f"{root}/tmp", MPLCONFIGDIR=f"{root}/tmp",
                   MNLI_LESSON_OUT_DIR=f"{root}/out", MNLI_LESSON_PROFILE=self.cfg.profile,
                   HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PYTHONNOUSERSITE="1",
                   OMP_NUM_THREADS=str(self.threads))
        env["PYTHONPATH"] = str(self.package.parent)  # the copy without the key comes first
        if self.cfg.profile != "tiny":  # downloaded data and models stay findable
            cache = Path.home() / ".cache"
            env["HF_HOME"] = os.environ.get("HF_HOME", str(cache / "huggingface"))
            env["KAGGLEHUB_CACHE"] = os.environ.get("KAGGLEHUB_CACHE", str(cache / "kagglehub"))
        return env

    def _visible(self) -> tuple[Path, ...]:
        """Host paths a box reads: Python, its packages, the data, models and caches."""
        paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
                 self.reference, self.package.parent}
        for key in ("MNLI_LESSON_DATA", "MNLI_LESSON_MODEL", "HF_HOME", "KAGGLEHUB_CACHE"):
            value = os.environ.get(key, "")
            if value and Path(value).exists():
                paths.add(Path(value).resolve())
        if self.cfg.profile != "tiny":
            paths |= {p for p in (Path.home() / ".cache" / "huggingface",
                                  Path.home() / ".cache" / "kagglehub") if p.exists()}
        return tuple(sorted(paths))  # the tiny checkpoint is rebuilt in the box's own /tmp


def _lesson_env() -> dict[str, str]:
    """The instructor's lesson settings (MNLI_LESSON_*), paths resolved for another cwd."""
    env = {}
    for key, value in os.environ.items():
        if key.startswith("MNLI_LESSON_") and key not in ("MNLI_LESSON_OUT_DIR",
                                                          "MNLI_LESSON_PROFILE"):
            local = key in ("MNLI_LESSON_DATA", "MNLI_LESSON_MODEL") and Path(value).exists()
            env[key] = str(Path(value).resolve()) if local else value
    return env


def _collected(run: dict, exercise: str) -> dict | None:
    """The last answer line the probe printed for ``exercise`` (None if it never ran)."""
    entry = run.get("collected", {}).get(exercise)
    if not isinstance(entry, dict):
        return None
    if entry.get("status") == "error":
        return {"status": "error"}
    for line in reversed(str(entry.get("stdout", "")).splitlines()):
        if line.startswith(ANSWER_MARK):
            with suppress(ValueError):
                record = json.loads(line[len(ANSWER_MARK):])
                if isinstance(record, dict) and record.get("exercise") == exercise:
                    return record
    return {"status": "error"}


def _first_error(nb, failed_cells: set[int]) -> str:
    for i, cell in enumerate(nb.cells):
        for out in (o for o in cell.get("outputs", []) if o.get("output_type") == "error"):
            return _one_line(f"cell {i + 1}: {out.get('ename')}: {out.get('evalue')}")
        if i in failed_cells:
            return f"cell {i + 1}: the kernel reported an error"
    return ""


def _kill(proc: subprocess.Popen) -> None:
    sandbox.kill(proc)
    with suppress(Exception):
        proc.wait(timeout=10)


def grade(submissions: str | Path, out_csv: str | Path, *, release: str | Path,
          profile: str = "tiny", timeout: float = 600, jobs: int = 1,
          roster: str | Path | None = None, unsafe: bool = False,
          executed_dir: str | Path | None = None, key=None,
          limits: sandbox.Limits | None = None) -> list[dict]:
    """Grade every submission; write one CSV row per (student, notebook), feedback per
    student and the written answers per question next to ``out_csv``; return the rows.

    An interrupted run, run again, keeps the rows whose submission did not change.
    """
    from mnli_lesson.config import resolve_config

    cfg = resolve_config(profile, environ=_lesson_env())  # a typo fails before any run
    if not (0 < timeout < float("inf")) or not 1 <= jobs <= 64:
        raise LessonError("--timeout must be positive seconds and --jobs from 1 to 64")
    out_csv = Path(out_csv).expanduser().resolve()
    if out_csv.is_dir() or not out_csv.parent.is_dir() or out_csv.suffix != ".csv":
        raise LessonError(f"cannot write {out_csv}; give a new .csv file in an existing folder")
    # Now, not after the first notebook; grade reads no MNLI_LESSON_OUT_DIR, so name --out alone.
    check_writable(out_csv.parent, need_bytes=1_000_000, option="--out")
    earlier = feedback.earlier_rows(out_csv)
    inside = Path(submissions).expanduser().resolve()
    if executed_dir and inside in (chosen := Path(executed_dir).expanduser().resolve(),
                                   *chosen.parents):
        raise LessonError(f"--executed {chosen} is inside the submissions folder {inside}: the "
                          "next grading would take its copies for submissions; choose another")
    folders = feedback.Folders.beside(out_csv, executed_dir)  # refuses folders not ours
    releases = _read_release(release)
    students = read_roster(roster) if roster is not None else None
    subs = find_submissions(submissions, sorted(releases), students)
    if not unsafe and (why := sandbox.unavailable()):
        raise LessonError(f"cannot make a sandbox here ({why}); a sandbox keeps students' "
                          "code away from this machine: fix that, or pass --unsafe")
    with tempfile.TemporaryDirectory(prefix="mnli-grader-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # a box drops to another user when the grader is root
        if key is None:
            from mnli_lesson.answer_key import LessonKey
            from mnli_lesson.exercises import Context
            key = LessonKey(Context(cfg, results=work / "reference"))
        grader = Grader(releases, key, cfg, timeout=timeout, unsafe=unsafe, work=work,
                        threads=max(1, (os.cpu_count() or 1) // jobs),
                        reference=work / "reference", limits=limits)
        from mnli_lesson.checkpoints import quiet

        print("computing the answer key (the comparisons the checks read) ...", flush=True)
        with quiet():  # every answer, before any student runs
            for name, checks in grader.checks.items():
                for check in checks:
                    if key.expect(check.exercise) is None:
                        raise LessonError(f"{name}: no answer key for exercise "
                                          f"{check.exercise!r}")
        (work / "reference").mkdir(exist_ok=True)
        for path in (work / "reference").rglob("*"):  # results are written owner-only (0600)
            path.chmod(0o755 if path.is_dir() else 0o644)
        columns = [c.exercise for n in sorted(grader.checks) for c in grader.checks[n]]
        with _sigterm_as_interrupt():  # `kill` or a scheduler's stop cleans up like Ctrl-C
            return _grade_all(grader, subs, earlier, out_csv, columns, folders, jobs)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _grade_all(grader: Grader, subs: list[Submission], earlier: dict, out_csv: Path,
               columns: list[str], folders: feedback.Folders, jobs: int) -> list[dict]:
    rows: list[dict] = []
    notes: dict[tuple[str, str], dict[str, str]] = {}
    written: dict[tuple[str, str], dict[str, str]] = {}

    def one(sub: Submission) -> dict:
        old = earlier.get((sub.student, sub.notebook))
        if old and old.get("graded_with") == grader.graded_with and sub.path is not None:
            with suppress(OSError):
                raw = sub.path.read_bytes()
                if hashlib.sha256(raw).hexdigest() == old["submission_sha256"]:
                    key = (sub.student, sub.notebook)  # its feedback and answers again
                    notes[key] = {c.exercise: old.get(c.exercise, "")
                                  for c in grader.checks.get(sub.notebook, [])}
                    with suppress(Exception):
                        written[key] = protect.written_answers(
                            nbformat.reads(raw.decode("utf-8"), as_version=4),
                            grader.release[sub.notebook])
                    return {**old, "_kept": True}
        try:
            row, said, answers, executed = grader.row(sub)
        except Exception as err:  # never let one submission stop the others
            row, said, answers, executed = dict(
                student=sub.student, notebook=sub.notebook, graded_with=grader.graded_with,
                problem=_one_line(f"grader error: {type(err).__name__}: {err}")), {}, {}, None
        notes[sub.student, sub.notebook], written[sub.student, sub.notebook] = said, answers
        if executed is not None:
            folders.keep_executed(sub, executed)
        return row

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in as_completed([pool.submit(one, s) for s in subs]):
            row = future.result()
            kept = row.pop("_kept", False)
            rows.append(row)
            feedback.write_csv(rows, out_csv, columns)
            what = row.get("problem") or f"{row.get('points')}/{row.get('points_total')} points"
            print(f"[{len(rows)}/{len(subs)}] {row['student']} {row['notebook']}: {what}"
                  + (" (unchanged, kept)" if kept else ""), flush=True)
    except KeyboardInterrupt:  # runners have their own sessions, so Ctrl-C does not reach them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(_LIVE):
            _kill(proc)
        raise
    pool.shutdown()
    folders.write(rows, notes, written)
    return sorted(rows, key=lambda r: (r["student"], r["notebook"]))


def _read_release(release: str | Path) -> dict:
    folder = Path(release).expanduser().resolve()
    folder = folder / "student" if (folder / "student").is_dir() else folder
    releases = {}
    with suppress(Exception):  # a damaged release is refused below, like a missing one
        releases = {p.stem: nbformat.read(p, as_version=4) for p in folder.glob("*.ipynb")}
    if not releases:
        raise LessonError(f"no readable notebooks in the release folder {folder}; give the "
                          "student folder that make_assignment wrote")
    return releases
