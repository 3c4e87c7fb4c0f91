"""``mnli-lesson`` / ``python -m mnli_lesson``: run the lesson headless.

    mnli-lesson config --profile cpu
    mnli-lesson compare finetune-vs-frozen --profile cpu --out out
    mnli-lesson compare pretrained-vs-scratch --data ../shared/data/mnli-sample --model DIR
    mnli-lesson compare data-efficiency --profile cpu
    mnli-lesson lesson --profile tiny --out out      # execute the four notebooks

A problem the user can fix prints one line (``error: ...``) and exits with status 2.
Ctrl-C exits with 130; running the same command again resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnli_lesson.errors import LessonError

NAMES = ("finetune-vs-frozen", "pretrained-vs-scratch", "data-efficiency")
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


class _Parser(argparse.ArgumentParser):
    """Usage mistakes print one line, like every other error, instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _out_folder(cfg) -> Path:
    """The output folder, created now: a bad --out fails before any training, not after."""
    out = Path(cfg.out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise LessonError(f"output folder {out} is a file: choose another folder with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LessonError(f"cannot create output folder {out} ({err.strerror}): "
                          "choose another folder with --out") from None
    return out


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="tiny, cpu, gpu, full or auto (default: auto)")
    parser.add_argument("--data", help="sample, kaggle, or a folder with the three CSVs")
    parser.add_argument("--model", help="Hub id, checkpoint folder, or tiny")
    # SUPPRESS: absent unless given, because "all" (None) is a real value here, not "unset".
    parser.add_argument("--train-size", type=_size, default=argparse.SUPPRESS,
                        help="training pairs, or 'all'")
    parser.add_argument("--eval-size", type=_size, default=argparse.SUPPRESS,
                        help="pairs per validation split, or 'all'")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", help="auto, fp32, bf16 or fp16")
    parser.add_argument("--device", help="auto, cpu or cuda")
    parser.add_argument("--sweep-sizes", help="comma-separated training sizes, e.g. 250,1000")
    parser.add_argument("--out", dest="out_dir", help="output folder (default: out)")


def _size(text: str) -> int | None:
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'all'") from None


def _resolve(args: argparse.Namespace):
    from mnli_lesson.config import resolve_config

    overrides = {k: getattr(args, k) for k in (
        "data", "model", "epochs", "batch_size", "lr", "max_length", "seed", "precision",
        "device", "out_dir") if getattr(args, k, None) is not None}
    for key in ("train_size", "eval_size"):
        if key in vars(args):
            overrides[key] = getattr(args, key)
    if getattr(args, "sweep_sizes", None):
        try:
            overrides["sweep_sizes"] = tuple(int(x) for x in args.sweep_sizes.split(","))
        except ValueError:
            raise LessonError(
                f"--sweep-sizes {args.sweep_sizes!r}: use numbers like 250,1000") from None
    return resolve_config(args.profile, **overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from mnli_lesson.config import describe

    print(describe(_resolve(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mnli_lesson.config import describe

    cfg = _resolve(args)  # a bad setting fails here, before torch is imported
    _out_folder(cfg)
    from mnli_lesson.experiments import compare

    print(describe(cfg), end="\n\n")
    comparison = compare(args.name, cfg, progress=not args.no_progress)
    if any(r.get("interrupted") for r in comparison.runs.values()):
        # The stopped run has no final scores to plot; finished runs are already on disk.
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    folder = Path(cfg.out_dir) / args.name
    summary = comparison.save(folder / "summary.json")
    for path in write_figures(comparison, folder):
        print(f"figure: {path}")
    print(comparison.table().to_string())
    print(f"results: {summary}")
    return 0


def write_figures(comparison, folder: Path) -> list[Path]:
    """Loss curves, accuracy per epoch, confusion matrices (or the data-efficiency curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnli_lesson import plots

    paths = []
    if comparison.name == "data-efficiency":
        ax = plots.plot_data_efficiency(comparison.sweep_points())
        ax.set_title(f"Matched accuracy vs training pairs ({comparison.profile} profile)")
        paths.append(plots.save_figure(ax.figure, folder / "data_efficiency.png"))
        plt.close(ax.figure)
        return paths
    ax = plots.plot_loss_curves(comparison.histories())
    ax.set_title(f"Training loss per step ({comparison.profile} profile)")
    paths.append(plots.save_figure(ax.figure, folder / "loss_curves.png"))
    ax2 = plots.plot_accuracy(comparison.epoch_records())
    paths.append(plots.save_figure(ax2.figure, folder / "accuracy.png"))
    runs = list(comparison.runs.values())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.2), squeeze=False)
    for ax3, r in zip(axes[0], runs, strict=True):
        plots.plot_confusion_matrix(r["final"]["validation_matched"]["confusion_matrix"],
                                    title=r["label"], ax=ax3)
    fig.tight_layout()
    paths.append(plots.save_figure(fig, folder / "confusion_matrices.png"))
    plt.close("all")
    return paths


def cmd_lesson(args: argparse.Namespace) -> int:
    """Execute every notebook on the chosen profile; executed copies go to OUT/notebooks."""
    import nbformat
    from nbclient import NotebookClient

    cfg = _resolve(args)  # fail early, before any notebook starts, on a bad setting
    out = _out_folder(cfg).resolve()
    os.environ["MNLI_LESSON_PROFILE"] = cfg.profile
    os.environ["MNLI_LESSON_OUT_DIR"] = str(out)
    for key in ("data", "model"):
        if getattr(args, key, None):
            os.environ[f"MNLI_LESSON_{key.upper()}"] = str(getattr(cfg, key))
    notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise LessonError(f"no notebooks found in {NOTEBOOKS_DIR}")
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        print(f"running {path.name} on the {cfg.profile} profile ...", flush=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=None, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
        try:
            client.execute()
        finally:
            nbformat.write(nb, out / "notebooks" / path.name)
        print(f"  wrote {out / 'notebooks' / path.name}")
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
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("lesson", help="execute the notebooks headless")
    _config_args(p)
    p.set_defaults(func=cmd_lesson)
    return parser


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
