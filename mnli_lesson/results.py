"""What a run and a comparison produced, as typed objects with one JSON form.

Every caller (the CLI, plots, reports, notebooks, tests) reads results through these classes,
never by string keys into nested dicts: ``run.accuracy("matched")``, ``run.history[0].loss``.
Files carry ``kind`` and ``schema_version``; a file of another kind or version is refused in
one line instead of being half-understood.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mnli_lesson.errors import LessonError
from mnli_lesson.ledger import not_ours
from mnli_lesson.store import read_json, write_json

SCHEMA_VERSION = 3
#: Versions this one reads: 2 lacks validation loss (read as "not recorded").
READABLE_VERSIONS = (2, 3)
SPLITS = ("validation_matched", "validation_mismatched")
Split = Literal["matched", "mismatched", "validation_matched", "validation_mismatched"]


def split_name(split: str) -> str:
    """``matched`` -> ``validation_matched`` (either spelling is accepted)."""
    full = split if split.startswith("validation_") else f"validation_{split}"
    if full not in SPLITS:
        raise LessonError(f"unknown split {split!r}: use 'matched' or 'mismatched'")
    return full


@dataclass(frozen=True)
class Step:
    """One optimiser step: its number, the (fractional) epoch, the loss and learning rate."""

    step: int
    epoch: float
    loss: float
    lr: float


#: Loss of a model that gives every label 1/3: what an untrained head scores.
CHANCE_LOSS = math.log(3)


def smooth(values: Sequence[float], alpha: float = 0.9) -> list[float]:
    """Debiased exponential moving average of a loss curve (as TensorBoard smooths curves),
    the one the figures draw and the write-ups read: dividing by ``1 - alpha**t`` keeps early
    points from being pulled towards 0, so the first output equals the first input."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    smoothed: list[float] = []
    average = 0.0
    for t, value in enumerate(values, start=1):
        average = alpha * average + (1 - alpha) * float(value)
        smoothed.append(average / (1 - alpha**t))
    return smoothed


@dataclass(frozen=True)
class EpochRecord:
    """One epoch (epoch 0 = before training): mean training loss, time, and on each validation
    split accuracy and loss (the mean cross-entropy of the gold label, as training loss is)."""

    epoch: int
    train_loss: float | None = None
    epoch_time_s: float | None = None
    matched: float | None = None
    mismatched: float | None = None
    matched_loss: float | None = None
    mismatched_loss: float | None = None


@dataclass(frozen=True)
class ValidationPoint:
    """Loss and accuracy on *validation_matched* at one optimiser step (0: before training):
    at every epoch's end, and a few times within the first epoch, where curves move most."""

    step: int
    epoch: float
    loss: float
    accuracy: float


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SplitScores:
    """Scores on one validation split after the last epoch."""

    accuracy: float
    macro_f1: float
    n: int
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]
    loss: float | None = None
    """Mean cross-entropy of the gold label (None in results written before it was kept)."""

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> SplitScores:
        """From ``evaluate.report``'s output."""
        return cls(accuracy=float(report["accuracy"]), macro_f1=float(report["macro_f1"]),
                   n=int(report["n"]), confusion_matrix=[list(map(int, r))
                                                         for r in report["confusion_matrix"]],
                   per_class={k: ClassScores(**v) for k, v in report["per_class"].items()},
                   loss=float(report["loss"]))


@dataclass(frozen=True)
class PartCount:
    total: int
    trainable: int


@dataclass
class RunResult:
    """One training run: what it was, how its loss and accuracy went, where it ended."""

    run: str
    """File-name-safe id, e.g. ``full`` or ``scratch-n1000``."""
    label: str
    """What plots and tables call it."""
    init: str
    frozen: bool
    train_size: int
    epochs_planned: int
    evaluate_each_epoch: bool
    settings: dict[str, Any]
    """The configuration it trained with (``LessonConfig.to_dict``, paths as given)."""
    fingerprint: str
    """Hash of the settings that change training and of the data and weights' content."""
    params: dict[str, PartCount]
    label_names: list[str]
    history: list[Step]
    epochs: list[EpochRecord]
    final: dict[str, SplitScores]
    wall_time_s: float
    precision: str
    device: str
    interrupted: bool = False
    resumed_from_step: int = 0
    processes: int = 1
    """How many processes trained it (``torchrun`` / ``accelerate launch``); 1 when run alone."""
    finished_at: str = ""
    reused_from: str | None = None
    """The results file this one was copied from, when another comparison trained it."""
    validation: list[ValidationPoint] = field(default_factory=list)
    """Validation loss and accuracy by step (empty in results written before they were kept,
    and for sweep points, which are scored once at the end)."""

    # ------------------------------------------------------------------ reading
    def accuracy(self, split: Split = "matched") -> float:
        return self.final[split_name(split)].accuracy

    def scores(self, split: Split = "matched") -> SplitScores:
        return self.final[split_name(split)]

    def losses(self) -> list[float]:
        return [s.loss for s in self.history]

    @property
    def lr(self) -> float:
        return float(self.settings["lr"])

    @property
    def batch_size(self) -> int:
        return int(self.settings["batch_size"])

    @property
    def seed(self) -> int:
        return int(self.settings["seed"])

    @property
    def warmup_ratio(self) -> float:
        return float(self.settings["warmup_ratio"])

    @property
    def total_params(self) -> int:
        return self.params["all"].total

    @property
    def trainable_params(self) -> int:
        return self.params["all"].trainable

    def validation_loss_per_epoch(self, split: Split = "matched") -> list[tuple[int, float]]:
        """(epoch, validation loss) for every epoch whose loss was recorded."""
        attr = split_name(split).removeprefix("validation_") + "_loss"
        return [(e.epoch, getattr(e, attr)) for e in self.epochs
                if getattr(e, attr) is not None]

    def accuracy_per_epoch(self, split: Split = "matched") -> list[tuple[int, float]]:
        """(epoch, accuracy) for every epoch that was scored (epoch 0 = before training)."""
        attr = split_name(split).removeprefix("validation_")
        return [(e.epoch, getattr(e, attr)) for e in self.epochs
                if getattr(e, attr) is not None]

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {"kind": "run", "schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, payload: object, where: str = "results") -> RunResult:
        body = _check_header(payload, "run", where)
        try:
            return cls(
                **{k: v for k, v in body.items() if k not in _RUN_NESTED},
                params={k: PartCount(**v) for k, v in body["params"].items()},
                history=[Step(**s) for s in body["history"]],
                epochs=[EpochRecord(**e) for e in body["epochs"]],
                final={k: _split_from_json(v) for k, v in body["final"].items()},
                validation=[ValidationPoint(**v) for v in body.get("validation", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise LessonError(f"{where} is not a finished run's results ({type(err).__name__}: "
                              f"{err}): delete it and run again") from None

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunResult:
        return cls.from_json(read_json(path), str(path))


_RUN_NESTED = {"kind", "schema_version", "params", "history", "epochs", "final", "validation"}


def _split_from_json(v: dict[str, Any]) -> SplitScores:
    return SplitScores(accuracy=v["accuracy"], macro_f1=v["macro_f1"], n=v["n"],
                       confusion_matrix=v["confusion_matrix"],
                       per_class={k: ClassScores(**c) for k, c in v["per_class"].items()},
                       loss=v.get("loss"))


def _check_header(payload: object, kind: str, where: str) -> dict[str, Any]:
    what = "a finished run's results" if kind == "run" else "a comparison results file"
    if not isinstance(payload, dict) or "kind" not in payload:
        raise LessonError(f"{where} is not {what}: delete it and run again")
    found = payload.get("kind")
    if found != kind:
        raise LessonError(f"{where} holds {found or 'unknown'} results, not {kind} results: "
                          "pass the right file")
    version = payload.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise LessonError(f"{where} was written in results format {version}, this version of "
                          f"mnli_lesson reads format {SCHEMA_VERSION}: run the comparison again")
    return {k: v for k, v in payload.items() if k not in ("kind", "schema_version")}


@dataclass
class ComparisonResult:
    """The runs of one named comparison (e.g. ``pretrained-vs-scratch``) and what they share."""

    name: str
    profile: str
    model: str
    data: str
    fingerprint: str = ""
    runs: dict[str, RunResult] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Trained models of this session (not saved: weights live beside the results files)."""
    tokenizer: Any = field(default=None, repr=False, compare=False)

    def __getitem__(self, slug: str) -> RunResult:
        if slug not in self.runs:
            raise LessonError(f"comparison {self.name!r} has no run {slug!r} (it has "
                              f"{', '.join(self.runs) or 'none'}): run it first")
        return self.runs[slug]

    @property
    def interrupted(self) -> bool:
        return any(r.interrupted for r in self.runs.values())

    def accuracy(self, run: str, split: Split = "matched") -> float:
        return self[run].accuracy(split)

    def histories(self) -> dict[str, list[Step]]:
        """Per-step records keyed by run label (what ``plots.plot_loss_curves`` takes)."""
        return {r.label: r.history for r in self.runs.values()}

    def validation(self) -> dict[str, list[ValidationPoint]]:
        """Validation loss points keyed by run label (``plot_loss_curves(validation=...)``)."""
        return {r.label: r.validation for r in self.runs.values()}

    def epoch_records(self) -> dict[str, list[EpochRecord]]:
        return {r.label: r.epochs for r in self.runs.values()}

    def sweep_points(self, split: Split = "matched") -> dict[str, list[tuple[int, float]]]:
        """(train pairs, accuracy) per initialisation, for ``plots.plot_data_efficiency``."""
        points: dict[str, list[tuple[int, float]]] = {}
        for r in self.runs.values():
            points.setdefault(r.init, []).append((r.train_size, r.accuracy(split)))
        return {k: sorted(v) for k, v in points.items()}

    def table(self):
        """One row per run: accuracies, trainable parameters, time."""
        import pandas as pd

        rows = [{"run": r.label, "train pairs": r.train_size, "epochs": r.epochs_planned,
                 "matched acc": round(r.accuracy("matched"), 3),
                 "mismatched acc": round(r.accuracy("mismatched"), 3),
                 "trainable params": r.trainable_params,
                 "train time (s)": round(r.wall_time_s, 1)} for r in self.runs.values()]
        return pd.DataFrame(rows).set_index("run")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "comparison", "schema_version": SCHEMA_VERSION, "name": self.name,
                "profile": self.profile, "model": self.model, "data": self.data,
                "fingerprint": self.fingerprint,
                "runs": {k: r.to_json() for k, r in self.runs.items()}}

    @classmethod
    def from_json(cls, payload: object, where: str = "comparison") -> ComparisonResult:
        body = _check_header(payload, "comparison", where)
        try:
            runs = {k: RunResult.from_json(v, f"{where} (run {k})")
                    for k, v in body["runs"].items()}
            return cls(name=str(body["name"]), profile=str(body["profile"]),
                       model=str(body["model"]), data=str(body["data"]),
                       fingerprint=str(body.get("fingerprint", "")), runs=runs)
        except (KeyError, TypeError, AttributeError):
            raise LessonError(f"{where} is not a complete comparison results file: delete it "
                              "and run the comparison again") from None

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ComparisonResult:
        return cls.from_json(read_json(path), str(path))


def save_summary(result: ComparisonResult, folder: Path) -> Path:
    """``summary-<fingerprint>.json`` plus ``latest.json`` pointing at it: a comparison with
    other settings into the same folder never overwrites this one's summary."""
    summary = folder / f"summary-{result.fingerprint}.json"
    _refuse_unless_ours(summary, lambda d: d.get("kind") == "comparison")
    check_latest_is_ours(folder)
    latest = folder / "latest.json"
    path = result.save(summary)
    write_json(latest, {"summary": path.name, "figures": f"figures-{result.fingerprint}"})
    return path


def check_latest_is_ours(folder: Path) -> None:
    """Refuse a ``latest.json`` in ``folder`` that this package did not write (called before
    training too, so a user's file stops the command before any run)."""
    _refuse_unless_ours(folder / "latest.json",
                        lambda d: str(d.get("summary", "")).startswith("summary-"))


def _refuse_unless_ours(path: Path, ours: Callable[[dict], bool]) -> None:
    """A file in the way that is not one this package wrote is refused, never replaced."""
    try:
        mine = not path.exists() or ours(read_json(path))
    except (LessonError, AttributeError):  # not JSON, or JSON that is not an object
        mine = False
    if not mine:
        raise not_ours(path, "compare")


def load_latest(folder: str | os.PathLike) -> ComparisonResult:
    """The comparison ``latest.json`` in ``folder`` points at (e.g. a reference in reports/)."""
    folder = Path(folder)
    pointer = read_json(folder / "latest.json")
    if not isinstance(pointer, dict) or "summary" not in pointer:
        raise LessonError(f"{folder / 'latest.json'} is damaged: delete it and run again")
    return ComparisonResult.load(folder / str(pointer["summary"]))


#: Committed reference results, ``reports/<profile>/<comparison>/`` (a checkout of the
#: repository has them; a wheel does not).
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reports"


def reference(name: str, profile: str) -> ComparisonResult | None:
    """The committed reference results of comparison ``name`` on ``profile``, or None where
    there are none (another profile, or an installed package without ``reports/``)."""
    folder = REFERENCE_DIR / profile / name
    return load_latest(folder) if (folder / "latest.json").is_file() else None


__all__ = ["SCHEMA_VERSION", "SPLITS", "ClassScores", "ComparisonResult", "EpochRecord",
           "PartCount", "RunResult", "SplitScores", "Step", "ValidationPoint", "load_latest",
           "check_latest_is_ours", "reference", "save_summary", "split_name"]
