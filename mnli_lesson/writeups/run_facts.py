"""Facts about finished runs, for Q3 and notebook 03: pure functions over typed results
(``results.RunResult``, ``ComparisonResult``) returning frozen dataclasses; numbers only."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from mnli_lesson.results import CHANCE_LOSS, smooth

if TYPE_CHECKING:
    from mnli_lesson.results import ComparisonResult, RunResult, Step

#: How far below ln 3 a smoothed loss must fall to "leave" chance, and how far apart two
#: smoothed losses must end to differ (a smoothed curve wobbles a few thousandths around ln 3).
CHANCE_MARGIN = 0.05
LOSS_SMOOTHING = 0.9  # as plots.plot_loss_curves draws them
#: How far a validation loss must stay above its lowest epoch to count as a rise. The same
#: pairs are scored every epoch, so epoch-to-epoch changes are far less noisy than one score's
#: sampling error (about 0.03 for 500 pairs); 0.02 leaves out the small wobble seen between
#: epochs of runs that had stopped learning.
OVERFIT_MARGIN = 0.02
_EPS = 1e-9


class Facts:
    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (nested facts become dicts)."""
        return asdict(self)  # type: ignore[call-overload]


def finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class LossFacts(Facts):
    """One per-step loss curve as numbers (None where there is nothing): the first step whose
    smoothed loss is ``CHANCE_MARGIN`` below ln 3, and the share of the smoothed curve's whole
    drop made in the first epoch (None: no drop beyond the wobble)."""

    steps: int
    first_loss: float | None
    final_smoothed: float | None
    first_epoch_mean: float | None
    last_epoch_mean: float | None
    epochs: int
    leaves_chance_step: int | None
    first_epoch_drop_share: float | None


def loss_facts(history: list[Step], *, alpha: float = LOSS_SMOOTHING) -> LossFacts:
    records = [r for r in history if finite(r.loss)]
    if not records:
        return LossFacts(0, None, None, None, None, 0, None, None)
    losses = [float(r.loss) for r in records]
    smoothed = smooth(losses, alpha)
    epochs = max(1, math.ceil(float(records[-1].epoch) - _EPS))
    in_first = [i for i, r in enumerate(records) if r.epoch <= 1 + _EPS]
    in_last = [i for i, r in enumerate(records) if r.epoch > epochs - 1 + _EPS]
    leaves = next((i for i, s in enumerate(smoothed) if s < CHANCE_LOSS - CHANCE_MARGIN), None)
    drop, share = smoothed[0] - smoothed[-1], None
    if drop > CHANCE_MARGIN:  # a smaller "drop" is the smoothed curve's wobble
        end_first = smoothed[in_first[-1]] if in_first else smoothed[0]
        share = min(1.0, max(0.0, (smoothed[0] - end_first) / drop))
    return LossFacts(
        steps=len(records), first_loss=losses[0], final_smoothed=smoothed[-1],
        first_epoch_mean=fmean([losses[i] for i in in_first]) if in_first else None,
        last_epoch_mean=fmean([losses[i] for i in in_last]) if in_last else None,
        epochs=epochs, leaves_chance_step=None if leaves is None else records[leaves].step,
        first_epoch_drop_share=share)


@dataclass(frozen=True)
class Crossover(Facts):
    """Two smoothed curves compared at their common steps."""

    steps: int
    first_step: int | None
    first_under_step: int | None
    stays_under_from_step: int | None


def loss_crossover(ahead: list[Step], behind: list[Step], *,
                   alpha: float = LOSS_SMOOTHING) -> Crossover:
    """When ``ahead``'s smoothed loss first dips under ``behind``'s, and from which step on
    it stays under to the end."""
    curves = []
    for history in (ahead, behind):
        records = [r for r in history if finite(r.loss)]
        values = smooth([float(r.loss) for r in records], alpha)
        curves.append({r.step: v for r, v in zip(records, values, strict=True)})
    a, b = curves
    common = sorted(set(a) & set(b))
    under = [a[s] < b[s] for s in common]
    stays_from = None
    for s, ok in zip(reversed(common), reversed(under), strict=True):
        if not ok:
            break
        stays_from = s
    return Crossover(
        steps=len(common), first_step=common[0] if common else None,
        first_under_step=next((s for s, ok in zip(common, under, strict=True) if ok), None),
        stays_under_from_step=stays_from)


@dataclass(frozen=True)
class ValidationFacts(Facts):
    """Matched validation loss per epoch (epoch 0 = before training), its lowest epoch, the
    last epoch within ``OVERFIT_MARGIN`` of that lowest (``near_best``), and the training
    loss's first and last epoch means. ``trend``, decided here so templates only name it:

    * ``overfits``: every epoch after ``near_best`` ends higher, while training loss fell by
      more than ``CHANCE_MARGIN``: over-fitting from ``near_best + 1``;
    * ``rose``: the same rise, but training loss did not fall: worse, without memorising;
    * ``flat``: no lasting rise, and within ``CHANCE_MARGIN`` of where it began;
    * ``still_falling``: lowest at the end, its last epoch lowered it by ``OVERFIT_MARGIN``;
    * ``settled``: no lasting rise otherwise;
    * ``none``: fewer than two epochs scored (not recorded, or scored once).
    """

    per_epoch: dict[int, float]
    best_epoch: int | None
    near_best: int | None
    train_first: float | None
    train_last: float | None
    trend: str

    @property
    def first(self) -> float | None:
        return self.per_epoch[min(self.per_epoch)] if self.per_epoch else None

    @property
    def last(self) -> float | None:
        return self.per_epoch[max(self.per_epoch)] if self.per_epoch else None


def validation_facts(run: RunResult) -> ValidationFacts:
    per_epoch = {e: loss for e, loss in run.validation_loss_per_epoch("matched")
                 if finite(loss)}
    train = loss_facts(run.history)
    if len(per_epoch) < 2:
        return ValidationFacts(per_epoch, None, None, train.first_epoch_mean,
                               train.last_epoch_mean, "none")
    best = min(per_epoch, key=lambda e: (per_epoch[e], e))
    near_best = max(e for e, v in per_epoch.items() if v <= per_epoch[best] + OVERFIT_MARGIN)
    first, last = min(per_epoch), max(per_epoch)
    fell = (finite(train.first_epoch_mean) and finite(train.last_epoch_mean)
            and train.first_epoch_mean - train.last_epoch_mean > CHANCE_MARGIN)
    previous = per_epoch[max(e for e in per_epoch if e < last)]
    if near_best < last:
        trend = "overfits" if fell else "rose"
    elif per_epoch[first] - per_epoch[last] <= CHANCE_MARGIN:
        trend = "flat"
    elif best == last and previous - per_epoch[last] > OVERFIT_MARGIN:
        trend = "still_falling"
    else:
        trend = "settled"
    return ValidationFacts(per_epoch, best, near_best, train.first_epoch_mean,
                           train.last_epoch_mean, trend)


@dataclass(frozen=True)
class RunFacts(Facts):
    """How one run trained and what it scored: ``batch_size`` counts the pairs of one
    optimiser step over all processes (torchrun); ``mean_epoch_time`` is None if untimed."""

    train_size: int
    epochs: int
    steps: int
    batch_size: int
    lr: float
    seed: int
    total_params: int
    trainable_params: int
    mean_epoch_time: float | None
    matched: float
    mismatched: float
    n_matched: int
    loss: LossFacts


def run_facts(run: RunResult) -> RunFacts:
    times = [e.epoch_time_s for e in run.epochs if e.epoch >= 1 and finite(e.epoch_time_s)]
    return RunFacts(
        train_size=run.train_size, epochs=run.epochs_planned, steps=len(run.history),
        batch_size=run.batch_size * run.processes, lr=run.lr, seed=run.seed,
        total_params=run.total_params, trainable_params=run.trainable_params,
        mean_epoch_time=fmean(times) if times else None, matched=run.accuracy("matched"),
        mismatched=run.accuracy("mismatched"), n_matched=run.scores("matched").n,
        loss=loss_facts(run.history))


@dataclass(frozen=True)
class PairFacts(Facts):
    """Runs ``a`` and ``b`` of one comparison, and the profile, model and data behind them."""

    profile: str
    model: str
    data: str
    a: str
    b: str
    run_a: RunFacts
    run_b: RunFacts

    @property
    def same_lr(self) -> bool:
        return self.run_a.lr == self.run_b.lr


def pair_facts(comparison: ComparisonResult, a: str, b: str) -> PairFacts:
    """Facts about runs ``a`` and ``b`` of ``comparison`` (LessonError if one is missing)."""
    return PairFacts(comparison.profile, comparison.model, comparison.data, a, b,
                     run_facts(comparison[a]), run_facts(comparison[b]))


@dataclass(frozen=True)
class SweepFacts(Facts):
    """The data-efficiency sweep: matched accuracy per size scored for both initialisations
    (ascending), the fewest optimiser steps any run took, and the smallest size at which
    scratch reached its best accuracy."""

    profile: str
    model: str
    data: str
    sizes: tuple[int, ...]
    pretrained: dict[int, float]
    scratch: dict[int, float]
    n_scored: dict[int, int]
    min_steps: int
    scratch_best: float | None
    scratch_best_n: int | None

    @property
    def gaps(self) -> dict[int, float]:
        return {n: self.pretrained[n] - self.scratch[n] for n in self.sizes}


def sweep_facts(sweep: ComparisonResult) -> SweepFacts:
    points = sweep.sweep_points("matched")
    pre, scr = dict(points.get("pretrained", [])), dict(points.get("scratch", []))
    sizes = tuple(sorted(set(pre) & set(scr)))
    n_scored: dict[int, int] = {}
    for r in sweep.runs.values():
        n_scored[r.train_size] = min(n_scored.get(r.train_size, r.scores("matched").n),
                                     r.scores("matched").n)
    best_n = max(sizes, key=lambda n: (scr[n], -n)) if sizes else None
    return SweepFacts(
        profile=sweep.profile, model=sweep.model, data=sweep.data, sizes=sizes,
        pretrained={n: pre[n] for n in sizes}, scratch={n: scr[n] for n in sizes},
        n_scored=n_scored, min_steps=min((len(r.history) for r in sweep.runs.values()),
                                         default=0),
        scratch_best=None if best_n is None else scr[best_n], scratch_best_n=best_n)
