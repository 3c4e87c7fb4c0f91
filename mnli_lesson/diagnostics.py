"""The project's diagnostic set: 150 pairs written by hand in five categories (negation,
lexical overlap, quantifiers, word order, antonyms), 10 per label in each, to see *where* a
model succeeds or fails (``diagnostic_set/REVIEW.md`` says how they were written and checked).

Thirty pairs per category is a small sample: one category's accuracy carries a standard error
of about 9 points, so ``compare_by_category`` calls a difference real only beyond two standard
errors of the paired difference, and two models "both near chance" when neither is two
standard errors away from 1/3 (above or below).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mnli_lesson.core import LABEL2ID, encode_pairs, forward_inputs, make_collator, predict
from mnli_lesson.errors import LessonError

PAIRS = Path(__file__).resolve().parent / "diagnostic_set" / "pairs.csv"
CATEGORIES = ("negation", "lexical_overlap", "quantifiers", "word_order", "antonyms")


def load_diagnostic_set(path: str | Path = PAIRS) -> pd.DataFrame:
    """The pairs with ``category``, ``premise``, ``hypothesis``, ``label`` (an id, as in the
    training data), ``label_name`` and ``note``."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LessonError(f"{path} cannot be read ({type(err).__name__}): reinstall the "
                          "package or restore the file") from None
    missing = {"id", "category", "premise", "hypothesis", "label", "note"} - set(frame.columns)
    unknown = set(frame.get("label", ())) - set(LABEL2ID)
    odd = set(frame.get("category", ())) - set(CATEGORIES)
    if missing or unknown or odd:
        raise LessonError(f"{path} is not the diagnostic set (missing columns "
                          f"{sorted(missing)}, unknown labels {sorted(unknown)}, unknown "
                          f"categories {sorted(odd)}): restore it")
    return frame.rename(columns={"label": "label_name"}).assign(
        label=lambda f: f["label_name"].map(LABEL2ID).astype(int))


def predict_labels(model, tokenizer, frame: pd.DataFrame, max_length: int,
                   batch_size: int = 64) -> pd.Series:
    """The label name ``model`` predicts for each pair of ``frame``."""
    encoded = encode_pairs(tokenizer, frame, max_length).restrict_to(forward_inputs(model))
    probs = predict(model, encoded, make_collator(tokenizer), batch_size)
    names = list(model.config.id2label[i] for i in range(probs.shape[1]))
    return pd.Series([names[i] for i in probs.argmax(axis=1)], index=frame.index)


def compare_by_category(frame: pd.DataFrame, a: pd.Series, b: pd.Series,
                        names: tuple[str, str]) -> pd.DataFrame:
    """Per category (and overall): both models' accuracies, the gap ``a - b`` in points, its
    margin (two standard errors of the paired per-pair difference) and a verdict from them."""
    rows = {}
    groups = [*((c, frame["category"] == c) for c in CATEGORIES), ("all", frame["label"] >= 0)]
    for category, rows_in in groups:
        right_a = (a[rows_in] == frame.loc[rows_in, "label_name"]).astype(float)
        right_b = (b[rows_in] == frame.loc[rows_in, "label_name"]).astype(float)
        n = int(rows_in.sum())
        if n == 0:
            continue
        diff = right_a - right_b  # per pair: +1, 0 or -1
        margin = 2 * diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
        chance_margin = 2 * math.sqrt((1 / 3) * (2 / 3) / n)
        gap = diff.mean()
        if abs(gap) > margin:
            verdict = f"{names[0] if gap > 0 else names[1]} ahead"
        elif all(abs(acc - 1 / 3) <= chance_margin for acc in (right_a.mean(), right_b.mean())):
            verdict = "both near chance"
        else:
            verdict = "level within noise"
        rows[category] = {names[0]: right_a.mean(), names[1]: right_b.mean(),
                          "gap (points)": 100 * gap, "± (points)": 100 * margin,
                          "pairs": n, "verdict": verdict}
    return pd.DataFrame(rows).T.astype({names[0]: float, names[1]: float, "pairs": int,
                                        "gap (points)": float, "± (points)": float})
