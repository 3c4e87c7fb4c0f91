"""The write-ups' verdicts, one threshold at a time; the rule that templates never compare; the
loss-curve facts the verdicts read; and the wing's own size."""

from __future__ import annotations

import json
import math
import re

import pytest

from mnli_lesson.results import CHANCE_LOSS, Step
from mnli_lesson.writeups import wording
from mnli_lesson.writeups.render import TEMPLATES
from mnli_lesson.writeups.run_facts import (
    CHANCE_MARGIN,
    LossFacts,
    SweepFacts,
    loss_crossover,
    loss_facts,
)
from mnli_lesson.writeups.wording import Curve, Gap, Shape, Verdict

WING = TEMPLATES.parent

AHEAD, BEHIND, LEVEL, UNCLAIMED = (Verdict.AHEAD, Verdict.BEHIND, Verdict.LEVEL,
                                   Verdict.UNCLAIMED)


def loss(steps: int = 100, leaves: int | None = 10, final: float | None = 0.6,
         share: float | None = 0.7) -> LossFacts:
    return LossFacts(steps=steps, first_loss=CHANCE_LOSS, final_smoothed=final,
                     first_epoch_mean=1.0, last_epoch_mean=final, epochs=3,
                     leaves_chance_step=leaves, first_epoch_drop_share=share)


# --------------------------------------------------------------------------- accuracy


def test_noise_margin_is_two_standard_errors_of_a_difference():
    expected = 2 * math.sqrt(0.5 * 0.5 / 1000 + 0.4 * 0.6 / 1000)
    assert wording.noise_margin(0.5, 0.4, 1000, 1000) == pytest.approx(expected)
    assert wording.noise_margin(0.5, 0.4, 1000, 1000) == pytest.approx(0.0443, abs=1e-4)


def test_noise_margin_is_never_less_than_one_pair():
    assert wording.noise_margin(1.0, 1.0, 36, 36) == pytest.approx(1 / 36)
    assert wording.noise_margin(1.0, 0.0, 36, 50) == pytest.approx(1 / 36)
    assert wording.noise_margin(0.5, 0.5, 0, 10) == math.inf


@pytest.mark.parametrize(("a", "b", "n", "verdict"), [
    (0.60, 0.50, 1000, AHEAD),  # margin 0.044
    (0.50, 0.60, 1000, BEHIND),
    (0.53, 0.50, 1000, LEVEL),
    (0.60, 0.50, 100, LEVEL),  # margin 0.139 on 100 pairs
    (0.75, 0.50, 100, AHEAD),
    (0.50, 0.50, 10, LEVEL),
])
def test_accuracy_gap_verdict(a, b, n, verdict):
    assert wording.accuracy_gap(a, b, n, n).verdict is verdict


def test_accuracy_gap_at_the_margin():
    m = wording.noise_margin(0.5, 0.45, 1000, 1000)
    assert wording.accuracy_gap(0.45 + m * 1.01, 0.45, 1000, 1000).verdict is AHEAD
    assert wording.accuracy_gap(0.45 + m * 0.99, 0.45, 1000, 1000).verdict is LEVEL
    gap = wording.accuracy_gap(0.5, 0.45, 1000, 1000)
    assert gap == Gap(pytest.approx(0.05), pytest.approx(m), AHEAD)
    assert wording.accuracy_gap(0.5, 0.45, 1000, 1000, claim=False).verdict is UNCLAIMED


# --------------------------------------------------------------------------- losses


def test_loss_verdict_needs_chance_margin():
    assert CHANCE_MARGIN == 0.05
    assert wording.loss_verdict(0.50, 0.56) is AHEAD  # lower loss is ahead
    assert wording.loss_verdict(0.56, 0.50) is BEHIND
    assert wording.loss_verdict(0.50, 0.54) is LEVEL
    assert wording.loss_verdict(None, 0.5) is LEVEL


def test_uniform_verdict_within_a_tenth_of_ln3():
    assert wording.uniform_verdict(CHANCE_LOSS + 0.09) is LEVEL
    assert wording.uniform_verdict(CHANCE_LOSS - 0.09) is LEVEL
    assert wording.uniform_verdict(CHANCE_LOSS - 0.11) is AHEAD
    assert wording.uniform_verdict(CHANCE_LOSS + 0.11) is BEHIND


def test_curve_verdict():
    assert wording.curve_verdict(loss(leaves=10, final=0.6)) is Curve.LEAVES
    assert wording.curve_verdict(loss(leaves=None, final=CHANCE_LOSS)) is Curve.STAYS
    assert wording.curve_verdict(loss(leaves=10, final=CHANCE_LOSS - 0.04)) is Curve.RETURNS
    assert wording.curve_verdict(loss(steps=0, leaves=None, final=None)) is Curve.EMPTY


def test_curve_shape_front_loaded_from_half_the_drop_plateau_under_half_a_percent():
    assert wording.curve_shape(loss(share=0.5)) is Shape.FRONT_LOADED
    assert wording.curve_shape(loss(share=0.49)) is Shape.LATE
    assert wording.curve_shape(loss(share=0.005)) is Shape.LATE
    assert wording.curve_shape(loss(share=0.004)) is Shape.PLATEAU
    assert wording.curve_shape(loss(share=None)) is Shape.FLAT


def test_pace_verdict_tolerates_five_percent_of_the_steps():
    # 100 steps: curves leaving within 5 steps of each other leave together.
    assert wording.pace_verdict(loss(leaves=10), loss(leaves=15)) is LEVEL
    assert wording.pace_verdict(loss(leaves=10), loss(leaves=16)) is AHEAD
    assert wording.pace_verdict(loss(leaves=16), loss(leaves=10)) is BEHIND
    assert wording.pace_verdict(loss(leaves=10), loss(leaves=None)) is AHEAD
    assert wording.pace_verdict(loss(leaves=None), loss(leaves=90)) is BEHIND
    assert wording.pace_verdict(loss(leaves=None), loss(leaves=None)) is LEVEL
    # Short runs: at least one step apart.
    assert wording.pace_verdict(loss(steps=10, leaves=3), loss(steps=10, leaves=4)) is LEVEL
    assert wording.pace_verdict(loss(steps=10, leaves=3), loss(steps=10, leaves=5)) is AHEAD


# --------------------------------------------------------------------------- the rest


def test_time_verdict_saves_under_ninety_percent():
    assert wording.time_verdict(8.9, 10) is AHEAD
    assert wording.time_verdict(9.5, 10) is LEVEL
    assert wording.time_verdict(11.2, 10) is BEHIND  # over 1/0.9 = 1.11
    assert wording.time_verdict(11.0, 10) is LEVEL
    assert wording.time_verdict(None, 10) is LEVEL


def test_smoke():
    assert wording.is_smoke_test("tiny") and not wording.is_smoke_test("/models/tiny-bert")


def test_judge_sweep():
    sweep = SweepFacts(profile="cpu", model="distilbert-base-uncased", data="kaggle",
                       sizes=(250, 1000, 2000),
                       pretrained={250: 0.45, 1000: 0.50, 2000: 0.55},
                       scratch={250: 0.36, 1000: 0.40, 2000: 0.42},
                       n_scored={250: 1000, 1000: 1000, 2000: 1000}, min_steps=150,
                       scratch_best=0.42, scratch_best_n=2000)
    verdicts = wording.judge_sweep(sweep)
    assert [g.verdict for g in verdicts.gaps.values()] == [AHEAD] * 3
    assert verdicts.beats_best_n == 1000  # 0.45 vs 0.42 is within noise at 1,000 pairs
    assert verdicts.saving_ratio == 2.0
    near = wording.judge_sweep(SweepFacts(**{**sweep.__dict__, "scratch_best_n": 1000}))
    assert near.beats_best_n == 1000 and near.saving_ratio is None  # 1×: no saving quoted
    tiny = wording.judge_sweep(SweepFacts(**{**sweep.__dict__, "model": "tiny"}))
    assert tiny.beats_best_n is None and tiny.saving_ratio is None
    assert {g.verdict for g in tiny.gaps.values()} == {UNCLAIMED}


# --------------------------------------------------------------------------- templates

TAG = re.compile(r"{[%{]-?(.*?)-?[%}]}", re.S)


def test_templates_branch_on_verdicts_never_on_raw_comparisons():
    """No <, >, <=, >= in a template's tags, and every == / != compares with a string literal
    (a verdict's value): the decision is wording.py's."""
    templates = sorted(TEMPLATES.glob("*.md.j2"))
    assert {t.name for t in templates} >= {"q1.md.j2", "q2.md.j2", "q3.md.j2", "frozen.md.j2",
                                           "summary.md.j2", "label_evidence.md.j2",
                                           "model_caveats.md.j2"}
    for template in templates:
        for tag in TAG.findall(template.read_text(encoding="utf-8")):
            assert not re.search(r"[<>]", tag), (template.name, tag)
            for match in re.finditer(r"(==|!=)\s*(\S+)", tag):
                assert match.group(2)[0] in "\"'", (template.name, tag)


# --------------------------------------------------------------------------- facts they read


def steps(losses: list[float], per_epoch: int) -> list[Step]:
    return [Step(s, s / per_epoch, v, 1e-3) for s, v in enumerate(losses, start=1)]


def test_loss_facts_flat_curve_never_leaves_chance():
    facts = loss_facts(steps([CHANCE_LOSS] * 12, 4))
    assert facts.steps == 12 and facts.epochs == 3
    assert facts.leaves_chance_step is None and facts.first_epoch_drop_share is None
    assert facts.first_epoch_mean == pytest.approx(CHANCE_LOSS)
    assert wording.curve_verdict(facts) is Curve.STAYS
    assert wording.curve_shape(facts) is Shape.FLAT


def test_loss_facts_fast_drop_is_front_loaded():
    losses = [0.3 + (CHANCE_LOSS - 0.3) * math.exp(-0.4 * i) for i in range(40)]
    facts = loss_facts(steps(losses, 10))
    assert facts.leaves_chance_step is not None and facts.leaves_chance_step <= 10
    assert facts.first_epoch_drop_share > 0.5
    assert facts.first_epoch_mean > facts.last_epoch_mean
    assert wording.curve_verdict(facts) is Curve.LEAVES
    assert wording.curve_shape(facts) is Shape.FRONT_LOADED
    json.dumps(facts.as_dict(), allow_nan=False)
    with pytest.raises(AttributeError):
        facts.steps = 3  # type: ignore[misc]


def test_loss_facts_ignore_missing_and_nan_losses():
    assert loss_facts([Step(1, 0.5, float("nan"), 1e-3)]).steps == 0
    assert wording.curve_verdict(loss_facts([])) is Curve.EMPTY


def test_loss_crossover_finds_where_one_curve_stays_below():
    flat = steps([CHANCE_LOSS] * 20, 5)
    late = steps([CHANCE_LOSS + 0.01 if s <= 8 else 0.6 for s in range(1, 21)], 5)
    cross = loss_crossover(late, flat)
    assert cross.steps == 20 and cross.first_step == 1
    assert cross.stays_under_from_step == 9 and cross.first_under_step == 9
    assert loss_crossover(flat, late).stays_under_from_step is None


# --------------------------------------------------------------------------- the wing's size


def test_the_wing_stays_small():
    """Facts, verdicts, rendering and templates together under 1,200 lines; Q3's template,
    the longest answer, under 100. ``korean.py``, Korean particles (a language helper with its
    own tests, no facts or verdicts), is counted apart: under 200."""
    files = [f for f in (*WING.glob("*.py"), *TEMPLATES.glob("*.md.j2")) if f.name != "korean.py"]
    lines = {f.name: len(f.read_text(encoding="utf-8").splitlines()) for f in files}
    assert {"__init__.py", "facts.py", "run_facts.py", "wording.py", "render.py",
            "q3.md.j2"} <= set(lines)
    # 1,200 until the validation-loss wording (validation.md.j2, ValidationFacts) came.
    assert sum(lines.values()) < 1350, lines
    assert lines["q3.md.j2"] < 100
    assert len((WING / "korean.py").read_text(encoding="utf-8").splitlines()) < 200


def test_the_wing_imports_no_training_and_no_other_wing():
    """It reads typed results; it never trains, plots, grades or parses a command line."""
    banned = ("train", "experiments", "classroom", "grading", "checks", "plots", "widgets", "cli",
              "distributed", "train_state")
    for path in WING.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name in banned:
            assert not re.search(rf"\bmnli_lesson(\.{name}\b| import .*\b{name}\b)", source), \
                (path.name, name)
