"""Tests for mnli_lesson.evaluate: metrics against hand-computed values, predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mnli_lesson.core import LABELS, accuracy, encode_pairs, make_collator, predict
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.evaluate import (
    confusion_matrix,
    cross_entropy,
    evaluate,
    per_class,
    predict_pair,
    report,
)
from mnli_lesson.models import build_model, load_tokenizer

# Gold and predicted labels: contradiction (2) is never predicted.
GOLD = [0, 0, 0, 1, 1, 2, 2]
PRED = [0, 0, 1, 1, 0, 1, 0]
# rows = gold, columns = predicted
MATRIX = [[2, 1, 0],
          [1, 1, 0],
          [1, 1, 0]]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight parallel test runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_accuracy_by_hand():
    assert accuracy(GOLD, PRED) == pytest.approx(3 / 7)


def test_accuracy_of_nothing_is_zero():
    assert accuracy([], []) == 0.0


def test_confusion_matrix_by_hand():
    assert confusion_matrix(GOLD, PRED) == MATRIX


def test_confusion_matrix_counts_all_pairs():
    matrix = confusion_matrix([2, 2, 1], [2, 0, 1])
    assert matrix == [[0, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_per_class_by_hand_with_a_class_never_predicted():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 must not warn
        scores = per_class(MATRIX)
    assert list(scores) == list(LABELS)
    assert scores["entailment"]["precision"] == pytest.approx(2 / 4)
    assert scores["entailment"]["recall"] == pytest.approx(2 / 3)
    assert scores["entailment"]["f1"] == pytest.approx(4 / 7)
    assert scores["neutral"]["precision"] == pytest.approx(1 / 3)
    assert scores["neutral"]["recall"] == pytest.approx(1 / 2)
    assert scores["neutral"]["f1"] == pytest.approx(2 / 5)
    assert scores["contradiction"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert [s["support"] for s in scores.values()] == [3, 2, 2]


def test_per_class_with_no_support_is_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = per_class(confusion_matrix([0, 0], [0, 1]))
    assert scores["contradiction"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["neutral"]["precision"] == 0.0


def test_report_from_probabilities():
    probs = np.eye(3)[PRED] * 0.6 + 0.1  # argmax is PRED
    result = report(GOLD, probs)
    assert result["accuracy"] == pytest.approx(3 / 7)
    assert result["confusion_matrix"] == MATRIX
    assert result["macro_f1"] == pytest.approx((4 / 7 + 2 / 5 + 0) / 3)
    assert result["n"] == 7


#: Pairs the tiny profile scores per validation split (its eval_size), drawn as it draws them.
TINY_EVAL_PAIRS = 36


@pytest.fixture(scope="module")
def tiny():
    tokenizer = load_tokenizer("tiny")
    model = build_model("tiny", seed=0)
    pairs = stratified_subset(load_mnli("sample").validation_matched, TINY_EVAL_PAIRS, seed=42)
    return model, tokenizer, pairs, encode_pairs(tokenizer, pairs, max_length=64)


def test_predict_rows_are_probabilities(tiny):
    model, tokenizer, _, data = tiny
    probs = predict(model, data, make_collator(tokenizer), batch_size=8)
    assert probs.shape == (len(data), len(LABELS))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


class LengthModel(torch.nn.Module):
    """Logits that depend on each pair's length and first word, so rows are tellable apart."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"num_labels": 3})()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, input_ids, attention_mask):
        length = attention_mask.sum(dim=1).float()
        logits = torch.stack([length / 10, input_ids[:, 1].float() / 100,
                              torch.zeros_like(length)], dim=1) * self.scale
        return type("Output", (), {"logits": logits})()


def test_predict_keeps_dataset_order(tiny):
    _, tokenizer, _, data = tiny
    # batches are length-sorted inside predict; rows must come back in place
    assert not np.array_equal(np.argsort(-data.lengths, kind="stable"), np.arange(len(data)))
    probs = predict(LengthModel(), data, make_collator(tokenizer), batch_size=5)
    for i in range(len(data)):
        ids = data[i]["input_ids"]
        logits = torch.tensor([len(ids) / 10, ids[1] / 100, 0.0])
        assert np.allclose(probs[i], torch.softmax(logits, 0).numpy(), atol=1e-6), i


def test_predict_parts_cover_every_row_once(tiny):
    """Two processes each score every other batch; their sum is the whole prediction."""
    _, tokenizer, _, data = tiny
    collate = make_collator(tokenizer)
    whole = predict(LengthModel(), data, collate, batch_size=5)
    first, second = (predict(LengthModel(), data, collate, batch_size=5, part=(i, 2))
                     for i in range(2))
    assert (first.sum(axis=1) > 0).sum() + (second.sum(axis=1) > 0).sum() == len(data)
    assert not ((first.sum(axis=1) > 0) & (second.sum(axis=1) > 0)).any()
    assert np.array_equal(first + second, whole)


def test_predict_agrees_with_predict_pair(tiny):
    model, tokenizer, pairs, data = tiny
    probs = predict(model, data, make_collator(tokenizer), batch_size=8)
    for i in (0, 7, 20, 35):
        row = pairs.iloc[i]
        one = predict_pair(model, tokenizer, row.premise, row.hypothesis, max_length=64)
        assert np.allclose(probs[i], [one[name] for name in LABELS], atol=1e-6), i


def test_predict_restores_training_mode(tiny):
    model, tokenizer, _, data = tiny
    model.train()
    predict(model, data, make_collator(tokenizer))
    assert model.training
    model.eval()


def test_predict_pair_is_a_distribution_over_labels(tiny):
    model, tokenizer, _, _ = tiny
    probs = predict_pair(model, tokenizer, "A man plays a guitar.", "Someone makes music.")
    assert list(probs) == list(LABELS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_evaluate_reports_on_a_dataset(tiny):
    model, tokenizer, _, data = tiny
    result = evaluate(model, data, make_collator(tokenizer))
    assert result["n"] == len(data) == TINY_EVAL_PAIRS
    assert 0.0 <= result["accuracy"] <= 1.0
    assert sum(map(sum, result["confusion_matrix"])) == TINY_EVAL_PAIRS


def test_cross_entropy_is_ln3_for_thirds_and_small_when_sure_and_right():
    labels = [0, 1, 2, 1]
    assert cross_entropy(labels, np.full((4, 3), 1 / 3)) == pytest.approx(np.log(3))
    sure = np.eye(3)[labels] * 0.98 + 0.01
    assert cross_entropy(labels, sure) == pytest.approx(-np.log(0.99))
    wrong = np.eye(3)[[1, 2, 0, 0]]  # certain and wrong: large, but finite
    assert 20 < cross_entropy(labels, wrong) < 30
    assert report(labels, sure)["loss"] == pytest.approx(-np.log(0.99))
