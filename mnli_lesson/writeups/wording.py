"""The one place where numbers become comparative words: templates never compare numbers,
they branch on these verdicts, so the thresholds behind "faster" or "within noise" live here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from mnli_lesson.checkpoints import TINY
from mnli_lesson.results import CHANCE_LOSS
from mnli_lesson.writeups.run_facts import CHANCE_MARGIN

if TYPE_CHECKING:
    from mnli_lesson.writeups.run_facts import LossFacts, PairFacts, SweepFacts

#: One batch's loss within this of ln 3 is "about a uniform guess" (one batch is noisier than
#: a smoothed curve, hence wider than CHANCE_MARGIN).
UNIFORM_TOLERANCE = 0.1
#: Two curves that leave ln 3 within this share of the run's steps (at least one step) leave
#: it together: smoothing alone shifts a crossing by a few steps.
PACE_TOLERANCE = 0.05
#: A run whose epochs take under this share of another's saves time; over its inverse, costs.
TIME_SAVING = 0.9
#: A first epoch making at least FRONT_LOADED of the whole drop is front-loaded; under
#: ALMOST_NONE of it, the first epoch is a plateau.
FRONT_LOADED, ALMOST_NONE = 0.5, 0.005
#: Standard errors in a noise margin (about a 95% interval).
Z = 2.0
#: A data saving is quoted as "N× as many pairs" from this ratio on.
MANY_TIMES = 1.5


class Verdict(str, Enum):
    """How the first of two things compares with the second (``unclaimed``: a smoke test,
    random weights on both sides, makes no claim either way)."""

    AHEAD, BEHIND, LEVEL, UNCLAIMED = "ahead", "behind", "level", "unclaimed"


class Curve(str, Enum):
    """A smoothed loss curve against ln 3 (``returns``: it left, then ended near it again)."""

    LEAVES, RETURNS, STAYS = "leaves_chance", "returns_to_chance", "stays_near_chance"
    EMPTY = "no_losses"


class Shape(str, Enum):
    """Where a curve's drop happens (``plateau``: almost none of it in the first epoch)."""

    FRONT_LOADED, LATE, PLATEAU, FLAT = "front_loaded", "late", "first_epoch_plateau", "flat"


@dataclass(frozen=True)
class Gap:
    """A difference of two accuracies (first minus second), its noise margin and verdict."""

    value: float
    margin: float
    verdict: Verdict


def noise_margin(a: float, b: float, n_a: int, n_b: int) -> float:
    """Two standard errors of the difference of two proportions scored on ``n_a`` and ``n_b``
    pairs, never less than one pair's worth (a 0% or 100% score has no variance, but one pair
    more or less still moves it by 1/n)."""
    if n_a <= 0 or n_b <= 0:
        return math.inf  # nothing scored: no difference can be told from noise
    se = math.sqrt(a * (1 - a) / n_a + b * (1 - b) / n_b)
    return max(Z * se, 1 / n_a, 1 / n_b)


def _by_margin(diff: float, margin: float) -> Verdict:
    if diff > margin:
        return Verdict.AHEAD
    return Verdict.BEHIND if diff < -margin else Verdict.LEVEL


def accuracy_gap(a: float, b: float, n_a: int, n_b: int, *, claim: bool = True) -> Gap:
    """``a - b`` with its noise margin: ``ahead`` when ``a`` wins by more than the margin,
    ``behind`` when it trails by more, else ``level``; ``claim=False`` makes no verdict."""
    margin = noise_margin(a, b, n_a, n_b)
    return Gap(a - b, margin, _by_margin(a - b, margin) if claim else Verdict.UNCLAIMED)


def loss_verdict(a: float | None, b: float | None, margin: float = CHANCE_MARGIN) -> Verdict:
    """Two smoothed losses: ``ahead`` when ``a`` is lower by more than ``margin``."""
    return Verdict.LEVEL if a is None or b is None else _by_margin(b - a, margin)


def uniform_verdict(loss: float, tolerance: float = UNIFORM_TOLERANCE) -> Verdict:
    """One loss against a uniform guess: ``level`` within ``tolerance`` of ln 3, ``ahead``
    (better than guessing) below it, ``behind`` above it."""
    return _by_margin(CHANCE_LOSS - loss, tolerance)


def curve_verdict(loss: LossFacts) -> Curve:
    """Whether a smoothed curve leaves ln 3 (by ``CHANCE_MARGIN``) and stays away from it."""
    if loss.steps == 0 or loss.final_smoothed is None:
        return Curve.EMPTY
    if loss.leaves_chance_step is None:
        return Curve.STAYS
    return Curve.RETURNS if loss.final_smoothed > CHANCE_LOSS - CHANCE_MARGIN else Curve.LEAVES


def curve_shape(loss: LossFacts) -> Shape:
    """``front_loaded`` when the first epoch made most of the drop, ``flat`` without a drop."""
    share = loss.first_epoch_drop_share
    if share is None:
        return Shape.FLAT
    if share >= FRONT_LOADED:
        return Shape.FRONT_LOADED
    return Shape.LATE if share >= ALMOST_NONE else Shape.PLATEAU


def pace_verdict(a: LossFacts, b: LossFacts) -> Verdict:
    """``ahead`` when ``a`` leaves ln 3 clearly earlier than ``b`` (or ``b`` never does),
    ``level`` when both leave it together or neither does."""
    sa, sb = a.leaves_chance_step, b.leaves_chance_step
    if sb is None:
        return Verdict.LEVEL if sa is None else Verdict.AHEAD
    if sa is None:
        return Verdict.BEHIND
    return _by_margin(sb - sa, max(1, math.ceil(PACE_TOLERANCE * max(a.steps, b.steps))))


def time_verdict(a_seconds: float | None, b_seconds: float | None) -> Verdict:
    """``ahead`` when run ``a``'s epochs take under ``TIME_SAVING`` of ``b``'s, ``behind``
    over its inverse, else ``level`` (also when untimed)."""
    if not a_seconds or not b_seconds or not math.isfinite(a_seconds / b_seconds):
        return Verdict.LEVEL
    share = a_seconds / b_seconds
    if share < TIME_SAVING:
        return Verdict.AHEAD
    return Verdict.BEHIND if share > 1 / TIME_SAVING else Verdict.LEVEL


def is_smoke_test(model: str) -> bool:
    """True for the ``tiny`` checkpoint: random weights on both sides of every comparison."""
    return str(model).strip() == TINY


@dataclass(frozen=True)
class PairVerdicts:
    """Verdicts on runs ``a`` and ``b``, from a's side (``pace``: leaves ln 3 earlier; ``time``:
    quicker epochs, a measurement claimed on smoke tests too; ``start_a``: first loss vs ln 3)."""

    smoke: bool
    matched: Gap
    pace: Verdict
    final_loss: Verdict
    curve_a: Curve
    curve_b: Curve
    shape_a: Shape
    start_a: Verdict
    time: Verdict


def judge_pair(pair: PairFacts) -> PairVerdicts:
    """The verdicts about two runs; on a smoke test none about which learns more or faster."""
    smoke = is_smoke_test(pair.model)
    a, b, la, lb = pair.run_a, pair.run_b, pair.run_a.loss, pair.run_b.loss
    return PairVerdicts(
        smoke=smoke,
        matched=accuracy_gap(a.matched, b.matched, a.n_matched, b.n_matched, claim=not smoke),
        pace=Verdict.UNCLAIMED if smoke else pace_verdict(la, lb),
        final_loss=(Verdict.UNCLAIMED if smoke
                    else loss_verdict(la.final_smoothed, lb.final_smoothed)),
        curve_a=curve_verdict(la), curve_b=curve_verdict(lb), shape_a=curve_shape(la),
        start_a=Verdict.LEVEL if la.first_loss is None else uniform_verdict(la.first_loss),
        time=time_verdict(a.mean_epoch_time, b.mean_epoch_time))


@dataclass(frozen=True)
class SweepVerdicts:
    """The data-efficiency sweep: the gap per size; the smallest size at which pre-trained
    beats scratch's best (at any size) by more than noise, and scratch's best size over it
    when that is at least ``MANY_TIMES``."""

    smoke: bool
    gaps: dict[int, Gap]
    beats_best_n: int | None
    saving_ratio: float | None


def judge_sweep(sweep: SweepFacts) -> SweepVerdicts:
    """Per-size gaps, and where pre-training overtakes scratch's best (none on a smoke test)."""
    smoke = is_smoke_test(sweep.model)
    gaps = {n: accuracy_gap(sweep.pretrained[n], sweep.scratch[n], sweep.n_scored[n],
                            sweep.n_scored[n], claim=not smoke) for n in sweep.sizes}
    beats = ratio = None
    if sweep.sizes and not smoke:
        best, best_n = sweep.scratch_best, sweep.scratch_best_n
        beats = next((n for n in sweep.sizes if accuracy_gap(
            sweep.pretrained[n], best, sweep.n_scored[n], sweep.n_scored[best_n]).verdict
            is Verdict.AHEAD), None)
        if beats is not None and best_n / beats >= MANY_TIMES:
            ratio = best_n / beats
    return SweepVerdicts(smoke, gaps, beats, ratio)
