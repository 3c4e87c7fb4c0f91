"""Q3, the closing summary and notebook 03's explanation, rendered from fabricated typed results
(no training) in three outcomes each: the first run ahead, the second ahead, a tie within
noise. Each must say what its numbers say, and nothing opposite."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest

from mnli_lesson import checkpoints, writeups
from mnli_lesson.config import resolve_config
from mnli_lesson.core import LABELS
from mnli_lesson.errors import LessonError
from mnli_lesson.results import (
    ComparisonResult,
    EpochRecord,
    PartCount,
    RunResult,
    SplitScores,
    Step,
)
from mnli_lesson.writeups.render import FILTERS
from mnli_lesson.writeups.run_facts import run_facts

LN3 = math.log(3)
KOREAN_SUMMARY = "**한 줄 요약:**"
PUBLISHED_PCTS = {"82.2%", "75.7%"}
pct = FILTERS["pct"]


def flat(text: str) -> str:
    """The text with every run of whitespace as one space."""
    return " ".join(text.split())


@pytest.fixture
def cfg():
    return resolve_config("tiny", environ={})


@pytest.fixture(autouse=True)
def known_checkpoints(monkeypatch) -> dict[str, checkpoints.CheckpointInfo]:
    """``checkpoint_info`` answers from this dict only: fast, and proves caveats are data."""
    known: dict[str, checkpoints.CheckpointInfo] = {}
    monkeypatch.setattr(checkpoints, "checkpoint_info", known.get, raising=False)
    return known


# --------------------------------------------------------------------------- the factory


def scores(accuracy: float, n: int) -> SplitScores:
    per = n // len(LABELS)
    right = round(accuracy * per)
    matrix = [[right if i == j else (per - right if j == (i + 1) % 3 else 0) for j in range(3)]
              for i in range(3)]
    return SplitScores(accuracy=accuracy, macro_f1=accuracy, n=n, per_class={},
                       confusion_matrix=matrix)


def make_run(slug: str, init: str, losses: list[float], accs: list[tuple[float, float]], *,
             cfg, train_size: int = 64, frozen: bool = False, trainable: int = 1000,
             total: int = 1000, epoch_time: float = 2.0, n: int = 1000,
             lr: float | None = None, val_losses: list[float] | None = None) -> RunResult:
    """A RunResult as ``experiments.run`` makes one; ``accs``: (matched, mismatched) before
    training (epoch 0) and after each epoch; the losses spread evenly over the epochs;
    ``val_losses``: validation loss per epoch (default: ln 3, then each epoch's mean
    training loss plus 0.05)."""
    epochs_planned = len(accs) - 1
    per_epoch = len(losses) / epochs_planned
    settings = cfg.to_dict() | ({"lr": lr} if lr is not None else {})
    history = [Step(s, s / per_epoch, loss, settings["lr"])
               for s, loss in enumerate(losses, start=1)]
    if val_losses is None:
        per = round(per_epoch)
        val_losses = [LN3] + [sum(losses[i * per:(i + 1) * per]) / max(per, 1) + 0.05
                              for i in range(epochs_planned)]
    epochs = [EpochRecord(0, matched=accs[0][0], mismatched=accs[0][1],
                          matched_loss=val_losses[0])]
    epochs += [EpochRecord(e, train_loss=1.0, epoch_time_s=epoch_time, matched=m, mismatched=mm,
                           matched_loss=val_losses[e])
               for e, (m, mm) in enumerate(accs[1:], start=1)]
    return RunResult(
        run=slug, label=slug, init=init, frozen=frozen, train_size=train_size,
        epochs_planned=epochs_planned, evaluate_each_epoch=True, settings=settings,
        fingerprint="0" * 12, params={"all": PartCount(total, trainable)},
        label_names=list(LABELS), history=history, epochs=epochs,
        final={"validation_matched": scores(accs[-1][0], n),
               "validation_mismatched": scores(accs[-1][1], n)},
        wall_time_s=epoch_time * epochs_planned, precision="fp32", device="cpu")


def decaying(start: float, end: float, n: int, rate: float) -> list[float]:
    return [end + (start - end) * math.exp(-rate * i) for i in range(n)]


def at_chance(n: int) -> list[float]:
    return [LN3 + 0.001 * (-1) ** i for i in range(n)]


FAST, FLAT = decaying(LN3, 0.55, 48, 0.3), at_chance(48)
LN3_THEN_SLOW = at_chance(16) + decaying(LN3, 0.7, 32, 0.2)
TWIN = decaying(LN3, 0.56, 48, 0.29)
#: (a's losses, b's losses, a's accuracies, b's accuracies) per outcome, a = the first run.
OUTCOMES = {
    "ahead": (FAST, FLAT, [(0.333, 0.333), (0.61, 0.60), (0.66, 0.65), (0.712, 0.703)],
              [(0.333, 0.333), (0.336, 0.339), (0.347, 0.341), (0.352, 0.344)]),
    "behind": (FLAT, FAST, [(0.333, 0.333), (0.35, 0.34), (0.37, 0.36), (0.401, 0.392)],
               [(0.333, 0.333), (0.45, 0.47), (0.55, 0.54), (0.583, 0.571)]),
    "level": (FAST, TWIN, [(0.333, 0.333), (0.45, 0.46), (0.50, 0.49), (0.512, 0.503)],
              [(0.333, 0.333), (0.44, 0.45), (0.49, 0.48), (0.505, 0.509)]),
}


def pretrained_vs_scratch(cfg, outcome: str, *, model: str = "distilbert-base-uncased",
                          profile: str = "cpu", data: str = "kaggle") -> ComparisonResult:
    la, lb, aa, ab = OUTCOMES[outcome]
    c = ComparisonResult("pretrained-vs-scratch", profile, model, data)
    c.runs["pretrained"] = make_run("pretrained", "pretrained", la, aa, cfg=cfg)
    c.runs["scratch"] = make_run("scratch", "scratch", lb, ab, cfg=cfg)
    return c


def full_vs_frozen(cfg, outcome: str, *, model: str = "distilbert-base-uncased",
                   profile: str = "cpu", head_lr: float = 1e-3, times=(30.0, 10.0)
                   ) -> ComparisonResult:
    la, lb, aa, ab = OUTCOMES[outcome]
    c = ComparisonResult("finetune-vs-frozen", profile, model, "kaggle")
    c.runs["full"] = make_run("full", "pretrained", la, aa, cfg=cfg, trainable=66_955_779,
                              total=66_955_779, epoch_time=times[0])
    c.runs["frozen"] = make_run("frozen", "pretrained", lb, ab, cfg=cfg, frozen=True,
                                trainable=592_131, total=66_955_779, epoch_time=times[1],
                                lr=head_lr)
    return c


def sweep(cfg, points: dict[str, dict[int, float]], *, profile="cpu",
          model="distilbert-base-uncased", data="kaggle", n: int = 1000) -> ComparisonResult:
    s = ComparisonResult("data-efficiency", profile, model, data)
    for init, accs in points.items():
        for size, acc in accs.items():
            s.runs[f"{init}-n{size}"] = make_run(
                f"{init}-n{size}", init, decaying(LN3, 0.7, cfg.sweep_min_steps, 0.1),
                [(acc, acc)] * 3, cfg=cfg, train_size=size, n=n)
    return s


def percentages(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?%", text))


def run_percentages(*runs: RunResult) -> set[str]:
    """Every accuracy the fabricated runs hold (final and per epoch), as the answers print it."""
    return {pct(a) for r in runs for s in ("matched", "mismatched")
            for a in [r.accuracy(s), *(getattr(e, s) for e in r.epochs)] if a is not None}


# --------------------------------------------------------------------------- Q3, per outcome

#: Per answer and outcome (the first run's matched verdict): phrases the text must hold, and
#: phrases it must not (the other outcomes' claims).
SAYS = {
    ("q3", "ahead"): (
        ("the pre-trained model is ahead", "the pre-trained model learns faster",
         "it stays at ln 3", "사전학습 모델이 36.0%p 앞섰다"),
        ("the scratch model is ahead", "scratch model learns faster", "within noise",
         "neither learns faster", "opposite of the published", "처음부터 학습한 모델이")),
    ("q3", "behind"): (
        ("the scratch model is ahead", "the scratch model learns faster",
         "the opposite of the published results", "처음부터 학습한 모델이 18.2%p 앞섰다"),
        ("the pre-trained model is ahead", "pre-trained model learns faster", "within noise",
         "neither learns faster", "사전학습 모델이")),
    ("q3", "level"): (
        ("on matched, the difference, +0.7 points, is within noise", "neither learns faster",
         "잡음 범위"),
        ("is ahead", "model learns faster", "noise margin", "앞섰다", "opposite of the published")),
    ("frozen", "ahead"): (
        ("why the frozen encoder learns less", "full fine-tuning is ahead",
         "the expected pattern", "fits its training pairs less well"),
        ("the frozen encoder is ahead", "came out ahead", "within noise", "end level")),
    ("frozen", "behind"): (
        ("the frozen encoder came out ahead", "the frozen encoder is ahead",
         "against the usual pattern", "fits its training pairs better"),
        ("learns less", "full fine-tuning is ahead", "within noise", "expected pattern")),
    ("frozen", "level"): (
        ("end level in this run", "within noise", "cost no accuracy beyond noise"),
        ("learns less", "is ahead", "came out ahead", "usual pattern")),
    ("summary", "ahead"): (
        ("the pre-trained model is ahead", "the scratch model's stays at ln 3",
         "the pre-trained model learns faster", "사전학습 모델이"),
        ("the scratch model is ahead", "within noise", "처음부터 학습한 모델이")),
    ("summary", "behind"): (
        ("the scratch model is ahead", "the scratch model learns faster", "처음부터 학습한 모델이",
         "the pre-trained model's loss stays at ln 3"),
        ("the pre-trained model is ahead", "within noise", "pre-trained model learns faster",
         "사전학습 모델이")),
    ("summary", "level"): (
        ("within noise", "neither learns faster", "잡음 범위"),
        ("is ahead", "model learns faster", "앞섰다")),
}


def answer(kind: str, cfg, outcome: str, q1=None, q2=None, **where) -> str:
    """One answer rendered from the fabricated outcome, whitespace flattened."""
    if kind == "frozen":
        return flat(writeups.frozen_explanation(full_vs_frozen(cfg, outcome, **where)))
    comparison = pretrained_vs_scratch(cfg, outcome, **where)
    if kind == "q3":
        return flat(writeups.q3_answer(comparison, None, cfg))
    return flat(writeups.summary_answer(q1, q2, comparison, None, cfg))


def assert_says(text: str, says: tuple[str, ...], never: tuple[str, ...]) -> None:
    lower = text.lower()
    for phrase in says:
        assert phrase.lower() in lower, f"missing: {phrase!r}"
    for phrase in never:
        assert phrase.lower() not in lower, f"contradicts its numbers: {phrase!r}"


@pytest.mark.parametrize(("kind", "outcome"), list(SAYS))
def test_answers_say_what_their_numbers_say_and_nothing_opposite(cfg, q1_facts,
                                                                 tiny_model_facts, kind, outcome):
    text = answer(kind, cfg, outcome, q1_facts, tiny_model_facts)
    assert_says(text, *SAYS[kind, outcome])
    assert "smoke test" not in text
    if kind == "summary":
        assert text.count(KOREAN_SUMMARY) == 3
        assert all(writeups.QUESTIONS[key][0] in text for key in ("Q1", "Q2", "Q3"))


@pytest.mark.parametrize("outcome", list(OUTCOMES))
@pytest.mark.parametrize("kind", ["q3", "frozen", "summary"])
def test_tiny_model_is_a_smoke_test_that_claims_nothing(cfg, q1_facts, tiny_model_facts, kind,
                                                         outcome):
    where = {"model": "tiny", "profile": "tiny"} | ({} if kind == "frozen" else {"data": "sample"})
    text = answer(kind, cfg, outcome, q1_facts, tiny_model_facts, **where)
    assert_says(text, ("smoke test", "nothing here is a claim about pre-training"), (
        "learns faster", "learns less", "is ahead", "within noise", "앞섰다", "came out ahead",
        "expected pattern", "opposite of the published", "published results"))
    if kind != "frozen":
        assert ("tiny 프로필" if kind == "q3" else "스모크 테스트") in text
        assert "built-in sample" in text


def test_q3_scratch_learns_later(cfg, q1_facts, tiny_model_facts):
    c = pretrained_vs_scratch(cfg, "ahead")
    scratch = c.runs["scratch"]
    scratch.history[:] = [replace(s, loss=v)
                          for s, v in zip(scratch.history, LN3_THEN_SLOW, strict=True)]
    step = writeups.loss_facts(scratch.history).leaves_chance_step
    pre_step = writeups.loss_facts(c.runs["pretrained"].history).leaves_chance_step
    assert pre_step < step
    text = flat(writeups.q3_answer(c, None, cfg))
    assert f"From scratch the smoothed loss falls 0.05 below ln 3 at step {step} and ends" in text
    assert "the pre-trained model learns faster" in text and "stays at ln 3" not in text
    summary = flat(writeups.summary_answer(q1_facts, tiny_model_facts, c, None, cfg))
    assert (f"loss falls 0.05 below ln 3 at step {pre_step}; the scratch model's falls 0.05 "
            f"below ln 3 at step {step}. So the pre-trained model learns faster.") in summary


def test_q3_numbers_all_come_from_the_results(cfg):
    c = pretrained_vs_scratch(cfg, "ahead")
    text = flat(writeups.q3_answer(c, None, cfg))
    drop = writeups.loss_facts(c.runs["pretrained"].history).first_epoch_drop_share
    derived = {pct(drop, 0), "36.0%"}  # the first epoch's share of the drop; 36.0%p
    allowed = run_percentages(*c.runs.values()) | PUBLISHED_PCTS | derived | {"10%", "0.02%"}
    assert percentages(text) <= allowed, percentages(text) - allowed
    assert "71.2%" in text and "35.2%" in text and "36.0 points" in text
    # Change one number, and the text follows.
    pre = c.runs["pretrained"]
    pre.final["validation_matched"] = scores(0.689, 1000)
    pre.epochs[-1] = replace(pre.epochs[-1], matched=0.689)
    changed = flat(writeups.q3_answer(c, None, cfg))
    assert "68.9%" in changed and "71.2%" not in changed and "33.7 points" in changed
    loss = writeups.loss_facts(c.runs["pretrained"].history)
    assert f"step {loss.leaves_chance_step:,}" in text
    assert f"ends at {loss.final_smoothed:.3f}" in text
    assert f"starts at {loss.first_loss:.3f}, about ln 3" in text
    assert "profile `cpu`, model `distilbert-base-uncased`, data `kaggle`" in text
    assert "for both runs" in text and "1,000 pairs scored" in text
    assert "a gap of 6.5 points" in text


def test_q3_caveat_comes_from_checkpoint_info(cfg, known_checkpoints):
    path = "/shared/models/all-MiniLM-L6-v2"
    c = pretrained_vs_scratch(cfg, "ahead", model=path, data="/shared/data/mnli-sample")
    assert "About the checkpoint" not in writeups.q3_answer(c, None, cfg)  # not from the path
    known_checkpoints[path] = checkpoints.CheckpointInfo("org/minilm", "a model that saw SNLI")
    assert "`org/minilm` (model setting" in writeups.q3_answer(c, None, cfg)


# --------------------------------------------------------------------------- the sweep


def test_q3_without_a_sweep_says_so(cfg):
    text = flat(writeups.q3_answer(pretrained_vs_scratch(cfg, "ahead"), None, cfg))
    assert "No sweep (sizes 36, 72, 216) was run or loaded." in text


SAVES = {"pretrained": {36: 0.45, 72: 0.52, 216: 0.61}, "scratch": {36: 0.33, 72: 0.35, 216: 0.40}}


@pytest.mark.parametrize(("points", "where", "says", "never"), [
    (SAVES, {}, ("36 pairs: 45.0% vs 33.0% (pre-trained ahead)", "6× as many",
                 "With 36 pairs the pre-trained model (45.0%) already beats",
                 "at least 30 optimiser steps", "사전학습 모델은 36쌍만으로"),
     ("another run", "Reference", "At no size")),
    ({"pretrained": {36: 0.55, 216: 0.62}, "scratch": {36: 0.35, 216: 0.60}}, {},
     ("216 pairs: 62.0% vs 60.0% (within noise)", "36 pairs: 55.0% vs 35.0% (pre-trained ahead)",
      "At no size did the pre-trained model beat the scratch model's best (60.0%"),
     ("already beats", "쌍만으로")),
    ({"pretrained": {250: 0.40, 1000: 0.41}, "scratch": {250: 0.48, 1000: 0.50}},
     {"profile": "gpu", "data": "/data/mnli"},
     ("Reference results, loaded.", "come from another run: profile `gpu`", "(scratch ahead)",
      "At no size did the pre-trained model beat"),
     ("(pre-trained ahead)", "already beats", "쌍만으로")),
    (SAVES, {"model": "tiny", "profile": "tiny", "n": 36},
     ("36 pairs: 45.0% vs 33.0%; 72 pairs: 52.0% vs 35.0%;",),
     ("already beats", "(pre-trained ahead)", "(within noise)", "At no size")),
])
def test_q3_sweep(cfg, points, where, says, never):
    note = "Reference results, loaded." if "profile" in where and "n" not in where else None
    text = flat(writeups.q3_answer(pretrained_vs_scratch(cfg, "ahead"), sweep(cfg, points, **where),
                                   cfg, sweep_note=note))
    assert_says(text, says, never)


# --------------------------------------------------------------------------- notebook 03

def test_frozen_explanation_numbers(cfg):
    c = full_vs_frozen(cfg, "ahead")
    text = flat(writeups.frozen_explanation(c))
    assert "592,131 of 66,955,779 parameters (0.88%)" in text and "113× as many" in text
    assert "+36.0" not in text and "36.0 points" in text
    assert "33% of a fully fine-tuned one's time" in text and "backward pass stops" in text
    assert "30.0 s fully fine-tuned, 10.0 s frozen" in text
    allowed = run_percentages(*c.runs.values()) | {"0.88%", "33%"}
    assert percentages(text) <= allowed, percentages(text) - allowed


@pytest.mark.parametrize(("head_lr", "times", "says", "never"), [
    (2e-3, (30, 10), ("learning rate 0.002 for both runs",), ("(frozen)",)),
    (1e-2, (30, 10), ("learning rate 0.002 (full) and 0.01 (frozen);",), ("for both runs",)),
    (1e-3, (10, 9.5), ("95% of a fully fine-tuned one's time, no real saving",),
     ("backward pass stops",)),
    (1e-3, (10, 13), ("130% of a fully", "longer rather than shorter"),
     ("backward pass stops", "no real saving")),
])
def test_frozen_explanation_learning_rates_and_time(cfg, head_lr, times, says, never):
    text = flat(writeups.frozen_explanation(full_vs_frozen(cfg, "ahead", head_lr=head_lr,
                                                           times=times)))
    assert_says(text, says, never)


# --------------------------------------------------------------------------- the summary


@pytest.fixture(scope="module")
def q1_facts() -> writeups.DataFacts:
    """The real Q1 facts of the built-in sample, on the tiny profile."""
    from mnli_lesson.data import load_mnli, pair_lengths
    from mnli_lesson.models import load_tokenizer

    cfg, data = resolve_config("tiny", environ={}), load_mnli("sample")
    return writeups.data_facts(data, pair_lengths(load_tokenizer(cfg.model), data.train), cfg)


@pytest.fixture(scope="module")
def tiny_model_facts():
    from mnli_lesson.models import build_model, load_tokenizer

    cfg = resolve_config("tiny", environ={})
    return writeups.model_facts(build_model(cfg.model, seed=cfg.seed),
                                load_tokenizer(cfg.model), cfg)


def test_summary_numbers(cfg, q1_facts, tiny_model_facts):
    c = pretrained_vs_scratch(cfg, "ahead")
    a = flat(writeups.summary_answer(q1_facts, tiny_model_facts, c, None, cfg))
    more = replace(q1_facts, used=q1_facts.used | {"train": 4000})
    b = flat(writeups.summary_answer(more, tiny_model_facts, c, None, cfg))
    assert "216 training pairs" in a and "4,000 training pairs" in b
    assert "216 training pairs" not in b and "학습 4,000쌍" in b
    assert f"`max_length = {q1_facts.max_length.chosen}`" in a
    assert f"{tiny_model_facts.total_params:,}" in a and "`[4, 3]`" in a
    assert "71.2% vs 35.2%: the pre-trained model is ahead by 36.0 points" in a
    s = sweep(cfg, {"pretrained": {36: 0.45, 216: 0.61}, "scratch": {36: 0.33, 216: 0.40}})
    with_sweep = flat(writeups.summary_answer(q1_facts, tiny_model_facts, c, s, cfg))
    assert "사전학습 모델은 36쌍만으로" in with_sweep and "쌍만으로" not in a


# --------------------------------------------------------------------------- inputs


def test_answers_leave_their_inputs_alone_and_need_both_runs(cfg):
    c = pretrained_vs_scratch(cfg, "ahead")
    before = json.dumps(c.to_json(), sort_keys=True)
    assert writeups.q3_answer(c, None, cfg) == writeups.q3_answer(c, None, cfg)
    assert json.dumps(c.to_json(), sort_keys=True) == before
    del c.runs["scratch"]
    with pytest.raises(LessonError, match="scratch"):
        writeups.q3_answer(c, None, cfg)
    with pytest.raises(LessonError, match="full"):
        writeups.frozen_explanation(c)


def test_facts_of_a_run_trained_by_two_processes(cfg):
    """Two processes (torchrun) take every other batch: a step sees twice the pairs."""
    batch = cfg.batch_size
    alone = make_run("full", "pretrained", FAST, OUTCOMES["ahead"][2], cfg=cfg,
                     train_size=10 * batch + 1)
    shared = replace(alone, processes=2)
    assert run_facts(alone).batch_size == batch and run_facts(shared).batch_size == 2 * batch
    assert run_facts(alone).steps == len(FAST) and run_facts(alone).mean_epoch_time == 2.0
    assert (run_facts(alone).matched, run_facts(alone).n_matched) == (0.712, 1000)


# --------------------------------------------------------------------------- length


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_each_answer_on_the_tiny_profile_stays_short(cfg, q1_facts, tiny_model_facts,
                                                     outcome):
    """Words as ``wc -w`` counts them, Korean summaries and questions included; Q3 and the
    summary with a sweep, as notebook 04 renders them on the tiny profile."""
    where = {"model": "tiny", "profile": "tiny", "data": "sample"}
    c, s = pretrained_vs_scratch(cfg, outcome, **where), sweep(cfg, SAVES, n=36, **where)
    answers = {"Q1": writeups.q1_answer(q1_facts), "Q2": writeups.q2_answer(tiny_model_facts),
               "Q3": writeups.q3_answer(c, s, cfg),
               "summary": writeups.summary_answer(q1_facts, tiny_model_facts, c, s, cfg)}
    words = {key: len(text.split()) for key, text in answers.items()}
    # About 200 words; Q3 reads two curves (training and validation loss), so up to 250.
    assert max(words.values()) <= 250, words
    assert min(words.values()) >= 60, words  # each still answers its question


# --------------------------------------------------------------------------- validation loss


@pytest.mark.parametrize("val_losses, best, near_best, trend", [
    ([LN3, 0.90, 0.80, 0.85, 0.90], 2, 2, "overfits"),  # lowest at epoch 2, then up
    ([LN3, 0.90, 0.80, 0.80, 0.79], 4, 4, "settled"),  # ends lowest, by a hair
    ([LN3, 0.90, 0.80, 0.75, 0.70], 4, 4, "still_falling"),  # the last epoch still helps
    ([LN3, 0.90, 0.80, 0.95, 0.81], 2, 4, "settled"),  # a bump, then back: no lasting rise
    ([LN3, LN3, LN3, LN3, LN3], 0, 4, "flat"),  # flat at ln 3
    ([LN3, LN3, LN3 + 0.001, 1.25, 1.6], 0, 2, "overfits"),  # a tie, then up: after epoch 2
    ([LN3, 1.20, 1.20, 1.20, 1.20], 0, 0, "overfits"),  # worse from the first epoch on
])
def test_validation_facts_say_where_a_run_over_fits(cfg, val_losses, best, near_best, trend):
    from mnli_lesson.writeups.run_facts import validation_facts

    run = make_run("full", "pretrained", FAST, [(0.33, 0.33)] * 5, cfg=cfg,
                   val_losses=val_losses)
    facts = validation_facts(run)
    assert (facts.best_epoch, facts.near_best, facts.trend) == (best, near_best, trend)
    assert list(facts.per_epoch) == [0, 1, 2, 3, 4] and facts.first == LN3


def test_a_rise_without_training_is_not_called_over_fitting(cfg):
    from mnli_lesson.writeups.run_facts import validation_facts

    flat_training = make_run("s", "scratch", at_chance(40), [(0.33, 0.33)] * 5, cfg=cfg,
                             val_losses=[LN3] + [1.2] * 4)
    assert validation_facts(flat_training).trend == "rose"
    once = make_run("s", "scratch", FAST, [(0.33, 0.33)] * 2, cfg=cfg, val_losses=[LN3, 0.9])
    once = replace(once, epochs=once.epochs[1:])  # scored once: nothing to read
    assert validation_facts(once).trend == "none"


def test_validation_summary_words_follow_the_numbers(cfg):
    over = make_run("over", "pretrained", FAST, [(0.33, 0.33)] * 5, cfg=cfg,
                    val_losses=[LN3, 0.90, 0.80, 0.85, 0.90])
    flat = make_run("flat", "scratch", at_chance(40), [(0.33, 0.33)] * 5, cfg=cfg,
                    val_losses=[LN3] * 5)
    still = make_run("still", "pretrained", FAST, [(0.33, 0.33)] * 5, cfg=cfg,
                     val_losses=[LN3, 1.0, 0.9, 0.8, 0.7])
    rose = make_run("rose", "scratch", at_chance(40), [(0.33, 0.33)] * 5, cfg=cfg,
                    val_losses=[LN3] + [1.2] * 4)
    bump = make_run("bump", "pretrained", FAST, [(0.33, 0.33)] * 5, cfg=cfg,
                    val_losses=[LN3, 0.90, 0.80, 0.95, 0.81])
    text = writeups.validation_summary([over, flat, still, rose, bump])
    over_text, flat_text, still_text, rose_text, bump_text = text.strip().split("\n\n")
    assert "over-fitting from epoch 3" in over_text and "0.800 → 0.850" in over_text
    assert "no over-fitting" in flat_text and "learnt little" in flat_text
    assert "no over-fitting" in still_text and "more epochs might help" in still_text
    assert "not over-fitting" in rose_text and "training loss barely moved" in rose_text
    assert "no lasting rise" in bump_text and "over-fitting from" not in bump_text
    assert "over-fitting from" not in flat_text + still_text + rose_text
