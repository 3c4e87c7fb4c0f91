"""``mnli-lesson`` / ``python -m mnli_lesson``: run the lesson headless.

    mnli-lesson config --profile cpu
    mnli-lesson compare finetune-vs-frozen --profile cpu --out out
    mnli-lesson compare pretrained-vs-scratch --data ../shared/data/mnli-sample --model DIR
    mnli-lesson compare data-efficiency --profile cpu
    mnli-lesson lesson --profile offline --out out   # execute the four notebooks
    mnli-lesson assignment --out DIR                 # student + solution notebooks
    mnli-lesson grade SUBMISSIONS --out grades.csv   # run and score submitted notebooks

A problem the user can fix prints one line (``error: ...``) and exits with status 2.
Ctrl-C exits with 130; running the same command again resumes where it stopped.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import math
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from mnli_lesson.config import (
    ENV_PREFIX,
    LessonConfig,
    field_types,
    parse_value,
    resolve_config,
)
from mnli_lesson.errors import LessonError
from mnli_lesson.ledger import Ledger, not_ours
from mnli_lesson.lesson_notebooks import (
    execute_all,
    lesson_notebooks,
    notebooks_dir,
    require,
)

NAMES = ("finetune-vs-frozen", "pretrained-vs-scratch", "scratch-learning-rate", "data-efficiency")
NOTEBOOKS_DIR = notebooks_dir()  # the installed package's copy, else the checkout's


class _Parser(argparse.ArgumentParser):
    """Usage mistakes print one line, like every other error, instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


REFERENCE_MARKER = ".reference"
"""A file in an output folder (reports/) that makes it writable only on purpose."""


def _out_folder(cfg, *, update_reference: bool = False) -> Path:
    """The output folder, created and proven writable now: a bad --out fails before any
    training, not after the first epoch."""
    from mnli_lesson.store import check_writable

    out = check_writable(cfg.out_dir)
    if (out / REFERENCE_MARKER).is_file() and not update_reference:
        raise LessonError(f"{out} holds the committed reference results: write elsewhere with "
                          "--out, or pass --update-reference to replace them on purpose")
    return out


#: LessonConfig fields with no flag, each with its reason. None: every field is a flag.
NOT_FLAGS: tuple[str, ...] = ()
#: A field whose flag is not spelt ``--<field-with-dashes>``: the first spelling is the one
#: --help shows (``--out``, as the lesson has always said); the generic one is an alias.
FLAG_SPELLINGS = {"out_dir": ("--out", "--out-dir")}
#: Fields holding a path: ``--out=~/x`` reaches us unexpanded (the shell leaves ~ alone there).
PATH_FIELDS = ("data", "model", "out_dir")
#: How a value of a field's type is written, for --help (metavar) and for a refusal.
_SPELLING = {"optional": ("N|all", "a whole number or 'all'"),
             "tuple": ("N,N,...", "comma-separated whole numbers like 250,1000")}


def flag_names(name: str) -> tuple[str, ...]:
    """The option strings of the flag that sets LessonConfig field ``name``."""
    return FLAG_SPELLINGS.get(name, ("--" + name.replace("_", "-"),))


@functools.cache
def field_docs() -> dict[str, str]:
    """Each LessonConfig field's docstring (the string under it in config.py), on one line:
    the help of its flag, so the two never disagree."""
    try:
        body = ast.parse(inspect.getsource(LessonConfig)).body[0].body
    except (OSError, TypeError):  # installed without its source: flags without help text
        return {}
    return {node.target.id: " ".join(doc.value.value.replace("``", "").split())
            for node, doc in zip(body, body[1:], strict=False)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)}


def _kind_of(kind: object) -> str | None:
    """``optional`` (``int | None``), ``tuple`` (``tuple[int, ...]``), or None (plain)."""
    if type(None) in typing.get_args(kind):
        return "optional"
    return "tuple" if typing.get_origin(kind) is tuple else None


def _flag_type(name: str, kind: object) -> Callable[[str], object]:
    """The flag's text to the field's value through the very parser MNLI_LESSON_<FIELD> goes
    through (config.parse_value), so both accept the same spellings and refuse the same ones
    with the same reason; argparse then prints it as one line naming the flag."""
    def parse(text: str) -> object:
        try:
            value = parse_value(name, text, kind)
        except LessonError as err:  # "MNLI_LESSON_X='a' is not ...": here the flag says which
            reason = str(err).removeprefix(f"{ENV_PREFIX}{name.upper()}=").replace(
                f"{ENV_PREFIX}{name.upper()} is empty: unset it or", "empty:")
            spelling = _SPELLING.get(_kind_of(kind) or "")
            hint = f"; use {spelling[1]}" if spelling else ""
            raise argparse.ArgumentTypeError(reason + hint) from None
        if name in PATH_FIELDS and isinstance(value, str) and value.startswith("~"):
            value = os.path.expanduser(value)
        return value

    parse.__name__ = name  # argparse's fallback wording, should a non-LessonError slip out
    return parse


def _config_args(parser: argparse.ArgumentParser) -> None:
    """One flag per LessonConfig field (see NOT_FLAGS), its help the field's docstring.

    Left out, a flag is absent from the namespace (SUPPRESS), not None: ``--train-size all``
    gives None, a real value, and an absent flag leaves the variable, then the profile, in
    charge."""
    group = parser.add_argument_group(
        "lesson settings", "One flag per LessonConfig field. Unset ones come from "
        "MNLI_LESSON_<FIELD>, then from --profile (default: auto); `mnli-lesson config` "
        "prints the result.")
    docs, kinds = field_docs(), field_types()
    for f in fields(LessonConfig):
        if f.name in NOT_FLAGS:
            continue
        spelling = _SPELLING.get(_kind_of(kinds[f.name]) or "")
        group.add_argument(*flag_names(f.name), dest=f.name, default=argparse.SUPPRESS,
                           type=_flag_type(f.name, kinds[f.name]),
                           metavar=spelling[0] if spelling else None,
                           help=docs.get(f.name, "").replace("%", "%%"))


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The settings given as flags on the command line (a left-out flag is absent)."""
    return {f.name: getattr(args, f.name) for f in fields(LessonConfig) if f.name in vars(args)}


def _resolve(args: argparse.Namespace) -> LessonConfig:
    """The configuration: flags, then MNLI_LESSON_* variables, then the profile."""
    overrides = _given(args)
    return resolve_config(overrides.pop("profile", None), **overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from mnli_lesson.config import describe

    print(describe(_resolve(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mnli_lesson.config import describe

    cfg = _resolve(args)  # a bad setting fails here, before torch is imported
    out = _out_folder(cfg, update_reference=args.update_reference)
    from mnli_lesson.distributed import is_main_process
    from mnli_lesson.experiments import compare
    from mnli_lesson.results import check_latest_is_ours, save_summary

    check_latest_is_ours(out / args.name)  # a user's latest.json: refused before any run
    reporter = is_main_process()  # under torchrun / accelerate launch, one process reports
    if reporter:
        print(describe(cfg), end="\n\n")
    comparison = compare(args.name, cfg, progress=not args.no_progress)
    if not reporter:
        return 0
    if comparison.interrupted:
        # The stopped run has no final scores to plot; finished runs are already on disk.
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    folder = out / args.name
    figures = folder / f"figures-{comparison.fingerprint}"
    for name in FIGURES.get(args.name, FIGURES["default"]):  # before anything is written
        _refuse_unless_png(figures / name)
    summary = save_summary(comparison, folder)
    for path in write_figures(comparison, figures):
        print(f"figure: {path}")
    print(comparison.table().to_string())
    print(f"results: {summary}")
    return 0


#: The figures ``write_figures`` draws, per comparison.
FIGURES = {"data-efficiency": ("data_efficiency.png",),
           "default": ("loss_curves.png", "accuracy.png", "confusion_matrices.png")}


def _refuse_unless_png(path: Path) -> None:
    """A file in the way that is no PNG image is not a figure of ours: refused, kept."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_symlink() and path.is_file():
        with path.open("rb") as f:
            if f.read(8) == b"\x89PNG\r\n\x1a\n":
                return
    raise not_ours(path, "compare")


def write_figures(comparison, folder: Path) -> list[Path]:
    """Loss curves, accuracy per epoch, confusion matrices (or the data-efficiency curve),
    into ``folder`` (named by the comparison's fingerprint, so other settings never
    overwrite them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnli_lesson import plots

    paths = []
    if comparison.name == "data-efficiency":
        ax = plots.plot_data_efficiency(comparison.sweep_points())
        ax.set_title(f"Matched accuracy vs training pairs ({comparison.profile} profile)")
        paths.append(plots.save_figure(ax.figure, folder / FIGURES["data-efficiency"][0]))
        plt.close(ax.figure)
        return paths
    loss_png, accuracy_png, confusion_png = FIGURES["default"]
    ax = plots.plot_loss_curves(comparison.histories(), validation=comparison.validation())
    ax.set_title(f"Training and validation loss ({comparison.profile} profile)")
    paths.append(plots.save_figure(ax.figure, folder / loss_png))
    ax2 = plots.plot_accuracy(comparison.epoch_records())
    paths.append(plots.save_figure(ax2.figure, folder / accuracy_png))
    runs = list(comparison.runs.values())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.2), squeeze=False)
    for ax3, r in zip(axes[0], runs, strict=True):
        plots.plot_confusion_matrix(r.scores("matched").confusion_matrix, title=r.label,
                                    ax=ax3)
    fig.tight_layout()
    paths.append(plots.save_figure(fig, folder / confusion_png))
    plt.close("all")
    return paths


def _notebook_env(args: argparse.Namespace, cfg, out: Path) -> dict[str, str]:
    """Every setting given on the command line, as the MNLI_LESSON_* variables the notebooks
    read. Paths are made relative to notebooks/ (where the kernels run), so a relative
    --data or --model means what it meant in the caller's folder."""
    env = {"MNLI_LESSON_PROFILE": cfg.profile, "MNLI_LESSON_OUT_DIR": str(out)}
    for name in sorted(set(_given(args)) - {"profile", "out_dir"}):
        value = getattr(cfg, name)
        if name in ("data", "model") and Path(str(value)).expanduser().exists():
            value = os.path.relpath(Path(str(value)).expanduser().resolve(), NOTEBOOKS_DIR)
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        env[f"MNLI_LESSON_{name.upper()}"] = "all" if value is None else str(value)
    return env


def cmd_lesson(args: argparse.Namespace) -> int:
    """Execute every notebook on the chosen profile; executed copies go to OUT/notebooks."""
    require("ipykernel", "nbformat", "nbclient", task="running the notebooks")
    cfg = _resolve(args)  # fail early, before any notebook starts, on a bad setting
    out = _out_folder(cfg).resolve()
    notebooks = lesson_notebooks(NOTEBOOKS_DIR)
    target = out / "notebooks"
    if target.resolve() == NOTEBOOKS_DIR.resolve():
        raise LessonError(f"--out {out} would write the executed copies over the lesson's own "
                          "notebooks; choose another --out")
    target.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(target, "lesson")
    ledger.check([p.name for p in notebooks])  # never replace what a user wrote there
    os.environ.update(_notebook_env(args, cfg, out))
    execute_all(notebooks, target, NOTEBOOKS_DIR, cfg.profile, ledger)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnli-lesson", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="print the resolved configuration")
    _config_args(p)
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("compare", help="run a named comparison and write results + figures")
    p.add_argument("name", choices=NAMES)
    _config_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--update-reference", action="store_true",
                   help="allow replacing committed reference results (reports/)")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("lesson", help="execute the notebooks headless")
    _config_args(p)
    p.set_defaults(func=cmd_lesson, update_reference=False)
    _register_classroom(sub)
    return parser


def cmd_assignment(args: argparse.Namespace) -> int:
    require("nbformat", task="writing the assignment")
    from mnli_lesson.classroom import make_assignment

    written = make_assignment(args.src or NOTEBOOKS_DIR, args.out, args.handout_url)
    for kind, paths in written.items():
        print(f"{kind}: {len(paths)} notebooks in {paths[0].parent}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    require("nbformat", "nbclient", "ipykernel", task="grading")  # notebooks run in kernels
    from mnli_lesson.grading import grade

    grade(args.submissions, args.out, profile=args.profile, timeout=args.timeout,
          jobs=args.jobs, release=args.release, executed_dir=args.executed,
          roster=args.roster, unsafe=args.unsafe)
    print(f"grades: {Path(args.out).resolve()}")
    return 0


def cmd_merge_points(args: argparse.Namespace) -> int:
    from mnli_lesson.feedback import merge_points

    print(f"grades with written points: {merge_points(args.grades)}")
    return 0


def _in_range(kind: type, low: float, high: float):
    """An argparse type: a finite number of ``kind`` in [low, high], or a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'} from "
                f"{low:g} to {high:g}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _register_classroom(subparsers) -> None:
    """``assignment`` and ``grade``: classroom mode (mnli_lesson.classroom, grading)."""
    p = subparsers.add_parser("assignment", help="write solution and student notebooks")
    p.add_argument("--src", help="source notebooks (default: the lesson's own)")
    p.add_argument("--out", required=True, help="new or earlier assignment folder")
    p.add_argument("--handout-url", help="repository the student notebooks' Colab badge and "
                   "set-up cell open (never the lesson's: it holds the solutions)")
    p.set_defaults(func=cmd_assignment)
    p = subparsers.add_parser("grade", help="run submitted notebooks and write a grades CSV")
    p.add_argument("submissions", help="folder of <student>/NN_*.ipynb or <student>__NN_*.ipynb")
    p.add_argument("--out", required=True, help="CSV file to write, e.g. grades.csv")
    p.add_argument("--profile", default="tiny", help="lesson profile to run (default: tiny)")
    p.add_argument("--timeout", type=_in_range(float, 1, 86_400), default=600,
                   help="seconds per notebook (1 to 86,400)")
    p.add_argument("--jobs", type=_in_range(int, 1, 64), default=1,
                   help="notebooks run at once (default: 1)")
    p.add_argument("--release", required=True,
                   help="the handed-out student folder: its check cells and answer names")
    p.add_argument("--roster", help="CSV of expected students (column `student`)")
    p.add_argument("--unsafe", action="store_true",
                   help="grade without a sandbox (only where no sandbox can be made)")
    p.add_argument("--executed", help="new folder to keep each executed notebook in")
    p.set_defaults(func=cmd_grade)
    p = subparsers.add_parser("merge-points", help="add written-answer points to a grades CSV")
    p.add_argument("grades", help="the grades CSV that `grade` wrote")
    p.set_defaults(func=cmd_merge_points)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return args.func(args)
    except LessonError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
