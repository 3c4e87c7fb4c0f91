"""Real-data checks of the label map on ../shared/data/mnli-sample (real MultiNLI pairs).

The label map is checked against the data, not against documentation: MNLI's annotation
artefacts (Gururangan et al., 2018) give each label a signature. Contradiction hypotheses are
full of negation words, and neutral ones are the longest (annotators add unstated detail).
Swapping 1 and 2, as the original notebook did, would move both signatures.
"""

from __future__ import annotations

import pytest

from mnli_lesson.core import LABELS
from mnli_lesson.data import label_counts, load_mnli

pytestmark = pytest.mark.realdata

ENTAILMENT, NEUTRAL, CONTRADICTION = range(3)
NEGATION = r"\b(?:not|no|never|nobody|nothing)\b|n't"


@pytest.fixture(scope="module")
def real(shared_paths):
    return load_mnli(shared_paths["data"])


def test_sizes(real):
    assert real.sizes() == {"train": 20_000, "validation_matched": 1000,
                            "validation_mismatched": 1000}


def test_train_balance(real):
    assert label_counts(real.train) == dict(zip(LABELS, (6698, 6645, 6657), strict=True))


def test_nothing_dropped(real):
    assert all(counts == {"empty_pair": 0, "no_gold_label": 0}
               for counts in real.dropped.values())


def _negation_share(df) -> dict[int, float]:
    has = df["hypothesis"].str.lower().str.contains(NEGATION, regex=True)
    return has.groupby(df["label"]).mean().to_dict()


def _mean_words(df) -> dict[int, float]:
    return df["hypothesis"].str.split().str.len().groupby(df["label"]).mean().to_dict()


def test_negation_marks_contradiction(real):
    share = _negation_share(real.train)
    assert share[CONTRADICTION] > 2 * share[ENTAILMENT]
    assert share[CONTRADICTION] > 2 * share[NEUTRAL]


def test_negation_marks_contradiction_in_validation(real):
    share = _negation_share(real.validation_matched)
    assert max(share, key=share.get) == CONTRADICTION


def test_neutral_hypotheses_are_longest(real):
    words = _mean_words(real.train)
    assert max(words, key=words.get) == NEUTRAL
    assert words[NEUTRAL] > words[ENTAILMENT] + 0.3
    assert words[NEUTRAL] > words[CONTRADICTION] + 0.3


def test_train_and_validation_share_no_pair(real):
    train_pairs = set(zip(real.train["premise"], real.train["hypothesis"], strict=True))
    for name in ("validation_matched", "validation_mismatched"):
        df = real.splits[name]
        shared = train_pairs & set(zip(df["premise"], df["hypothesis"], strict=True))
        assert not shared, f"{name} repeats {len(shared)} training pairs"
