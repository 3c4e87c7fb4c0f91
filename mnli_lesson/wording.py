"""The one place where numbers become comparative words.

Templates never compare numbers themselves: they branch on the verdicts computed here
(``ahead`` / ``behind`` / ``level``, ``leaves_chance`` / ``stays_near_chance``, ...), so the
thresholds that decide "faster", "learns less" or "within noise" live in one module, with tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from mnli_lesson.run_facts import CHANCE_LOSS, CHANCE_MARGIN

if TYPE_CHECKING:
    from mnli_lesson.run_facts import Crossover, LossFacts, PairFacts, SweepFacts

#: A single batch's loss within this of ln 3 is "about a uniform guess" (one batch is noisier
#: than a smoothed curve, hence wider than CHANCE_MARGIN).
UNIFORM_TOLERANCE = 0.1
#: Two curves that leave chance within this share of the run's steps (at least one step) leave
#: it together: the smoothing alone shifts a crossing by a few steps.
PACE_TOLERANCE = 0.05
#: A run whose epochs take under this share of another's saves time; over its inverse, costs.
TIME_SAVING = 0.9
#: A first epoch that makes at least this share of the whole drop is a front-loaded curve;
#: under ALMOST_NONE of it, the first epoch is a plateau.
FRONT_LOADED = 0.5
ALMOST_NONE = 0.005
#: Standard errors in a noise margin (about a 95% interval).
Z = 2.0
#: A data saving is quoted as "N× as many pairs" from this ratio on.
MANY_TIMES = 1.5


class Verdict(str, Enum):
    """How the first of two things compares with the second."""

    AHEAD = "ahead"
    BEHIND = "behind"
    LEVEL = "level"
    UNCLAIMED = "unclaimed"
    """A smoke test (random weights on both sides): no claim is made either way."""


class Curve(str, Enum):
    """What one smoothed loss curve does relative to ln 3."""

    LEAVES = "leaves_chance"
    RETURNS = "returns_to_chance"
    """It fell below ln 3 at some step but ends near (or above) it again."""
    STAYS = "stays_near_chance"
    EMPTY = "no_losses"


class Shape(str, Enum):
    """Where a curve's drop happens."""

    FRONT_LOADED = "front_loaded"
    LATE = "late"
    PLATEAU = "first_epoch_plateau"
    """Almost none of the drop in the first epoch."""
    FLAT = "flat"


class Crossing(str, Enum):
    """Whether the first run's smoothed loss stays lower than the second's to the end."""

    THROUGHOUT = "under_throughout"
    FROM_STEP = "under_from_step"
    NO_LEAD = "no_lasting_lead"
    """Not clearly lower at the end (the ends are within ``CHANCE_MARGIN``, or it is higher)."""
    UNCLAIMED = "unclaimed"


class Trend(str, Enum):
    """How a gap changes from the smallest training size to the largest."""

    NARROWS = "narrows"
    WIDENS = "widens"
    STEADY = "steady"
    REVERSES = "reverses"
    UNCLAIMED = "unclaimed"


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
    if diff < -margin:
        return Verdict.BEHIND
    return Verdict.LEVEL


def compare_accuracies(a: float, b: float, n_a: int, n_b: int) -> Verdict:
    """``ahead`` when ``a`` beats ``b`` by more than the noise margin, ``behind`` when it trails
    by more, else ``level``."""
    return _by_margin(a - b, noise_margin(a, b, n_a, n_b))


def accuracy_gap(a: float, b: float, n_a: int, n_b: int, *, claim: bool = True) -> Gap:
    """The gap ``a - b`` with its margin; ``claim=False`` (a smoke test) makes no verdict."""
    margin = noise_margin(a, b, n_a, n_b)
    verdict = _by_margin(a - b, margin) if claim else Verdict.UNCLAIMED
    return Gap(a - b, margin, verdict)


def versus_chance(accuracy: float, n: int, classes: int = 3) -> Verdict:
    """An accuracy against guessing (1/classes), with a binomial margin under guessing."""
    p = 1 / classes
    if n <= 0:
        return Verdict.LEVEL
    return _by_margin(accuracy - p, max(Z * math.sqrt(p * (1 - p) / n), 1 / n))


def larger(a: float, b: float) -> Verdict:
    """A setting against another, exactly: ``ahead`` when ``a`` is larger (no noise in a
    configured number)."""
    return _by_margin(a - b, 0.0)


def loss_verdict(a: float | None, b: float | None, margin: float = CHANCE_MARGIN) -> Verdict:
    """Two (smoothed) losses: ``ahead`` when ``a`` is lower by more than ``margin``."""
    if a is None or b is None:
        return Verdict.LEVEL
    return _by_margin(b - a, margin)


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
    if loss.final_smoothed > CHANCE_LOSS - CHANCE_MARGIN:
        return Curve.RETURNS
    return Curve.LEAVES


def curve_shape(loss: LossFacts) -> Shape:
    """``front_loaded`` when the first epoch made most of the drop, ``flat`` without a drop."""
    share = loss.first_epoch_drop_share
    if share is None:
        return Shape.FLAT
    if share >= FRONT_LOADED:
        return Shape.FRONT_LOADED
    return Shape.LATE if share >= ALMOST_NONE else Shape.PLATEAU


def pace_verdict(a: LossFacts, b: LossFacts) -> Verdict:
    """Which curve learns faster: ``ahead`` when ``a`` leaves ln 3 clearly earlier than ``b``
    (or ``b`` never does), ``level`` when both leave it together or neither does."""
    sa, sb = a.leaves_chance_step, b.leaves_chance_step
    if sa is None and sb is None:
        return Verdict.LEVEL
    if sb is None:
        return Verdict.AHEAD
    if sa is None:
        return Verdict.BEHIND
    tolerance = max(1, math.ceil(PACE_TOLERANCE * max(a.steps, b.steps)))
    return _by_margin(sb - sa, tolerance)


def crossing_verdict(cross: Crossover, final_loss: Verdict) -> Crossing:
    """From which step ``a``'s smoothed loss stays under ``b``'s, claimed only when it ends
    lower by more than ``CHANCE_MARGIN`` (``final_loss`` is ``ahead``)."""
    if final_loss is Verdict.UNCLAIMED:
        return Crossing.UNCLAIMED
    if final_loss is not Verdict.AHEAD or cross.stays_under_from_step is None:
        return Crossing.NO_LEAD
    if cross.stays_under_from_step == cross.first_step:
        return Crossing.THROUGHOUT
    return Crossing.FROM_STEP


def time_verdict(a_seconds: float | None, b_seconds: float | None) -> Verdict:
    """``ahead`` when run ``a``'s epochs take under ``TIME_SAVING`` of ``b``'s (it saves
    time), ``behind`` when they take over its inverse, else ``level`` (also when untimed)."""
    if not a_seconds or not b_seconds or not math.isfinite(a_seconds / b_seconds):
        return Verdict.LEVEL
    share = a_seconds / b_seconds
    if share < TIME_SAVING:
        return Verdict.AHEAD
    return Verdict.BEHIND if share > 1 / TIME_SAVING else Verdict.LEVEL


def trend_verdict(small: Gap, large: Gap) -> Trend:
    """How a gap moves from the smallest size to the largest: it ``reverses`` when the two ends
    are clear and opposite, else narrows or widens by more than both margins together."""
    clear = {Verdict.AHEAD, Verdict.BEHIND}
    if small.verdict in clear and large.verdict in clear and small.verdict != large.verdict:
        return Trend.REVERSES
    margin = math.hypot(small.margin, large.margin)
    change = abs(large.value) - abs(small.value)
    if change < -margin:
        return Trend.NARROWS
    return Trend.WIDENS if change > margin else Trend.STEADY


def versus_published(gap: Gap, published_points: float) -> Verdict:
    """This run's gap against a published gap (in points): ``ahead`` when larger by more than
    the run's noise margin."""
    if gap.verdict is Verdict.UNCLAIMED:
        return Verdict.UNCLAIMED
    return _by_margin(100 * gap.value - published_points, 100 * gap.margin)


def top_negated(shares: dict[str, float | None]) -> str | None:
    """The label whose hypotheses hold the most negation words (None on a tie or no data)."""
    known = {k: v for k, v in shares.items() if v is not None}
    if not known:
        return None
    best = max(known.values())
    tops = [k for k, v in known.items() if v == best]
    return tops[0] if len(tops) == 1 else None


def is_smoke_test(model: str) -> bool:
    """True for the ``tiny`` checkpoint: random weights on both sides of every comparison."""
    from mnli_lesson.checkpoints import TINY

    return str(model).strip() == TINY


# --------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class PairVerdicts:
    """Every verdict the write-ups need about two runs ``a`` and ``b`` (a's view)."""

    smoke: bool
    matched: Gap
    mismatched: Gap
    pace: Verdict
    """``ahead``: a learns faster (leaves ln 3 earlier)."""
    final_loss: Verdict
    """``ahead``: a's smoothed loss ends lower."""
    crossing: Crossing
    curve_a: Curve
    curve_b: Curve
    shape_a: Shape
    shape_b: Shape
    start_a: Verdict
    """a's first loss against ln 3 (``level``: about a uniform guess)."""
    start_b: Verdict
    before_a: Verdict | None
    """a's matched accuracy before training against guessing (None: not scored)."""
    before_b: Verdict | None
    after_b: Verdict
    """b's final matched accuracy against guessing."""
    time: Verdict
    """``ahead``: a's epochs take less time (a measurement, claimed on smoke tests too)."""


def judge_pair(pair: PairFacts) -> PairVerdicts:
    """The verdicts about two runs; on a smoke test none about which learns more or faster."""
    smoke = is_smoke_test(pair.model)
    a, b = pair.acc_a, pair.acc_b

    def before(acc: float | None, n: int) -> Verdict | None:
        return None if acc is None else versus_chance(acc, n)

    first_a, first_b = pair.loss_a.first_loss, pair.loss_b.first_loss
    final_loss = Verdict.UNCLAIMED if smoke else loss_verdict(pair.loss_a.final_smoothed,
                                                              pair.loss_b.final_smoothed)
    return PairVerdicts(
        smoke=smoke,
        matched=accuracy_gap(a.matched, b.matched, a.n_matched, b.n_matched, claim=not smoke),
        mismatched=accuracy_gap(a.mismatched, b.mismatched, a.n_mismatched, b.n_mismatched,
                                claim=not smoke),
        pace=Verdict.UNCLAIMED if smoke else pace_verdict(pair.loss_a, pair.loss_b),
        final_loss=final_loss, crossing=crossing_verdict(pair.crossover, final_loss),
        curve_a=curve_verdict(pair.loss_a), curve_b=curve_verdict(pair.loss_b),
        shape_a=curve_shape(pair.loss_a), shape_b=curve_shape(pair.loss_b),
        start_a=Verdict.LEVEL if first_a is None else uniform_verdict(first_a),
        start_b=Verdict.LEVEL if first_b is None else uniform_verdict(first_b),
        before_a=before(a.before, a.n_matched), before_b=before(b.before, b.n_matched),
        after_b=versus_chance(b.matched, b.n_matched),
        time=time_verdict(pair.recipe_a.mean_epoch_time, pair.recipe_b.mean_epoch_time),
    )


@dataclass(frozen=True)
class SweepVerdicts:
    """What the data-efficiency sweep shows, pre-trained against scratch."""

    smoke: bool
    gaps: dict[int, Gap]
    beats_best_n: int | None
    """The smallest size at which pre-trained beats scratch's best (at any size) by more
    than noise."""
    saving_ratio: float | None
    """Scratch's best size over ``beats_best_n`` when at least ``MANY_TIMES``."""
    trend: Trend | None
    """From the smallest size to the largest (None: fewer than two sizes)."""


def judge_sweep(sweep: SweepFacts) -> SweepVerdicts:
    """Per-size gaps, where pre-training overtakes scratch's best, and how the gap moves."""
    smoke = is_smoke_test(sweep.model)
    gaps = {n: accuracy_gap(sweep.pretrained[n], sweep.scratch[n], sweep.n_scored[n],
                            sweep.n_scored[n], claim=not smoke) for n in sweep.sizes}
    beats = ratio = trend = None
    if len(sweep.sizes) > 1:
        trend = (Trend.UNCLAIMED if smoke
                 else trend_verdict(gaps[sweep.sizes[0]], gaps[sweep.sizes[-1]]))
    if sweep.sizes and not smoke:
        best, best_n = sweep.scratch_best, sweep.scratch_best_n
        beats = next((n for n in sweep.sizes if compare_accuracies(
            sweep.pretrained[n], best, sweep.n_scored[n], sweep.n_scored[best_n])
            is Verdict.AHEAD), None)
        if beats is not None and best_n / beats >= MANY_TIMES:
            ratio = best_n / beats
    return SweepVerdicts(smoke, gaps, beats, ratio, trend)


__all__ = [
    "ALMOST_NONE", "CHANCE_LOSS", "CHANCE_MARGIN", "FRONT_LOADED", "MANY_TIMES", "PACE_TOLERANCE",
    "TIME_SAVING", "UNIFORM_TOLERANCE", "Z", "Crossing", "Curve", "Gap", "PairVerdicts", "Shape",
    "SweepVerdicts", "Trend", "Verdict", "accuracy_gap", "compare_accuracies", "crossing_verdict",
    "curve_shape", "curve_verdict", "is_smoke_test", "judge_pair", "judge_sweep", "larger",
    "loss_verdict", "noise_margin", "pace_verdict", "time_verdict", "top_negated",
    "trend_verdict", "uniform_verdict", "versus_chance", "versus_published",
]
