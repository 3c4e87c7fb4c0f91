"""The assignment's answers, off the student's path: ``facts`` and ``run_facts`` read data, a
model and typed results (never training), ``wording`` turns their numbers into comparative
words, and ``templates/*.md.j2``, rendered by ``render``, hold the prose a teacher can edit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnli_lesson.label_order import MIN_LEAD, NegationEvidence, negation_evidence
from mnli_lesson.writeups import facts, run_facts, wording
from mnli_lesson.writeups.facts import (
    EXAMPLE_PAIRS,
    LABEL_CHECK_PAIR,
    QUESTIONS,
    DataFacts,
    ModelFacts,
    data_facts,
    find_label_check_pair,
    model_facts,
    negation_shares,
)
from mnli_lesson.writeups.render import question_block, render
from mnli_lesson.writeups.run_facts import CHANCE_MARGIN, loss_crossover, loss_facts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mnli_lesson.config import LessonConfig
    from mnli_lesson.results import ComparisonResult, RunResult

__all__ = [
    "CHANCE_MARGIN", "EXAMPLE_PAIRS", "LABEL_CHECK_PAIR", "QUESTIONS", "DataFacts", "ModelFacts",
    "data_facts", "find_label_check_pair", "frozen_explanation", "label_evidence",
    "loss_crossover", "loss_facts", "model_facts", "negation_evidence", "negation_shares",
    "q1_answer", "q2_answer", "q3_answer", "question_block", "summary_answer",
    "validation_summary",
]


def label_evidence(negation: NegationEvidence, check: facts.LabelCheck, source: str) -> str:
    """What ``negation_evidence`` and ``find_label_check_pair`` say about the label order."""
    return render("label_evidence.md.j2", negation=negation, check=check, min_lead=MIN_LEAD,
                  source_kind=facts.source_kind(str(source)))


@dataclass(frozen=True)
class RunValidation:
    """One run's row of ``validation.md.j2``: its label, planned epochs and facts."""

    label: str
    epochs: int
    facts: run_facts.ValidationFacts


def _validation_rows(runs: Sequence[RunResult]) -> list[RunValidation]:
    return [RunValidation(r.label, r.epochs_planned, run_facts.validation_facts(r))
            for r in runs]


def validation_summary(runs: Sequence[RunResult]) -> str:
    """Each run's validation loss per epoch, and whether and where it over-fitted."""
    return render("validation.md.j2", rows=_validation_rows(runs), brief=False)


def q1_answer(data: DataFacts) -> str:
    return render("q1.md.j2", f=data)


def q2_answer(model: ModelFacts) -> str:
    return render("q2.md.j2", f=model, uniform=wording.uniform_verdict(model.loss))


def _caveats(model: str, data: str, profile: str) -> dict[str, Any]:
    return dict(checkpoint=facts.checkpoint_facts(model),
                data_kind=facts.source_kind(str(data)), profile=profile)


def _pretrained_vs_scratch(comparison: ComparisonResult, sweep: ComparisonResult | None,
                           cfg: LessonConfig, sweep_note: str | None) -> dict[str, Any]:
    """What q3.md.j2 and summary.md.j2 take: both runs' facts and verdicts, the sweep's."""
    p = run_facts.pair_facts(comparison, "pretrained", "scratch")
    sf = run_facts.sweep_facts(sweep) if sweep is not None and sweep.runs else None
    elsewhere = sf is not None and (sf.profile, sf.model, sf.data) != (p.profile, p.model,
                                                                       p.data)
    rows = _validation_rows([comparison["pretrained"], comparison["scratch"]])
    return dict(**_caveats(p.model, p.data, p.profile), p=p, v=wording.judge_pair(p),
                rows=rows, brief=True,
                validation_recorded=any(r.facts.trend != "none" for r in rows),
                sweep=sf, sv=wording.judge_sweep(sf) if sf else None, sweep_note=sweep_note,
                sweep_elsewhere=elsewhere, sweep_sizes=cfg.sweep_sizes)


def q3_answer(comparison: ComparisonResult, sweep: ComparisonResult | None,
              cfg: LessonConfig, *, sweep_note: str | None = None) -> str:
    """Q3 from the ``pretrained-vs-scratch`` comparison and, when given, the
    ``data-efficiency`` sweep (``sweep_note``: where a loaded sweep came from)."""
    return render("q3.md.j2", **_pretrained_vs_scratch(comparison, sweep, cfg, sweep_note))


def summary_answer(q1_facts: DataFacts, q2_facts: ModelFacts, comparison: ComparisonResult,
                   sweep: ComparisonResult | None, cfg: LessonConfig, *,
                   sweep_note: str | None = None) -> str:
    """Notebook 04's closing summary of Q1-Q3, each with its one-line Korean summary."""
    return render("summary.md.j2", d=q1_facts, mf=q2_facts,
                  **_pretrained_vs_scratch(comparison, sweep, cfg, sweep_note))


def frozen_explanation(comparison: ComparisonResult) -> str:
    """Notebook 03, from the ``finetune-vs-frozen`` comparison: what freezing cost or gained
    in accuracy and what it saved in time."""
    p = run_facts.pair_facts(comparison, "full", "frozen")
    full, frozen = p.run_a, p.run_b
    time_share = None
    if full.mean_epoch_time and frozen.mean_epoch_time is not None:
        time_share = frozen.mean_epoch_time / full.mean_epoch_time
    return render("frozen.md.j2", **_caveats(p.model, p.data, p.profile), p=p,
                  v=wording.judge_pair(p), time_share=time_share,
                  ratio=full.trainable_params / max(frozen.trainable_params, 1),
                  trained_share=frozen.trainable_params / max(frozen.total_params, 1))
