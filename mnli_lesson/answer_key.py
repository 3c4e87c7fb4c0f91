"""The answer key: what each exercise's answer should be, computed from the lesson's objects.

The grader computes these in its own process, from a ``Context`` built from the configuration
and from comparisons it ran itself, never from objects in a student's kernel; it keeps this
module out of the student's box (``grading``), so no answer cell can call it while graded.
In a student's own kernel ``checks.check`` uses it for feedback while they work.

Each entry is a small function of the context; the tolerances are half a step of the
quantity (half a pair, half a count) or the rounding a student may apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mnli_lesson import core
from mnli_lesson.core import LABELS
from mnli_lesson.data import label_counts
from mnli_lesson.exercises import TRIALS, Context, Want, plain
from mnli_lesson.writeups.facts import negation_shares


def _majority(ctx: Context) -> str:
    counts = label_counts(ctx.data.train)
    return max(LABELS, key=lambda name: counts[name])  # the first of equals, as idxmax


def _baseline_mismatched(ctx: Context) -> Want:
    n = len(ctx.data.validation_mismatched)
    share = label_counts(ctx.data.validation_mismatched)[_majority(ctx)] / n
    return Want("number", share, tol=max(0.5 / n, 0.0005),
                hint="a share of validation_mismatched's pairs")


def _truncated(ctx: Context) -> Want:
    lengths = ctx.lengths
    return Want("number", float((lengths > 48).mean()), tol=0.5 / len(lengths),
                hint="the share of `lengths` above 48 tokens")


def _most_negated(ctx: Context) -> Want:
    shares = negation_shares(ctx.data.train)
    return Want("choice", max(shares, key=lambda name: shares[name] or 0), choices=LABELS,
                hint="read the table of negation shares in section 5")


def _n_longest(ctx: Context) -> Want:
    lengths = ctx.lengths
    return Want("number", int((lengths == lengths.max()).sum()), tol=0.5,
                hint="a count of pairs: compare `lengths` with its maximum")


def _uniform_loss(ctx: Context) -> Want:
    return Want("number", math.log(len(LABELS)), tol=1e-3,
                hint="the cross-entropy of probability 1/3 on the gold label")


def _head_parameters(ctx: Context) -> Want:
    model = ctx.model
    head = (sum(p.numel() for p in model.parameters())
            - sum(p.numel() for p in model.base_model.parameters()))
    return Want("number", head, tol=0.5,
                hint="count the parameters whose names do not start with "
                     "model.base_model_prefix")


def _padding(ctx: Context) -> Want:
    picks = ctx.picks
    return Want("number", len(picks) * ctx.cfg.max_length - int(picks["n_tokens"].sum()),
                tol=0.5, hint="positions in a [4, max_length] batch minus the real tokens")


def _peak_step(ctx: Context) -> Want:
    full = ctx.comparison("finetune-vs-frozen")["full"]
    top = max(s.lr for s in full.history)
    return Want("number", next(s.step for s in full.history if s.lr == top), tol=0.5,
                hint="the step whose recorded lr is the largest")


def _most_confused(ctx: Context) -> Want:
    cm = ctx.comparison("finetune-vs-frozen")["full"].scores("matched").confusion_matrix
    worst = max(cm[g][p] for g in range(3) for p in range(3) if g != p)
    ties = [[LABELS[g], LABELS[p]] for g in range(3) for p in range(3)
            if g != p and cm[g][p] == worst]  # any of equally frequent mistakes is right
    return Want("choice", ties[0], accepted=tuple(map(tuple, ties[1:])),
                hint="find the largest count off the diagonal; rows are the gold labels")


def _update_ratio(ctx: Context) -> Want:
    comparison = ctx.comparison("finetune-vs-frozen")
    full, frozen = comparison["full"], comparison["frozen"]
    return Want("number", full.trainable_params / frozen.trainable_params, tol=0.5,
                hint="trainable parameters of one run divided by the other's")


def _gap_mismatched(ctx: Context) -> Want:
    comparison = ctx.comparison("pretrained-vs-scratch")
    pre, scr = comparison["pretrained"], comparison["scratch"]
    n = pre.scores("mismatched").n
    return Want("number", 100 * (pre.accuracy("mismatched") - scr.accuracy("mismatched")),
                tol=max(50 / n, 0.05),
                hint="the difference of the two accuracies, in percentage points")


def _scratch_last_loss(ctx: Context) -> Want:
    scr = ctx.comparison("pretrained-vs-scratch")["scratch"]
    last = [s.loss for s in scr.history if s.epoch > scr.epochs_planned - 1]
    return Want("number", sum(last) / len(last), tol=5e-4,
                hint="the mean of the per-step losses of the last epoch")


def _behaviour(exercise: str, reference: Callable, tol: float, hint: str):
    def expect(ctx: Context) -> Want:
        return Want("behaviour", plain(TRIALS[exercise](reference, ctx)), tol=tol, hint=hint)
    return expect


def _lesson_encoding(tokenizer, premise, hypothesis, max_length):
    import pandas as pd

    frame = pd.DataFrame({"premise": [premise], "hypothesis": [hypothesis], "label": [0]})
    return core.encode_pairs(tokenizer, frame, max_length)[0]


#: Exercise id (the answer cell's grade_id) -> its expected answer.
KEY: dict[str, Callable[[Context], Want]] = {
    "ex01-1": _baseline_mismatched,
    "ex01-2": _truncated,
    "ex01-3": _most_negated,
    "ex01-4": _n_longest,
    "ex02-encode": _behaviour("ex02-encode", _lesson_encoding, 0,
                              "premise first, truncation to max_length, no padding"),
    "ex02-freeze": _behaviour("ex02-freeze", core.freeze_encoder, 0,
                              "only the parameters outside model.base_model should still "
                              "train; and return the model"),
    "ex02-1": _uniform_loss,
    "ex02-2": _head_parameters,
    "ex02-3": _padding,
    "ex03-step": _behaviour("ex03-step", core.training_step, 1e-4,
                            "check the order: forward, backward, clip, optimizer, scheduler, "
                            "zero"),
    "ex03-accuracy": _behaviour("ex03-accuracy",
                                lambda logits, labels: core.accuracy(labels, logits.argmax(-1)),
                                1e-5, "compare argmax over the last dimension with the labels; "
                                "give a share"),
    "ex03-pool": _behaviour("ex03-pool", core.mean_pool, 1e-5,
                            "weight each token by its mask, and divide by the number of real "
                            "tokens"),
    "ex03-1": _peak_step,
    "ex03-2": _most_confused,
    "ex03-3": _update_ratio,
    "ex04-1": _gap_mismatched,
    "ex04-2": _scratch_last_loss,
}


class LessonKey:
    """The lesson's key for one configuration: ``expect(exercise)`` -> ``Want`` (or None for
    an exercise it does not know). Comparisons are read from (or run into) ``results``."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._wants: dict[str, Want] = {}

    def expect(self, exercise: str) -> Want | None:
        if exercise not in KEY:
            return None
        if exercise not in self._wants:
            self._wants[exercise] = KEY[exercise](self.ctx)
        return self._wants[exercise]
