"""The hand-written diagnostic set: complete, balanced, new, and hard to game from hypotheses.

``mnli_lesson/diagnostic_set/pairs.csv`` holds 150 pairs written for this project, 30 in each
of five categories (negation, lexical overlap, quantifiers, word order, antonyms), 10 per label
in each. A model that reads only the hypothesis must stay near chance on it, or the set would
reward the cues it is meant to expose: at most 1/3 + 0.10, whether the naive Bayes baseline is
trained on the built-in sample or cross-validated within the set itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mnli_lesson
from mnli_lesson.baselines import hypothesis_only_accuracy
from mnli_lesson.core import LABELS
from mnli_lesson.data import load_mnli

CATEGORIES = {"negation", "lexical_overlap", "quantifiers", "word_order", "antonyms"}
COLUMNS = ["id", "category", "premise", "hypothesis", "label", "note"]
PER_LABEL = 10  # pairs of each label in each category
CEILING = 1 / 3 + 0.10  # chance plus ten points
FOLDS = 5


def read_pairs() -> pd.DataFrame:
    """The set as written (label names), every cell a string."""
    path = Path(mnli_lesson.__file__).parent / "diagnostic_set" / "pairs.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def with_label_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``label`` as the integer id the baseline expects (index into LABELS)."""
    return df.assign(label=df["label"].map(LABELS.index))


def cross_validated_accuracy(df: pd.DataFrame, seed: int = 0) -> float:
    """Mean hypothesis-only accuracy over 5 folds: rows shuffled with a fixed seed, fold =
    position modulo 5."""
    shuffled = df.iloc[np.random.RandomState(seed).permutation(len(df))].reset_index(drop=True)
    fold = np.arange(len(shuffled)) % FOLDS
    return float(np.mean([hypothesis_only_accuracy(shuffled[fold != k], shuffled[fold == k])
                          for k in range(FOLDS)]))


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return read_pairs()


def test_set_is_complete_and_balanced(pairs):
    assert list(pairs.columns) == COLUMNS
    assert len(pairs) >= 150
    assert set(pairs["category"]) == CATEGORIES
    assert set(pairs["label"]) <= set(LABELS), set(pairs["label"]) - set(LABELS)
    counts = pd.crosstab(pairs["category"], pairs["label"])
    print(counts)
    assert list(counts.columns) == sorted(LABELS)
    assert (counts == PER_LABEL).all().all(), counts
    assert pairs["id"].is_unique, pairs["id"][pairs["id"].duplicated()].tolist()
    blank = pairs.apply(lambda column: column.str.strip() == "")
    assert not blank.any().any(), pairs[blank.any(axis=1)]["id"].tolist()
    twins = pairs.duplicated(["premise", "hypothesis"], keep=False)
    assert not twins.any(), pairs[twins]["id"].tolist()


def test_no_premise_comes_from_the_built_in_sample(pairs):
    sample = load_mnli("sample")
    seen = set().union(*(set(df["premise"].str.strip().str.lower())
                         for df in sample.splits.values()))
    shared = pairs[pairs["premise"].str.strip().str.lower().isin(seen)]
    assert shared.empty, shared["id"].tolist()


def test_hypothesis_only_baseline_stays_near_chance(pairs):
    df = with_label_ids(pairs)
    from_sample = hypothesis_only_accuracy(load_mnli("sample").train, df)
    within_set = cross_validated_accuracy(df)
    print(f"hypothesis-only naive Bayes: trained on the sample {from_sample:.3f}, "
          f"{FOLDS}-fold within the set {within_set:.3f} (ceiling {CEILING:.3f})")
    assert from_sample <= CEILING
    assert within_set <= CEILING


def test_the_cross_validation_catches_a_cue(pairs):
    """The measure is not blind: give each label's hypotheses a word of their own and the
    cross-validated baseline finds it."""
    cue = dict(zip(LABELS, ("certainly", "perhaps", "nope"), strict=True))
    cued = pairs.assign(hypothesis=pairs["hypothesis"] + " " + pairs["label"].map(cue))
    accuracy = cross_validated_accuracy(with_label_ids(cued))
    print(f"with a cue word per label: {accuracy:.3f}")
    assert accuracy > 0.9


# --------------------------------------------------------------------------- the loader


def test_the_package_loads_the_set_with_label_ids():
    from mnli_lesson.diagnostics import CATEGORIES, load_diagnostic_set

    frame = load_diagnostic_set()
    assert len(frame) >= 150 and set(frame["category"]) == set(CATEGORIES)
    assert (frame["label"] == frame["label_name"].map(LABELS.index)).all()


def test_a_damaged_set_is_refused_in_one_line(tmp_path):
    from mnli_lesson.diagnostics import load_diagnostic_set
    from mnli_lesson.errors import LessonError

    bad = tmp_path / "pairs.csv"
    bad.write_text("id,category,premise,hypothesis,label,note\n"
                   "x-1,negation,A,B,maybe,?\n", encoding="utf-8")
    with pytest.raises(LessonError, match="unknown labels \\['maybe'\\]"):
        load_diagnostic_set(bad)


def test_compare_by_category_says_ahead_level_or_chance_from_the_numbers():
    from mnli_lesson.diagnostics import compare_by_category, load_diagnostic_set

    frame = load_diagnostic_set()
    gold = frame["label_name"]
    neutral = pd.Series("neutral", index=frame.index)  # every pair called neutral: chance
    table = compare_by_category(frame, gold, neutral, ("right", "neutral"))
    assert (table["verdict"] == "right ahead").all()
    assert table.loc["all", "gap (points)"] == pytest.approx(100 * 2 / 3)
    assert (compare_by_category(frame, gold, gold, ("a", "b"))["verdict"]
            == "level within noise").all()
    assert (compare_by_category(frame, neutral, neutral, ("a", "b"))["verdict"]
            == "both near chance").all()


def test_predict_labels_names_a_label_for_every_pair():
    from mnli_lesson.diagnostics import load_diagnostic_set, predict_labels
    from mnli_lesson.models import build_model, load_tokenizer

    frame = load_diagnostic_set().head(12)
    predicted = predict_labels(build_model("tiny", seed=0), load_tokenizer("tiny"), frame, 96)
    assert list(predicted.index) == list(frame.index) and set(predicted) <= set(LABELS)
