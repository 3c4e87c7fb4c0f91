"""What the exercises' checks look at: the lesson's objects, the trials that exercise a
student's function, and the plain value an answer is recorded as.

This module is public: it runs in the student's kernel, where the grader collects each answer
as a plain JSON value (``collect``). The values an answer should have live in
``mnli_lesson.answer_key``, which the grader keeps outside the student's box.

* ``Context(cfg)``: the data, tokenizer, model and comparisons the notebooks build, rebuilt
  from the configuration alone (never from objects in a kernel), each once.
* ``TRIALS``: for each exercise that asks for a function, the inputs it is run on; what it
  returns is the recorded answer, so no code is shown or compared.
* ``plain(value)``: numbers, strings, lists and dicts of those; anything else is refused.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from mnli_lesson import core
from mnli_lesson.config import LessonConfig
from mnli_lesson.core import LABELS

ANSWER_MARK = "MNLI-LESSON-ANSWER "  # the line ``collect`` prints, read by the grader
MAX_ITEMS = 10_000  # an answer is a number, a word or a short list: more is not an answer


@dataclass(frozen=True)
class Want:
    """What an exercise's answer should be: a ``number`` within ``tol``, a ``choice`` (equal
    after ``normalise``; ``accepted`` lists other right ones, e.g. ties), or a function's
    ``behaviour`` (its trial's result within ``tol``). ``hint`` never holds the value."""

    kind: Literal["number", "choice", "behaviour"]
    value: Any
    tol: float | None = None
    hint: str = ""
    choices: tuple = ()
    accepted: tuple = ()


class NotPlain(ValueError):
    """An answer that is not a plain value (a number, a string, or lists/dicts of them)."""


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON: numpy and torch scalars and arrays become numbers and lists."""
    if depth > 4:
        raise NotPlain("nested too deep")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > MAX_ITEMS:
            raise NotPlain("a string too long to be an answer")
        return value
    if type(value) in (int, float):  # exactly: a subclass may redefine == or float()
        if isinstance(value, float) and not math.isfinite(value):
            raise NotPlain(f"{value} is not a finite number")
        return value
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if np.size(array) > MAX_ITEMS or array.dtype.kind not in "biuf":
            raise NotPlain(f"a {type(value).__name__} of {np.size(array)} {array.dtype} items")
        return plain(np.asarray(array).tolist(), depth + 1)
    if type(value) in (list, tuple):
        if len(value) > MAX_ITEMS:
            raise NotPlain(f"a list of {len(value)} items")
        return [plain(v, depth + 1) for v in value]
    if type(value) is dict and all(type(k) in (str, int) for k in value):
        return {str(k): plain(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    raise NotPlain(f"a {type(value).__name__}")


class Context:
    """The lesson's objects for configuration ``cfg``, built from it alone, each once.

    ``results`` is the folder the comparisons' results are read from (and written to, the
    first time): the notebooks' ``cfg.out_dir``, or the grader's own folder.
    """

    def __init__(self, cfg: LessonConfig, results: str | Path | None = None):
        self.cfg = cfg
        self.results = Path(results if results is not None else cfg.out_dir).expanduser()
        self._comparisons: dict[str, Any] = {}

    @cached_property
    def data(self):
        from mnli_lesson.data import load_mnli

        return load_mnli(self.cfg.data)

    @cached_property
    def checkpoint(self) -> str:
        from mnli_lesson.checkpoints import resolve_checkpoint

        return resolve_checkpoint(self.cfg.model)

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.checkpoint)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Token counts of the training pairs notebook 01 measures."""
        from mnli_lesson.data import pair_lengths, stratified_subset

        train = self.data.train
        n_used = min(self.cfg.train_size or len(train), len(train))
        return pair_lengths(self.tokenizer, stratified_subset(train, n_used, seed=self.cfg.seed))

    @cached_property
    def picks(self) -> pd.DataFrame:
        """Notebook 02's four example pairs."""
        return pick_examples(self.data.validation_matched, self.tokenizer, self.cfg)

    @cached_property
    def model(self) -> torch.nn.Module:
        """Notebook 02's classifier: the checkpoint's encoder and a new, seeded head."""
        return core.build_model(self.checkpoint, seed=self.cfg.seed)

    def comparison(self, name: str):
        """Comparison ``name``: read from ``results`` (trained there the first time)."""
        if name not in self._comparisons:
            from mnli_lesson import experiments

            self._comparisons[name] = experiments.compare(
                name, self.cfg, out_dir=self.results, progress=False)
        return self._comparisons[name]


def pick_examples(pairs: pd.DataFrame, tokenizer, cfg: LessonConfig, n: int = 4) -> pd.DataFrame:
    """``n`` validation pairs of distinct lengths, from the shortest to the longest that fits
    ``cfg.max_length``, with their token counts in ``n_tokens``: notebook 02's batch."""
    from mnli_lesson.data import pair_lengths, stratified_subset

    pool = stratified_subset(pairs, min(48, len(pairs)), seed=cfg.seed)
    pool = pool.assign(n_tokens=pair_lengths(tokenizer, pool))
    pool = pool[pool["n_tokens"] <= cfg.max_length].drop_duplicates("n_tokens")
    pool = pool.sort_values("n_tokens").reset_index(drop=True)
    return pool.iloc[np.linspace(0, len(pool) - 1, n).round().astype(int)].reset_index(drop=True)


# --------------------------------------------------------------------------- trials


def _encode_trial(encode: Callable, ctx: Context) -> list[list[int]]:
    """The four example pairs, and one whose premise is far beyond max_length."""
    picks = ctx.picks
    long_premise = " ".join(ctx.data.train["premise"].iloc[:30])
    pairs = [*zip(picks["premise"], picks["hypothesis"], strict=True),
             (long_premise, picks.loc[0, "hypothesis"])]
    return [np.asarray(encode(ctx.tokenizer, p, h, ctx.cfg.max_length)["input_ids"]).ravel()
            .tolist() for p, h in pairs]


def _freeze_trial(freeze: Callable, ctx: Context) -> list[str]:
    """Which parameters still train after freezing a copy of notebook 02's model."""
    frozen = freeze(copy.deepcopy(ctx.model))
    return sorted(name for name, p in frozen.named_parameters() if p.requires_grad)


def _step_trial(step: Callable, ctx: Context) -> list[float]:
    """Three steps of plain SGD on three small batches: the losses and the head's weights."""
    from transformers import DataCollatorWithPadding, get_scheduler

    from mnli_lesson.data import stratified_subset

    pairs = stratified_subset(ctx.data.train, 12, seed=ctx.cfg.seed)
    net = core.build_model(ctx.checkpoint, seed=ctx.cfg.seed).train()  # every weight trains
    encoded = core.encode_pairs(ctx.tokenizer, pairs, ctx.cfg.max_length)
    encoded = encoded.restrict_to(core.forward_inputs(net))
    collate = DataCollatorWithPadding(ctx.tokenizer, return_tensors="pt")
    batches = [collate([encoded[i] for i in range(s, s + 4)]) for s in (0, 4, 8)]
    sgd = torch.optim.SGD(net.parameters(), lr=0.5)
    schedule = get_scheduler("linear", sgd, num_warmup_steps=1, num_training_steps=3)
    torch.manual_seed(ctx.cfg.seed)  # the same dropout masks for every function tried
    losses = [step(net, batch, sgd, schedule, max_grad_norm=0.1) for batch in batches]
    if any(isinstance(loss, torch.Tensor) and loss.requires_grad for loss in losses):
        raise ValueError("return the loss detached from the graph")
    # Signed sums over the head's weights, after steps of SGD at 0.5: a norm hardly moves
    # when a slip only turns the update (measured on tiny: forgetting zero_grad moved the
    # norms at lr 0.05 by 1.2e-4, against a tolerance of 1e-4; these sums by 5e-3).
    head = list(net.parameters())[-4:]
    weights = [float(p.detach().double().flatten() @ torch.linspace(-1, 1, p.numel(),
                                                                    dtype=torch.float64))
               for p in head]
    return [float(loss) for loss in losses] + weights


def _accuracy_trial(accuracy: Callable, ctx: Context) -> list[float]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, len(LABELS), generator=generator)
    labels = torch.randint(0, len(LABELS), (50,), generator=generator)
    return [float(accuracy(logits, labels)), float(accuracy(logits[:7], labels[:7]))]


def _pool_trial(pool: Callable, ctx: Context) -> list:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 6, 5, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    return pool(hidden, mask)


#: Exercise id -> the trial its function is run on.
TRIALS: dict[str, Callable[[Callable, Context], Any]] = {
    "ex02-encode": _encode_trial,
    "ex02-freeze": _freeze_trial,
    "ex03-step": _step_trial,
    "ex03-accuracy": _accuracy_trial,
    "ex03-pool": _pool_trial,
}


def observe(exercise: str, answer: Any, ctx: Context | None) -> Any:
    """What is judged of ``answer``: its plain value, or, for a function, the plain value of
    its trial. Raises ``NotPlain``, or whatever the student's function raised."""
    if exercise in TRIALS and callable(answer):
        if ctx is None:
            raise NotPlain("a function, with no context to try it in")
        return plain(TRIALS[exercise](answer, ctx))
    if callable(answer):
        raise NotPlain(f"a function ({type(answer).__name__})")
    return plain(answer)


_CONTEXT: dict[str, Context] = {}


def current_context() -> Context | None:
    """A context for the configuration a notebook resolves here (None if it cannot)."""
    from mnli_lesson.config import resolve_config
    from mnli_lesson.errors import LessonError

    try:
        cfg = resolve_config()
    except LessonError:
        return None
    return _CONTEXT.setdefault(repr(cfg), Context(cfg))


def collect(exercise: str, answer: Any) -> None:
    """Print the answer as the grader reads it: one line, ``ANSWER_MARK`` and JSON."""
    record: dict[str, Any] = {"exercise": exercise}
    if answer is None or answer is Ellipsis:
        record["status"] = "unanswered"
    else:
        try:
            ctx = current_context() if exercise in TRIALS else None
            record.update(status="answered", value=observe(exercise, answer, ctx))
        except NotPlain as err:
            record.update(status="not a plain value", detail=str(err))
        except Exception as err:  # the student's function raised: say what, in one line
            first = (str(err).strip().splitlines() or [""])[0][:200]
            record.update(status="raised", detail=f"{type(err).__name__}: {first}")
    print(ANSWER_MARK + json.dumps(record, allow_nan=False))
