"""Q3, the closing summary and notebook 03's explanation: rendered from results, never typed.

Every test builds small, fabricated ``Comparison`` objects (no training), so they run in
milliseconds; one test renders the summary from the real Q1/Q2 facts of the tiny profile.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from mnli_lesson import writeups
from mnli_lesson.config import resolve_config
from mnli_lesson.data import LABELS
from mnli_lesson.experiments import Comparison

LN3 = math.log(3)
Q3_KOREAN = writeups.QUESTIONS["Q3"][0]
KOREAN_SUMMARY = "**한 줄 요약:**"


def flat(text: str) -> str:
    """The text with every run of whitespace as one space (Markdown wraps lines freely)."""
    return " ".join(text.split())


@pytest.fixture
def cfg():
    return resolve_config("tiny", environ={})


def _final(accuracy: float, n: int = 30) -> dict:
    """A plausible per-split score: a confusion matrix whose diagonal gives ``accuracy``."""
    per_label = n // len(LABELS)
    right = round(accuracy * per_label)
    matrix = [[right if i == j else (per_label - right if j == (i + 1) % 3 else 0)
               for j in range(3)] for i in range(3)]
    return {"accuracy": accuracy, "macro_f1": accuracy, "per_class": {}, "n": n,
            "confusion_matrix": matrix}


def make_run(slug: str, init: str, losses: list[float], accs: list[tuple[float, float]], *,
             cfg, train_size: int = 64, frozen: bool = False, trainable: int = 1000,
             total: int = 1000, epoch_time: float = 2.0) -> dict:
    """A results dict shaped like ``experiments.run``'s; ``accs``: (matched, mismatched) for
    epoch 0 (before training) and then each epoch."""
    steps_per_epoch = math.ceil(train_size / cfg.batch_size)
    history = [{"step": s, "epoch": s / steps_per_epoch, "loss": loss, "lr": cfg.lr}
               for s, loss in enumerate(losses, start=1)]
    epochs = [{"epoch": 0, "validation_matched": accs[0][0],
               "validation_mismatched": accs[0][1]}]
    for e, (m, mm) in enumerate(accs[1:], start=1):
        chunk = [h["loss"] for h in history if e - 1 < h["epoch"] <= e]
        epochs.append({"epoch": e, "train_loss": sum(chunk) / len(chunk),
                       "epoch_time_s": epoch_time, "validation_matched": m,
                       "validation_mismatched": mm})
    return {
        "run": slug, "label": slug, "init": init, "frozen": frozen, "train_size": train_size,
        "epochs_planned": len(accs) - 1, "config": cfg.to_dict(),
        "params": {"all": {"total": total, "trainable": trainable}},
        "history": history, "epochs": epochs,
        "final": {"validation_matched": _final(accs[-1][0]),
                  "validation_mismatched": _final(accs[-1][1])},
        "wall_time_s": epoch_time * (len(accs) - 1), "precision": "fp32", "device": "cpu",
        "interrupted": False,
    }


def decaying(start: float, end: float, n: int, rate: float) -> list[float]:
    return [end + (start - end) * math.exp(-rate * i) for i in range(n)]


def comparison(cfg, *, pre_losses, scr_losses, pre_accs, scr_accs, model="tiny",
               profile="tiny", data="sample") -> Comparison:
    c = Comparison("pretrained-vs-scratch", profile, model, data)
    c.runs["pretrained"] = make_run("pretrained", "pretrained", pre_losses, pre_accs, cfg=cfg)
    c.runs["scratch"] = make_run("scratch", "scratch", scr_losses, scr_accs, cfg=cfg)
    return c


@pytest.fixture
def result_a(cfg) -> Comparison:
    """Pre-trained learns fast; scratch stays at ln 3 (what a real checkpoint shows)."""
    return comparison(
        cfg,
        pre_losses=decaying(LN3, 0.55, 12, 0.5),
        scr_losses=[LN3 + 0.001 * (-1) ** i for i in range(12)],
        pre_accs=[(0.333, 0.333), (0.612, 0.598), (0.655, 0.641), (0.712, 0.703)],
        scr_accs=[(0.333, 0.333), (0.336, 0.339), (0.347, 0.341), (0.352, 0.344)],
    )


@pytest.fixture
def result_b(cfg) -> Comparison:
    """Different numbers: both learn, scratch later and less."""
    return comparison(
        cfg,
        pre_losses=decaying(1.12, 0.8, 12, 0.3),
        scr_losses=[LN3] * 6 + decaying(LN3, 0.95, 6, 0.6),
        pre_accs=[(0.30, 0.31), (0.48, 0.47), (0.55, 0.54), (0.583, 0.571)],
        scr_accs=[(0.36, 0.35), (0.37, 0.36), (0.40, 0.39), (0.417, 0.402)],
        model="/shared/models/all-MiniLM-L6-v2", profile="cpu", data="/shared/data/mnli-sample",
    )


def sweep(cfg, accs: dict[str, dict[int, float]], *, profile="tiny", model="tiny",
          data="sample") -> Comparison:
    s = Comparison("data-efficiency", profile, model, data)
    for init, points in accs.items():
        for n, acc in points.items():
            steps = max(math.ceil(n / cfg.batch_size) * 2, cfg.sweep_min_steps)
            s.runs[f"{init}-n{n}"] = make_run(
                f"{init}-n{n}", init, decaying(LN3, 0.7, steps, 0.1),
                [(acc, acc)] * 3, cfg=cfg, train_size=n)
    return s


# --------------------------------------------------------------------------- loss facts


def test_loss_facts_flat_curve_never_leaves_chance():
    history = [{"step": s, "epoch": s / 4, "loss": LN3} for s in range(1, 13)]
    facts = writeups.loss_facts(history)
    assert facts["steps"] == 12 and facts["epochs"] == 3
    assert facts["leaves_chance_step"] is None and facts["first_epoch_drop_share"] is None
    assert facts["first_epoch_mean"] == pytest.approx(LN3)


def test_loss_facts_fast_drop_is_front_loaded():
    losses = decaying(LN3, 0.3, 40, 0.4)
    history = [{"step": s, "epoch": s / 10, "loss": v} for s, v in enumerate(losses, start=1)]
    facts = writeups.loss_facts(history)
    assert facts["leaves_chance_step"] is not None and facts["leaves_chance_step"] <= 10
    assert facts["first_epoch_drop_share"] > 0.5
    assert facts["first_epoch_mean"] > facts["last_epoch_mean"]
    assert facts["half_drop_step"] <= facts["steps"]


def test_loss_facts_ignores_missing_and_nan_losses():
    history = [{"step": 1, "epoch": 0.5, "loss": float("nan")}, {"step": 2, "epoch": 1.0}]
    assert writeups.loss_facts(history)["steps"] == 0
    assert writeups.loss_facts([])["leaves_chance_step"] is None


def test_loss_crossover_finds_where_one_curve_stays_below():
    flat = [{"step": s, "epoch": s / 5, "loss": LN3} for s in range(1, 21)]
    late = [{"step": s, "epoch": s / 5, "loss": LN3 + 0.01 if s <= 8 else 0.6}
            for s in range(1, 21)]
    cross = writeups.loss_crossover(late, flat)
    assert cross["steps"] == 20
    assert cross["stays_under_from_step"] == 9 and cross["first_under_step"] == 9
    assert cross["gap_final"] > 0
    assert writeups.loss_crossover(flat, late)["stays_under_from_step"] is None


# --------------------------------------------------------------------------- Q3


def test_q3_answer_is_rendered_from_the_numbers(result_a, result_b, cfg):
    text_a = flat(writeups.q3_answer(result_a, None, cfg))
    text_b = flat(writeups.q3_answer(result_b, None, cfg))
    assert text_a != text_b
    for text in (text_a, text_b):
        assert Q3_KOREAN in text
        assert writeups.QUESTIONS["Q3"][1] in text
        assert KOREAN_SUMMARY in text
        assert "82.2" in text and "75.7" in text and "84.6" in text
    assert "71.2%" in text_a and "35.2%" in text_a and "+36.0" in text_a
    assert "58.3%" in text_b and "41.7%" in text_b and "+16.6" in text_b
    assert "71.2%" not in text_b
    # Which profile, model and data produced the numbers.
    assert "profile `tiny`" in text_a and "data `sample`" in text_a
    assert "profile `cpu`" in text_b and "all-MiniLM-L6-v2" in text_b


def test_q3_answer_describes_each_loss_curve(result_a, cfg):
    text = flat(writeups.q3_answer(result_a, None, cfg))
    pre = writeups.loss_facts(result_a.runs["pretrained"]["history"])
    assert f"step {pre['leaves_chance_step']:,}" in text
    assert f"{pre['first_epoch_mean']:.3f}" in text
    assert "never fell" in text  # the scratch curve stays at ln 3
    assert "stays at ln 3" in text


def test_q3_answer_states_the_caveats(result_a, result_b, cfg):
    tiny = flat(writeups.q3_answer(result_a, None, cfg))
    minilm = flat(writeups.q3_answer(result_b, None, cfg))
    assert "smoke test" in tiny and "smoke test" not in minilm
    assert "SNLI and MNLI" in minilm and "SNLI" not in tiny
    assert "tiny 프로필" in tiny


def test_q3_answer_without_a_sweep_says_so(result_a, cfg):
    text = flat(writeups.q3_answer(result_a, None, cfg))
    assert "was not run" in text
    assert ", ".join(f"{n:,}" for n in cfg.sweep_sizes) in text


def test_q3_answer_with_a_sweep(result_a, cfg):
    points = {"pretrained": {36: 0.45, 72: 0.52, 216: 0.61},
              "scratch": {36: 0.33, 72: 0.35, 216: 0.40}}
    s = sweep(cfg, points)
    facts = writeups.sweep_facts(s)
    assert facts["sizes"] == [36, 72, 216]
    assert facts["scratch_best_n"] == 216 and facts["beats_scratch_best_n"] == 36
    assert facts["min_steps"] >= cfg.sweep_min_steps
    text = flat(writeups.q3_answer(result_a, s, cfg))
    assert "With 36 pairs the pre-trained model (45.0%) already beats" in text
    assert "6× as many pairs" in text
    assert f"at least {facts['min_steps']:,} optimiser steps" in text
    assert "+12.0 points at 36 pairs" in text and "+21.0 at 216" in text
    assert "another run" not in text
    assert "사전학습 모델은 36쌍만으로" in text


def test_q3_answer_labels_a_sweep_from_another_run(result_a, cfg):
    points = {"pretrained": {250: 0.40, 1000: 0.50}, "scratch": {250: 0.42, 1000: 0.41}}
    s = sweep(cfg, points, profile="gpu", model="distilbert-base-uncased", data="kaggle")
    text = flat(writeups.q3_answer(result_a, s, cfg, sweep_note="Reference results, loaded."))
    assert "Reference results, loaded." in text
    assert "come from another run: profile `gpu`" in text
    assert "At no size did the pre-trained model beat" not in text  # 50.0% > 42.0%
    s2 = sweep(cfg, {"pretrained": {250: 0.40}, "scratch": {250: 0.42}})
    text2 = flat(writeups.q3_answer(result_a, s2, cfg))
    assert "At no size did the pre-trained model beat" in text2


def test_writeups_do_not_change_their_inputs(result_a, cfg):
    before = json.dumps(result_a.to_dict(), sort_keys=True)
    first = flat(writeups.q3_answer(result_a, None, cfg))
    assert flat(writeups.q3_answer(result_a, None, cfg)) == first
    assert json.dumps(result_a.to_dict(), sort_keys=True) == before


def test_q3_answer_needs_both_runs(result_a, cfg):
    broken = copy.deepcopy(result_a)
    del broken.runs["scratch"]
    with pytest.raises(KeyError, match="scratch"):
        flat(writeups.q3_answer(broken, None, cfg))


# --------------------------------------------------------------------------- summary


def fake_q1(train: int, max_length: int) -> dict:
    return {"profile": "tiny", "source": "sample",
            "used": {"train": train, "validation_matched": 36, "validation_mismatched": 36},
            "max_length": {"chosen": max_length, "percentile": 99.0, "multiple": 8,
                           "truncated_share": 0.004, "configured": 128,
                           "configured_truncated_share": 0.001}}


def fake_q2(layers: int) -> dict:
    return {"model_class": "DistilBertForSequenceClassification", "checkpoint": "tiny",
            "n_layers": layers, "hidden_size": 64, "n_heads": 2,
            "parameters": {"all": {"total": 175_619, "trainable": 175_619}},
            "trainable_when_frozen": 4_355, "forward_keys": ["input_ids", "attention_mask"],
            "batch_shape": [4, 31], "logits_shape": [4, 3]}


def test_summary_covers_q1_to_q3_with_korean_lines(result_a, result_b, cfg):
    text_a = flat(writeups.summary_answer(fake_q1(216, 64), fake_q2(2), result_a, None, cfg))
    text_b = flat(writeups.summary_answer(fake_q1(4000, 128), fake_q2(6), result_b, None, cfg))
    assert text_a != text_b
    for key in ("Q1", "Q2", "Q3"):
        assert writeups.QUESTIONS[key][0] in text_a
    assert text_a.count(KOREAN_SUMMARY) == 3
    assert "216" in text_a and "`max_length = 64`" in text_a and "175,619" in text_a
    assert "4,000" in text_b and "`max_length = 128`" in text_b
    assert "71.2%" in text_a and "58.3%" in text_b
    assert "`[4, 3]`" in text_a and "4,355" in text_a
    assert "its loss never gets there in this run" in text_a  # scratch stays at ln 3
    assert "gets there only at step" in text_b  # result_b's scratch curve leaves it later


def test_summary_mentions_the_sweep_when_there_is_one(result_a, cfg):
    s = sweep(cfg, {"pretrained": {36: 0.45, 216: 0.61}, "scratch": {36: 0.33, 216: 0.40}})
    with_sweep = flat(writeups.summary_answer(fake_q1(216, 64), fake_q2(2), result_a, s, cfg))
    without = flat(writeups.summary_answer(fake_q1(216, 64), fake_q2(2), result_a, None, cfg))
    assert "data-efficiency sweep" in with_sweep and "data-efficiency sweep" not in without
    assert "+12.0 points at 36 pairs" in with_sweep


def test_summary_from_the_real_q1_q2_facts(result_a, cfg):
    """The summary reads the dicts ``data_facts`` and ``model_facts`` really return."""
    from mnli_lesson.data import load_mnli, pair_lengths
    from mnli_lesson.encoding import load_tokenizer
    from mnli_lesson.models import build_model

    data = load_mnli("sample")
    tokenizer = load_tokenizer(cfg.model)
    q1 = writeups.data_facts(data, pair_lengths(tokenizer, data.train), cfg)
    q2 = writeups.model_facts(build_model(cfg.model, seed=cfg.seed), tokenizer, cfg)
    text = flat(writeups.summary_answer(q1, q2, result_a, None, cfg))
    assert f"`max_length = {q1['max_length']['chosen']}`" in text
    assert f"{q2['parameters']['all']['total']:,}" in text
    assert text.count(KOREAN_SUMMARY) == 3


# --------------------------------------------------------------------------- notebook 03


def test_frozen_explanation_renders_the_run(cfg):
    c = Comparison("finetune-vs-frozen", "tiny", "tiny", "sample")
    accs_full = [(0.33, 0.33), (0.55, 0.53), (0.64, 0.62)]
    accs_frozen = [(0.33, 0.33), (0.41, 0.40), (0.45, 0.44)]
    c.runs["full"] = make_run("full", "pretrained", decaying(LN3, 0.6, 8, 0.4), accs_full,
                              cfg=cfg, trainable=66_955_779, total=66_955_779, epoch_time=30.0)
    c.runs["frozen"] = make_run("frozen", "pretrained", decaying(LN3, 0.95, 8, 0.2),
                                accs_frozen, cfg=cfg, frozen=True, trainable=592_131,
                                total=66_955_779, epoch_time=10.0)
    text = flat(writeups.frozen_explanation(c))
    assert "592,131 of 66,955,779 parameters (0.88%)" in text and "113× as many" in text
    assert f"same peak learning rate, {cfg.lr:g}" in text
    assert "+19.0 points" in text
    assert "33% of a fully fine-tuned one's time" in text
    assert "30.0 s fully fine-tuned, 10.0 s frozen" in text
    assert "profile `tiny`" in text and "smoke test" in text
