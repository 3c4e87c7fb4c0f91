"""Is 0 entailment, 1 neutral, 2 contradiction? Two checks a data file can answer.

A permuted export (contradiction = 0) trains and scores without a sign, so the loader asks the
data itself: a column of label words beside the numbers (``gold_label``, ``label_text``...),
and, without one, where the negations are. MNLI's crowd-workers often wrote a contradiction
by negating the premise (Gururangan et al., 2018), so on real MNLI the contradiction label has
by far the most hypotheses with a negation word.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mnli_lesson.core import LABEL2ID, LABELS
from mnli_lesson.csv_files import COLUMNS, shown_name
from mnli_lesson.errors import LessonError

#: Negation cues in a hypothesis (Gururangan et al., 2018): whole words, plus the "n't" ending.
NEGATION_PATTERN = (r"\b(?:no|not|never|nobody|nothing|none|nowhere|neither|nor|cannot)\b"
                    r"|n['\u2019]t\b")
#: How many standard errors the most negated label must lead the next one by to count. Measured
#: on the shared 20,000 real pairs, 200 seeded stratified subsets per size: with the labels
#: shuffled (no order to find) the lead never passed 2.8 (216 to 20,000 pairs); with MNLI's
#: own labels contradiction always led, by at least 7.0 on 2,000 pairs (median 4.4 on 500,
#: 2.8 on 216: small sets rarely decide).
MIN_LEAD = 4.0
#: Set to 1 when a file's order was checked by hand and its negations simply sit elsewhere.
TRUST_VARIABLE = "MNLI_LESSON_TRUST_LABELS"


@dataclass(frozen=True)
class NegationEvidence:
    """Per label the share of hypotheses with a negation word (None: label absent), the most
    negated label, and its lead over the next label in standard errors."""

    shares: dict[str, float | None]
    top: str | None
    lead: float

    @property
    def verdict(self) -> str | None:
        """The label the negations point to, or None when no label leads clearly."""
        return self.top if self.lead >= MIN_LEAD else None


def negation_evidence(df: pd.DataFrame) -> NegationEvidence:
    """Where ``df``'s negations are, and how clearly one label leads."""
    has = df["hypothesis"].astype(str).str.contains(NEGATION_PATTERN, case=False, regex=True)
    grouped = has.groupby(df["label"].to_numpy())
    counts, sizes = grouped.sum(), grouped.size()
    shares = {name: (float(counts[i] / sizes[i]) if i in sizes.index else None)
              for i, name in enumerate(LABELS)}
    ranked = sorted((i for i in sizes.index if i in range(len(LABELS))),
                    key=lambda i: counts[i] / sizes[i], reverse=True)
    if len(ranked) < 2:
        return NegationEvidence(shares, None, 0.0)
    t, r = ranked[0], ranked[1]
    pooled = (counts[t] + counts[r]) / (sizes[t] + sizes[r])
    spread = math.sqrt(pooled * (1 - pooled) * (1 / sizes[t] + 1 / sizes[r]))
    gap = counts[t] / sizes[t] - counts[r] / sizes[r]
    if gap == 0 or spread == 0:
        return NegationEvidence(shares, None, 0.0)
    return NegationEvidence(shares, LABELS[t], float(gap / spread))


def negation_order_error(path: Path, df: pd.DataFrame) -> LessonError | None:
    """One line when ``df``'s negations point clearly to a label other than contradiction."""
    found = negation_evidence(df)
    if found.verdict in (None, "contradiction") or os.environ.get(TRUST_VARIABLE) == "1":
        return None
    number = LABELS.index(found.verdict)
    return LessonError(
        f"{path} looks numbered in another order: {found.shares[found.verdict]:.0%} of the "
        f"hypotheses labelled {number} ({found.verdict}) have a negation word against "
        f"{found.shares['contradiction']:.0%} of those labelled 2 (contradiction), and in MNLI "
        "contradictions have the most; renumber the label column to 0 = entailment, "
        f"1 = neutral, 2 = contradiction (or set {TRUST_VARIABLE}=1 if you checked it)")


def text_column_error(path: Path, df: pd.DataFrame) -> LessonError | None:
    """One line when the labels of ``df`` (as read_checked returns it) disagree with a column
    of label words in the same file about which number means what; else None.

    Only the most common word per number counts: annotator columns (MNLI's label1-label5)
    disagree with the gold label on some pairs by design.
    """
    labels = df["label"]
    numbered = labels.isin((0, 1, 2))  # words in "label" pass too: they agree with themselves
    unset = ("", "-")  # MNLI writes "-" where annotators reached no gold label
    for column in df.columns:
        if column in COLUMNS:
            continue
        first = df[column].head(1000).str.strip().str.lower()
        if not first[~first.isin(unset)].isin(LABEL2ID).all():  # genre, ids: skipped quickly
            continue
        words = df[column].str.strip().str.lower()
        if not words[~words.isin(unset)].isin(LABEL2ID).all():
            continue
        both = numbered & words.isin(LABEL2ID)
        if not both.any():
            continue
        table = pd.crosstab(labels[both], words[both])
        # Wrong only where another word is strictly more common than the lesson's own.
        wrong = [(int(number), str(counts.idxmax()), int(counts.max()), int(counts.sum()))
                 for number, counts in table.iterrows()
                 if counts.max() > counts.get(LABELS[int(number)], 0)]
        if wrong:
            name = shown_name(column)
            seen = ", ".join(f"label {n} is {w!r}" + (f" in column {name} ({k:,} of {t:,} rows)"
                                                      if i == 0 else f" ({k:,} of {t:,})")
                             for i, (n, w, k, t) in enumerate(wrong))
            return LessonError(
                f"{path} numbers its labels in another order than the lesson: {seen}; the "
                "lesson reads 0 = entailment, 1 = neutral, 2 = contradiction: renumber the "
                f"label column in that order (or correct {name} if it is the wrong one)")
    return None
