"""Scores beyond accuracy: per-class precision/recall/F1, the confusion matrix, one pair."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from mnli_lesson.core import LABELS, EncodedPairs, accuracy, forward_inputs, predict


def confusion_matrix(
    labels: Sequence[int], predictions: Sequence[int], n_classes: int = len(LABELS)
) -> list[list[int]]:
    """Counts with rows = gold label, columns = predicted label."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)), 1)
    return matrix.tolist()


def per_class(matrix: Sequence[Sequence[int]]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each label; 0.0 where a ratio would be 0/0."""
    m = np.asarray(matrix, dtype=np.float64)
    out = {}
    for i, name in enumerate(LABELS[: len(m)]):
        tp, predicted, support = m[i, i], m[:, i].sum(), m[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "support": int(support)}
    return out


def report(labels: Sequence[int], probs: np.ndarray) -> dict[str, object]:
    """Accuracy, macro-F1, per-class scores, the confusion matrix and the loss (mean
    cross-entropy of the gold label, what training minimises) for one split."""
    probs = np.asarray(probs)
    predictions = probs.argmax(axis=-1)
    matrix = confusion_matrix(labels, predictions, n_classes=np.asarray(probs).shape[-1])
    classes = per_class(matrix)
    return {
        "accuracy": accuracy(labels, predictions),
        "macro_f1": float(np.mean([c["f1"] for c in classes.values()])),
        "per_class": classes,
        "confusion_matrix": matrix,
        "n": int(len(predictions)),
        "loss": cross_entropy(labels, probs),
    }


def cross_entropy(labels: Sequence[int], probs: np.ndarray) -> float:
    """Mean ``-log p(gold label)``; probabilities are floored at 1e-12, so a confident
    mistake costs about 27.6 instead of infinity (0.0 for no pairs)."""
    labels = np.asarray(labels, dtype=int)
    if not labels.size:
        return 0.0
    gold = np.asarray(probs, dtype=np.float64)[np.arange(labels.size), labels]
    return float(-np.log(np.clip(gold, 1e-12, 1.0)).mean())


def evaluate(
    model: torch.nn.Module, dataset: EncodedPairs, collate: Callable, batch_size: int = 128,
    precision: str = "fp32",
) -> dict[str, object]:
    """``report`` of the model's predictions on ``dataset``."""
    return report(dataset.labels, predict(model, dataset, collate, batch_size, precision))


def predict_pair(model, tokenizer, premise: str, hypothesis: str,
                 max_length: int = 128) -> dict[str, float]:
    """Label probabilities for one pair (what the playground widget shows)."""
    encoded = tokenizer(premise, hypothesis, truncation=True, max_length=max_length,
                        return_tensors="pt")
    accepted = forward_inputs(model)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in encoded.items() if k in accepted}
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        probs = torch.softmax(model(**batch).logits.float(), dim=-1)[0].tolist()
    model.train(was_training)
    return {model.config.id2label[i]: p for i, p in enumerate(probs)}
