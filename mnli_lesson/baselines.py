"""What a model could score without reading the premise: the hypothesis-only baseline.

MNLI's crowd-workers left cues in hypotheses ("not", "never" for contradictions), so a model
that reads only the hypothesis beats chance: about 53 % on MNLI (Gururangan et al., 2018). A
bag-of-words naive Bayes measures how much of that a data set carries. Notebook 01 writes the
same function out and runs it; ``tests/test_sample_quality.py`` keeps the two identical and
checks this one against an independent implementation.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pandas as pd

WORD = re.compile(r"[a-z']+")


def hypothesis_only_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Naive Bayes on hypothesis words and word pairs: trained on ``train``, scored on
    ``test`` (both with ``hypothesis`` and integer ``label`` columns)."""
    def features(text: str) -> list[str]:
        words = WORD.findall(text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    counts = [Counter() for _ in range(3)]  # word counts per label
    for text, label in zip(train["hypothesis"], train["label"], strict=True):
        counts[label].update(features(text))
    vocab = len(set().union(*counts))
    totals = [sum(c.values()) for c in counts]
    priors = [math.log((train["label"] == k).mean() or 1e-9) for k in range(3)]
    right = 0
    for text, label in zip(test["hypothesis"], test["label"], strict=True):
        # log P(label) + sum of log P(word | label), with add-one smoothing
        scores = [priors[k] + sum(math.log((counts[k][f] + 1) / (totals[k] + vocab))
                                  for f in features(text)) for k in range(3)]
        right += scores.index(max(scores)) == label
    return right / max(len(test), 1)
