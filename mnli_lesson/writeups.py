"""The assignment's questions and answers, rendered from facts by Markdown templates.

The facts come from :mod:`mnli_lesson.facts`, every comparative word from a verdict of
:mod:`mnli_lesson.wording`, and the text from ``templates/*.md.j2``, which a teacher can edit
without touching Python. Nothing here holds a result: when a run changes, the text follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from mnli_lesson import wording
from mnli_lesson.data import KAGGLE_DATASET, LABEL2ID, LABELS
from mnli_lesson.facts import (
    DISTILBERT_PUBLISHED,
    EXAMPLE_PAIRS,
    FULL_TRAIN_PAIRS,
    LABEL_CHECK_PAIR,
    LOSS_SMOOTHING,
    MATCHED_GENRES,
    MISMATCHED_GENRES,
    MNLI_PUBLISHED_SIZES,
    NEGATION_PATTERN,
    PUBLISHED,
    PUBLISHED_GAP,
    QUESTIONS,
    REFERENCE_MODEL,
    AccuracyFacts,
    CheckpointFacts,
    Crossover,
    DataFacts,
    LabelCheck,
    LossFacts,
    ModelFacts,
    PairFacts,
    SweepFacts,
    accuracy_facts,
    checkpoint_facts,
    data_facts,
    find_label_check_pair,
    loss_crossover,
    loss_facts,
    model_facts,
    negation_shares,
    pair_facts,
    source_kind,
    sweep_facts,
)
from mnli_lesson.wording import CHANCE_LOSS, CHANCE_MARGIN

if TYPE_CHECKING:
    from mnli_lesson.config import LessonConfig
    from mnli_lesson.results import ComparisonResult

TEMPLATES = Path(__file__).with_name("templates")

# --------------------------------------------------------------------------- filters


def pct(share: float | None, digits: int = 1) -> str:
    """A share as a percentage (``0.712`` -> ``71.2%``; ``n/a`` when absent)."""
    return "n/a" if share is None else f"{100 * share:.{digits}f}%"


def pct_sig(share: float) -> str:
    """A percentage to two significant digits (0.0051%, 2.5%), for shares of any size."""
    return f"{100 * share:.2g}%"


def points(diff: float | None) -> str:
    """A difference of two accuracies in percentage points, signed (``+36.0``)."""
    return "n/a" if diff is None else f"{100 * diff:+.1f}"


def pp(diff: float | None) -> str:
    """A share in percentage points, unsigned (``7.1``), for margins and stated gaps."""
    return "n/a" if diff is None else f"{100 * diff:.1f}"


def thousands(n: int | float | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def dec(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def vs_ln3(loss: float | None) -> str:
    """A loss's signed distance from ln 3 (``+0.003``)."""
    return "n/a" if loss is None else f"{loss - CHANCE_LOSS:+.3f}"


def g(x: float) -> str:
    return f"{x:g}"


def shape(dims: Sequence[int]) -> str:
    """A tensor shape as PyTorch prints it in a list: ``[4, 31]``."""
    return "[" + ", ".join(str(int(d)) for d in dims) + "]"


def codes(names: Iterable[str], sep: str = ", ") -> str:
    return sep.join(f"`{n}`" for n in names)


def times(ratio: float | None) -> str:
    """A ratio as ``113×``, ``6×`` or ``0.5×`` (two significant digits below ten)."""
    if ratio is None:
        return "n/a"
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def trace(per_epoch: Sequence[tuple[int, float]]) -> str:
    """Accuracy per epoch as ``33.3% → 61.2% → …``."""
    return " → ".join(pct(acc) for _, acc in per_epoch) or "not scored per epoch"


FILTERS = {f.__name__: f for f in (pct, pct_sig, points, pp, thousands, dec, vs_ln3, g, shape,
                                   codes, times, trace)}
GLOBALS: dict[str, Any] = {
    "QUESTIONS": QUESTIONS, "LABELS": LABELS, "LABEL_IDS": LABEL2ID,
    "LABEL_CHECK_PAIR": LABEL_CHECK_PAIR, "KAGGLE_DATASET": KAGGLE_DATASET,
    "REFERENCE_MODEL": REFERENCE_MODEL, "MNLI_PUBLISHED_SIZES": MNLI_PUBLISHED_SIZES,
    "FULL_TRAIN_PAIRS": FULL_TRAIN_PAIRS, "DISTILBERT_PUBLISHED": DISTILBERT_PUBLISHED,
    "MATCHED_GENRES": MATCHED_GENRES, "MISMATCHED_GENRES": MISMATCHED_GENRES,
    "PUBLISHED": PUBLISHED, "PUBLISHED_GAP": PUBLISHED_GAP, "CHANCE_LOSS": CHANCE_LOSS,
    "CHANCE_MARGIN": CHANCE_MARGIN,
}


@cache
def environment() -> jinja2.Environment:
    """The templates' environment: a missing variable is an error, never an empty string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


_KEEP_LINES = ("|", "- ", "* ", "```", "#")


def tidy(text: str) -> str:
    """Markdown with one line per paragraph: templates wrap their lines freely, and a wrapped
    line that began with "1." or "+ " would otherwise turn into a list."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        joined = "\n".join(lines) if lines[0].startswith(_KEEP_LINES) else " ".join(lines)
        paragraphs.append(re.sub(r"(?<=\S) {2,}", " ", joined))
    return "\n\n".join(paragraphs) + "\n"


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context`` and tidy the Markdown."""
    return tidy(environment().get_template(template).render(**context))


# --------------------------------------------------------------------------- Q1 and Q2


def question_block(key: str) -> str:
    """The question as Markdown: Korean first, then the English translation as a quote."""
    return str(environment().get_template("_macros.md.j2").module.question(key))


def label_evidence(shares: dict[str, float | None], check: LabelCheck, source: str) -> str:
    """Markdown: what the data says about the label order, from ``negation_shares`` and
    ``find_label_check_pair`` of the data loaded from ``source``."""
    return render("label_evidence.md.j2", shares=shares, check=check,
                  top=wording.top_negated(shares), source_kind=source_kind(str(source)))


def q1_answer(facts: DataFacts) -> str:
    """Markdown answer to Q1 (task, data, lengths, model) from ``data_facts``."""
    evidence = label_evidence(facts.negation_share, facts.label_check, facts.source)
    return render("q1.md.j2", f=facts, evidence=evidence.strip())


def q2_answer(facts: ModelFacts) -> str:
    """Markdown answer to Q2 (design, inputs, outputs) from ``model_facts``."""
    return render("q2.md.j2", f=facts, uniform=wording.uniform_verdict(facts.loss))


def model_caveats(model: str, data: str, profile: str) -> str:
    """What a reader must know about the checkpoint and data that produced the numbers."""
    return render("model_caveats.md.j2", checkpoint=checkpoint_facts(model),
                  data_kind=source_kind(str(data)), profile=profile).strip()


# --------------------------------------------------------------------------- Q3 and after


def _provenance(comparison: ComparisonResult) -> dict[str, Any]:
    """What model_caveats.md.j2 takes, for a comparison's model, data and profile."""
    return dict(checkpoint=checkpoint_facts(comparison.model),
                data_kind=source_kind(comparison.data), profile=comparison.profile)


def _pretrained_vs_scratch(comparison: ComparisonResult, sweep: ComparisonResult | None,
                           cfg: LessonConfig, sweep_note: str | None) -> dict[str, Any]:
    """What q3.md.j2 and summary.md.j2 share: both runs' facts and verdicts, the sweep's."""
    p = pair_facts(comparison, "pretrained", "scratch")
    v = wording.judge_pair(p)
    sf = sweep_facts(sweep) if sweep is not None and sweep.runs else None
    elsewhere = sf is not None and (sf.profile, sf.model, sf.data) != (p.profile, p.model,
                                                                       p.data)
    return dict(**_provenance(comparison), p=p, v=v, sweep=sf,
                sv=wording.judge_sweep(sf) if sf else None,
                sweep_note=sweep_note, sweep_elsewhere=elsewhere,
                sweep_sizes=tuple(cfg.sweep_sizes), sweep_min_steps=cfg.sweep_min_steps,
                pub=wording.versus_published(v.matched, PUBLISHED_GAP),
                share_of_full=p.recipe_a.train_size / FULL_TRAIN_PAIRS)


def q3_answer(comparison: ComparisonResult, sweep: ComparisonResult | None,
              cfg: LessonConfig, *, sweep_note: str | None = None) -> str:
    """Markdown answer to Q3 from the ``pretrained-vs-scratch`` comparison and, when given,
    the ``data-efficiency`` sweep (``sweep_note`` says where a loaded sweep came from)."""
    return render("q3.md.j2", **_pretrained_vs_scratch(comparison, sweep, cfg, sweep_note))


def frozen_explanation(comparison: ComparisonResult) -> str:
    """Markdown for notebook 03 from the ``finetune-vs-frozen`` run: what freezing cost or
    gained in accuracy, what it saved in time, with that run's numbers."""
    p = pair_facts(comparison, "full", "frozen")
    rf, rz = p.recipe_a, p.recipe_b
    time_share = None
    if rf.mean_epoch_time and rz.mean_epoch_time is not None:
        time_share = rz.mean_epoch_time / rf.mean_epoch_time
    return render("frozen.md.j2", **_provenance(comparison), p=p, v=wording.judge_pair(p),
                  ratio=rf.trainable_params / max(rz.trainable_params, 1),
                  trained_share=rz.trainable_params / max(rz.total_params, 1),
                  time_share=time_share, lr_ratio=rz.lr / rf.lr,
                  head_lr=wording.larger(rz.lr, rf.lr))


def summary_answer(q1_facts: DataFacts, q2_facts: ModelFacts, comparison: ComparisonResult,
                   sweep: ComparisonResult | None, cfg: LessonConfig, *,
                   sweep_note: str | None = None) -> str:
    """Markdown closing summary of Q1-Q3: each question (Korean, then English), a short answer
    and a one-line Korean summary, from ``data_facts``, ``model_facts``, the
    ``pretrained-vs-scratch`` comparison and the sweep when there is one."""
    return render("summary.md.j2", d=q1_facts, mf=q2_facts,
                  **_pretrained_vs_scratch(comparison, sweep, cfg, sweep_note))


__all__ = [
    "CHANCE_MARGIN", "EXAMPLE_PAIRS", "LABEL_CHECK_PAIR", "LOSS_SMOOTHING", "NEGATION_PATTERN",
    "PUBLISHED", "QUESTIONS", "AccuracyFacts", "CheckpointFacts", "Crossover", "DataFacts",
    "LabelCheck", "LossFacts", "ModelFacts", "PairFacts", "SweepFacts", "accuracy_facts",
    "data_facts", "environment", "find_label_check_pair", "frozen_explanation",
    "label_evidence", "loss_crossover", "loss_facts", "model_caveats", "model_facts",
    "negation_shares", "q1_answer", "q2_answer", "q3_answer", "question_block", "render",
    "summary_answer", "sweep_facts",
]
