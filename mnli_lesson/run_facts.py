"""Facts about finished runs (loss curves, accuracies, recipes, sweeps) for Q3 and notebook 03.

Pure functions over typed results (``results.RunResult``, ``ComparisonResult``), returning
frozen dataclasses; :mod:`mnli_lesson.facts` re-exports everything here. No prose, no verdicts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from mnli_lesson.plots import CHANCE_LOSS, smooth

if TYPE_CHECKING:
    from mnli_lesson.results import ComparisonResult, RunResult, Step

#: How far below ln 3 a smoothed loss must fall before it "leaves" chance level, and how far
#: apart two smoothed losses must end to differ (the smoothed curve wobbles a few thousandths
#: around ln 3 while nothing is learnt).
CHANCE_MARGIN = 0.05

#: Smoothing the text reads loss curves with: the same as ``plots.plot_loss_curves``.
LOSS_SMOOTHING = 0.9
_EPS = 1e-9


class Facts:
    """Base of every facts dataclass."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (nested facts become dicts)."""
        return asdict(self)  # type: ignore[call-overload]


def finite(value: object) -> bool:
    """A real, finite number (not a bool, not None, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class LossFacts(Facts):
    """The shape of one per-step loss curve, as numbers (None where there is nothing)."""

    steps: int
    first_loss: float | None
    final_smoothed: float | None
    min_smoothed: float | None
    first_epoch_mean: float | None
    last_epoch_mean: float | None
    epochs: int
    leaves_chance_step: int | None
    """First step whose smoothed loss is ``CHANCE_MARGIN`` below ln 3."""
    leaves_chance_epoch: float | None
    half_drop_step: int | None
    """First step by which half of the smoothed curve's whole drop is done."""
    first_epoch_drop_share: float | None
    """Share of the whole drop made in the first epoch (None: no drop beyond the wobble)."""


def loss_facts(history: list[Step], *, alpha: float = LOSS_SMOOTHING) -> LossFacts:
    """Where a loss curve starts and ends, its first- and last-epoch means, and when its
    smoothed curve (as plotted) leaves ln 3 and is halfway down."""
    records = [r for r in history if finite(r.loss)]
    if not records:
        return LossFacts(0, None, None, None, None, None, 0, None, None, None, None)
    losses = [float(r.loss) for r in records]
    smoothed = smooth(losses, alpha)
    epochs = max(1, math.ceil(float(records[-1].epoch) - _EPS))
    in_first = [i for i, r in enumerate(records) if r.epoch <= 1 + _EPS]
    in_last = [i for i, r in enumerate(records) if r.epoch > epochs - 1 + _EPS]
    leaves = next((i for i, s in enumerate(smoothed) if s < CHANCE_LOSS - CHANCE_MARGIN), None)
    drop = smoothed[0] - smoothed[-1]
    half = share = None
    if drop > CHANCE_MARGIN:  # a smaller "drop" is the smoothed curve's wobble
        half = next(i for i, s in enumerate(smoothed) if s <= smoothed[0] - drop / 2)
        end_first = smoothed[in_first[-1]] if in_first else smoothed[0]
        share = min(1.0, max(0.0, (smoothed[0] - end_first) / drop))
    return LossFacts(
        steps=len(records), first_loss=losses[0], final_smoothed=smoothed[-1],
        min_smoothed=min(smoothed),
        first_epoch_mean=fmean([losses[i] for i in in_first]) if in_first else None,
        last_epoch_mean=fmean([losses[i] for i in in_last]) if in_last else None,
        epochs=epochs,
        leaves_chance_step=None if leaves is None else records[leaves].step,
        leaves_chance_epoch=None if leaves is None else float(records[leaves].epoch),
        half_drop_step=None if half is None else records[half].step,
        first_epoch_drop_share=share)


@dataclass(frozen=True)
class Crossover(Facts):
    """Two smoothed curves step by step (``gap_final``: ``behind`` minus ``ahead``)."""

    steps: int
    first_step: int | None
    """The first step both curves have."""
    first_under_step: int | None
    stays_under_from_step: int | None
    gap_final: float | None


def loss_crossover(ahead: list[Step], behind: list[Step], *,
                   alpha: float = LOSS_SMOOTHING) -> Crossover:
    """When ``ahead``'s smoothed loss first dips under ``behind``'s, from which step on it
    stays under to the end, and the gap (``behind`` minus ``ahead``) at the last common step."""
    curves = []
    for history in (ahead, behind):
        records = [r for r in history if finite(r.loss)]
        values = smooth([float(r.loss) for r in records], alpha) if records else []
        curves.append({r.step: (float(r.epoch), v)
                       for r, v in zip(records, values, strict=True)})
    a, b = curves
    common = sorted(set(a) & set(b))
    under = [a[s][1] < b[s][1] for s in common]
    first_under = next((s for s, ok in zip(common, under, strict=True) if ok), None)
    stays_from = None
    for s, ok in zip(reversed(common), reversed(under), strict=True):
        if not ok:
            break
        stays_from = s
    return Crossover(
        steps=len(common), first_step=common[0] if common else None,
        first_under_step=first_under, stays_under_from_step=stays_from,
        gap_final=(b[common[-1]][1] - a[common[-1]][1]) if common else None)


@dataclass(frozen=True)
class AccuracyFacts(Facts):
    """Final accuracies of one run, pairs scored, and matched accuracy per epoch."""

    matched: float
    mismatched: float
    macro_f1: float
    n_matched: int
    n_mismatched: int
    before: float | None
    """Matched accuracy before training (epoch 0), when it was scored."""
    per_epoch: tuple[tuple[int, float], ...]


def accuracy_facts(run: RunResult) -> AccuracyFacts:
    per_epoch = tuple(run.accuracy_per_epoch("matched"))
    return AccuracyFacts(
        matched=run.accuracy("matched"), mismatched=run.accuracy("mismatched"),
        macro_f1=run.scores("matched").macro_f1, n_matched=run.scores("matched").n,
        n_mismatched=run.scores("mismatched").n,
        before=next((acc for epoch, acc in per_epoch if epoch == 0), None),
        per_epoch=per_epoch)


@dataclass(frozen=True)
class RecipeFacts(Facts):
    """How one run trained: sizes, steps, optimiser settings, where, and how long."""

    train_size: int
    epochs: int
    steps_per_epoch: int
    steps: int
    batch_size: int
    """Pairs per optimiser step (over all processes, under torchrun)."""
    lr: float
    warmup_ratio: float
    warmup_steps: int
    seed: int
    precision: str
    device: str
    total_params: int
    trainable_params: int
    mean_epoch_time: float | None
    """Seconds per training epoch, averaged (None: not timed)."""


def recipe_facts(run: RunResult) -> RecipeFacts:
    # N processes (torchrun) each take every N-th batch: a step sees N batches.
    batches = math.ceil(run.train_size / run.batch_size)
    per_epoch = math.ceil(batches / run.processes)
    warmup = math.ceil(run.warmup_ratio * run.epochs_planned * batches)
    times = [e.epoch_time_s for e in run.epochs if e.epoch >= 1 and finite(e.epoch_time_s)]
    return RecipeFacts(
        train_size=run.train_size, epochs=run.epochs_planned, steps_per_epoch=per_epoch,
        steps=len(run.history), batch_size=run.batch_size * run.processes, lr=run.lr,
        warmup_ratio=run.warmup_ratio, warmup_steps=math.ceil(warmup / run.processes),
        seed=run.seed, precision=run.precision, device=run.device,
        total_params=run.total_params, trainable_params=run.trainable_params,
        mean_epoch_time=fmean(times) if times else None)


@dataclass(frozen=True)
class PairFacts(Facts):
    """Two runs of one comparison, ``a`` against ``b``, and what produced them."""

    name: str
    profile: str
    model: str
    data: str
    a: str
    b: str
    recipe_a: RecipeFacts
    recipe_b: RecipeFacts
    loss_a: LossFacts
    loss_b: LossFacts
    crossover: Crossover
    """``a``'s smoothed loss against ``b``'s."""
    acc_a: AccuracyFacts
    acc_b: AccuracyFacts

    @property
    def same_lr(self) -> bool:
        return self.recipe_a.lr == self.recipe_b.lr


def pair_facts(comparison: ComparisonResult, a: str, b: str) -> PairFacts:
    """Facts about runs ``a`` and ``b`` of ``comparison`` (LessonError if one is missing)."""
    run_a, run_b = comparison[a], comparison[b]
    return PairFacts(
        name=comparison.name, profile=comparison.profile, model=comparison.model,
        data=comparison.data, a=a, b=b, recipe_a=recipe_facts(run_a),
        recipe_b=recipe_facts(run_b), loss_a=loss_facts(run_a.history),
        loss_b=loss_facts(run_b.history), crossover=loss_crossover(run_a.history, run_b.history),
        acc_a=accuracy_facts(run_a), acc_b=accuracy_facts(run_b))


@dataclass(frozen=True)
class SweepFacts(Facts):
    """The data-efficiency sweep: matched accuracy per size for both initialisations."""

    profile: str
    model: str
    data: str
    sizes: tuple[int, ...]
    """Sizes scored for both initialisations, ascending."""
    pretrained: dict[int, float]
    scratch: dict[int, float]
    n_scored: dict[int, int]
    steps: dict[int, int]
    """Fewest optimiser steps any run of that size took."""
    min_steps: int
    sweep_min_steps: int | None
    scratch_best: float | None
    scratch_best_n: int | None
    """The smallest size at which scratch reached its best accuracy."""

    @property
    def gaps(self) -> dict[int, float]:
        return {n: self.pretrained[n] - self.scratch[n] for n in self.sizes}


def sweep_facts(sweep: ComparisonResult, split: str = "matched") -> SweepFacts:
    points = sweep.sweep_points(split)  # type: ignore[arg-type]
    pre, scr = dict(points.get("pretrained", [])), dict(points.get("scratch", []))
    sizes = tuple(sorted(set(pre) & set(scr)))
    steps: dict[int, int] = {}
    n_scored: dict[int, int] = {}
    for r in sweep.runs.values():
        steps[r.train_size] = min(steps.get(r.train_size, len(r.history)), len(r.history))
        n = r.scores(split).n  # type: ignore[arg-type]
        n_scored[r.train_size] = min(n_scored.get(r.train_size, n), n)
    some = next(iter(sweep.runs.values()), None)
    best_n = max(sizes, key=lambda n: (scr[n], -n)) if sizes else None
    return SweepFacts(
        profile=sweep.profile, model=sweep.model, data=sweep.data, sizes=sizes,
        pretrained={n: pre[n] for n in sizes}, scratch={n: scr[n] for n in sizes},
        n_scored=n_scored, steps=steps, min_steps=min(steps.values()) if steps else 0,
        sweep_min_steps=None if some is None else some.settings.get("sweep_min_steps"),
        scratch_best=None if best_n is None else scr[best_n], scratch_best_n=best_n)
