"""The benchmark's ways to train: the assignment's loop and mnli_lesson's engine, each with
its own Accelerate state (the two ``Trainer`` variants are in ``throughput_trainer``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pandas as pd
import torch
from accelerate.state import AcceleratorState, GradientState, PartialState
from torch.utils.data import DataLoader

from mnli_lesson.config import resolve_config
from mnli_lesson.core import (
    EncodedPairs,
    forward_inputs,
    make_optimizer,
    make_scheduler,
    predict,
    set_epoch,
    training_step,
)
from mnli_lesson.models import build_model
from mnli_lesson.train import make_accelerator, make_loader, pick_device, pick_precision

from throughput_measure import Measurement, TokenCounter, timed

SEED = 42
BASELINE_MAX_LENGTH = 104  # what the original assignment truncated to
WARMUP_STEPS = 2  # untimed, per variant, before the first round


def _accelerate_states() -> tuple:
    return (PartialState._shared_state, AcceleratorState._shared_state,
            GradientState._shared_state)


class AccelerateScope:
    """A variant's own Accelerate state, swapped in while the variant is built and runs.

    Accelerate keeps one state per process, shared by every ``Accelerator``: without this,
    ``trainer_tuned``'s bf16 setting becomes everyone's, and the engine rows, prepared after
    it, train under bf16 autocast (seen on a CPU with bf16 forced). The state lives in dicts
    that every instance shares, so swapping their contents gives each variant its own.
    """

    def __init__(self):
        self._mine: list[dict] = [{} for _ in _accelerate_states()]
        self._outside: list[dict] = []

    def __enter__(self) -> AccelerateScope:
        self._outside = [dict(d) for d in _accelerate_states()]
        for shared, mine in zip(_accelerate_states(), self._mine, strict=True):
            shared.clear()
            shared.update(mine)
        return self

    def __exit__(self, *exc: object) -> None:
        self._mine = [dict(d) for d in _accelerate_states()]
        for shared, outside in zip(_accelerate_states(), self._outside, strict=True):
            shared.clear()
            shared.update(outside)


class Variant:
    """A way to train and score; subclasses fill ``train_steps`` and ``evaluate``."""

    name: str = ""
    precision: str = "fp32"
    train_batch: int = 32
    tf32: bool = False
    """On a GPU: TF32 matmuls for fp32 work (PyTorch's default is off)."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.device = device
        self.model = model
        self.counter = TokenCounter(model)
        self.scope = AccelerateScope()
        self.train_log: list[Measurement] = []
        self.eval_log: list[Measurement] = []

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """This variant's Accelerate state and TF32 setting, for the duration of the block."""
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
        with self.scope:
            yield

    def warm_up(self, steps: int = WARMUP_STEPS) -> None:
        """A few training steps and a small scoring pass, untimed."""
        with self.active():
            self.train_steps(steps)
            self.evaluate(small=True)

    def train_chunk(self, steps: int) -> Measurement:
        """Train ``steps`` optimiser steps and return the timing."""
        out: list[Measurement] = []
        with self.active(), timed(self.counter, out, self.device):
            self.train_steps(steps)
        return out[0]

    def eval_round(self) -> Measurement:
        with self.active(), timed(self.counter, self.eval_log, self.device):
            self.evaluate()
        return self.eval_log[-1]

    def train_steps(self, steps: int) -> None:
        raise NotImplementedError

    def evaluate(self, small: bool = False) -> None:
        raise NotImplementedError


def _endless(make: Callable[[int], Iterator]) -> Iterator:
    """Batches from ``make(epoch)``, epoch after epoch."""
    epoch = 0
    while True:
        yield from make(epoch)
        epoch += 1


class Baseline(Variant):
    """The original loop: raw rows, tokenised in ``collate_fn`` every batch, plain AdamW."""

    name = "baseline"

    def __init__(self, model_dir: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                 device: torch.device):
        super().__init__(build_model(model_dir, seed=SEED).to(device), device)
        self.tokenizer = tokenizer
        rows = train_df[["premise", "hypothesis", "label"]].to_dict("records")
        self.eval_rows = eval_df[["premise", "hypothesis", "label"]].to_dict("records")
        generator = torch.Generator().manual_seed(SEED)
        loader = DataLoader(rows, batch_size=32, shuffle=True, generator=generator,
                            collate_fn=self.collate)
        self.batches = _endless(lambda epoch: iter(loader))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=2e-5)

    def collate(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer([r["premise"] for r in rows], [r["hypothesis"] for r in rows],
                                 padding=True, truncation=True, max_length=BASELINE_MAX_LENGTH,
                                 return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                "labels": torch.tensor([r["label"] for r in rows])}

    def train_steps(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            batch = {k: v.to(self.device) for k, v in next(self.batches).items()}
            out = self.model(batch["input_ids"], attention_mask=batch["attention_mask"],
                             labels=batch["labels"])
            self.optimizer.zero_grad()
            out.loss.backward()
            self.optimizer.step()

    def evaluate(self, small: bool = False) -> None:
        rows = self.eval_rows[:32] if small else self.eval_rows
        self.model.eval()
        with torch.no_grad():
            for batch in DataLoader(rows, batch_size=32, collate_fn=self.collate):
                self.model(batch["input_ids"].to(self.device),
                           attention_mask=batch["attention_mask"].to(self.device))


class Engine(Variant):
    """mnli_lesson's engine: its own loader, optimiser, schedule and Accelerator, stepped by
    ``train.train_step`` with the loss reads buffered as ``train.train`` buffers them."""

    tf32 = True  # train.train turns TF32 on for a GPU

    def __init__(self, model_dir: str, tokenizer, train_set: EncodedPairs,
                 eval_set: EncodedPairs, attention: str, device: torch.device):
        super().__init__(build_model(model_dir, seed=SEED, attn_implementation=attention),
                         device)
        self.name = f"engine[{attention}]"
        cfg = resolve_config("cpu", model=model_dir, device=device.type, seed=SEED)
        self.cfg = cfg
        engine_device = pick_device(cfg.device)
        self.precision = pick_precision(cfg.precision, engine_device)
        self.train_batch = cfg.batch_size
        inputs = forward_inputs(self.model)
        self.train_set, self.eval_set = train_set.restrict_to(inputs), eval_set.restrict_to(inputs)
        self.small_eval = _first(self.eval_set, 16)
        self.scaler = torch.amp.GradScaler(engine_device.type,
                                           enabled=self.precision == "fp16")
        loader = make_loader(self.train_set, tokenizer, cfg, engine_device)
        self.collate = loader.collate_fn
        optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        scheduler = make_scheduler(optimizer, len(loader) * cfg.epochs, cfg.warmup_ratio)
        with self.active():
            self.accelerator = make_accelerator(cpu=engine_device.type == "cpu")
            self.wrapped, self.optimizer, self.loader, self.scheduler = self.accelerator.prepare(
                self.model, optimizer, loader, scheduler)
        self.batches = _endless(self._epoch)
        self.pending: list = []
        self.losses: list[float] = []

    def _epoch(self, epoch: int) -> Iterator[dict]:
        set_epoch(self.loader, epoch)  # the seeded order of each epoch, as core.train sets it
        return iter(self.loader)

    def train_steps(self, steps: int) -> None:
        self.wrapped.train()
        for _ in range(steps):
            batch = next(self.batches)
            lr = self.scheduler.get_last_lr()[0]
            loss = training_step(self.wrapped, batch, self.optimizer, self.scheduler, self.scaler,
                                 self.precision, self.cfg.max_grad_norm)
            self.pending.append((loss, lr))
            if len(self.pending) == 20:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        """What the engine's ``flush`` does: one stacked read of the buffered losses."""
        if self.pending:
            self.losses += torch.stack([loss for loss, _ in self.pending]).float().cpu().tolist()
            self.pending.clear()

    def evaluate(self, small: bool = False) -> None:
        predict(self.model, self.small_eval if small else self.eval_set, self.collate,
                self.cfg.eval_batch_size, self.precision)


def _first(data: EncodedPairs, n: int) -> EncodedPairs:
    """The first ``n`` pairs of an encoded split, as a new EncodedPairs."""
    columns = {k: [data[i][k] for i in range(min(n, len(data)))] for k in data.keys}
    return EncodedPairs(columns, data.labels[:n].tolist())
