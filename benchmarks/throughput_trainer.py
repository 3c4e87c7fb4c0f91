"""The benchmark's two Hugging Face ``Trainer`` variants: ``run_glue.py``'s defaults and
``Trainer`` tuned with its own switches."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler
from transformers import (
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

from mnli_lesson.core import forward_inputs
from mnli_lesson.models import build_model

from throughput_measure import Measurement, has_fast_bf16, sync
from throughput_variants import SEED, Variant


class PaddedPairs(Dataset):
    """``run_glue.py``-style features: every pair tokenised once and padded to 128."""

    def __init__(self, tokenizer, df: pd.DataFrame, max_length: int = 128):
        encoded = tokenizer(df["premise"].tolist(), df["hypothesis"].tolist(),
                            padding="max_length", truncation=True, max_length=max_length)
        self.columns = {k: torch.tensor(v) for k, v in encoded.items()}
        self.labels = torch.tensor(df["label"].tolist())

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**{k: v[i] for k, v in self.columns.items()}, "labels": self.labels[i]}


class UnpaddedPairs(Dataset):
    """Every pair tokenised once, unpadded, with only the inputs the model accepts; the
    collator pads each batch to its longest pair."""

    def __init__(self, tokenizer, df: pd.DataFrame, max_length: int, inputs: set[str]):
        encoded = tokenizer(df["premise"].tolist(), df["hypothesis"].tolist(),
                            truncation=True, max_length=max_length)
        self.columns = {k: v for k, v in encoded.items() if k in inputs}
        self.labels = df["label"].tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {**{k: v[i] for k, v in self.columns.items()}, "labels": self.labels[i]}


class _LoopClock(TrainerCallback):
    """Wall and CPU seconds from train begin to train end: ``Trainer.train``'s loop without
    its per-call setup (dataloader, optimiser, ``prepare``), which a real run pays once."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start = self.last = (0.0, 0.0)

    def on_train_begin(self, *args, **kwargs) -> None:
        sync(self.device)
        self.start = (time.perf_counter(), time.process_time())

    def on_train_end(self, *args, **kwargs) -> None:
        sync(self.device)
        self.last = (time.perf_counter() - self.start[0], time.process_time() - self.start[1])


class _ContinuedSampler(Sampler):
    """``Trainer``'s own training sampler, carried on from one ``train()`` call to the next as
    the steps of one long run are. Each call would otherwise start a new epoch, and
    ``LengthGroupedSampler`` puts an epoch's longest batch first: every chunk of a few steps
    would start with the longest batch of the pool, where a real run meets it once an epoch."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.stream = self._passes()

    def _passes(self) -> Iterator[int]:
        while True:
            yield from self.sampler  # each pass draws a new order, as a new epoch does

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[int]:
        return (next(self.stream) for _ in range(len(self)))


class _ContinuingTrainer(Trainer):
    """``Trainer`` whose training sampler carries on across ``train()`` calls."""

    _continued: _ContinuedSampler | None = None

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        if self._continued is None:
            sampler = super()._get_train_sampler(train_dataset)
            if sampler is None:
                return None
            self._continued = _ContinuedSampler(sampler)
        return self._continued


class TrainerVariant(Variant):
    """A Hugging Face ``Trainer``; each chunk is one ``train(max_steps=…)`` call, timed by a
    callback around its loop (the setup of each call is not timed, as for the other variants,
    which set up once)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, workdir: str,
                 train_set: Dataset, eval_set: Dataset, small_eval: Dataset, collator,
                 **arguments):
        super().__init__(model, device)
        self.eval_set, self.small_eval = eval_set, small_eval
        self.clock = _LoopClock(device)
        self.loop_seconds: list[float] = []
        with self.active():
            args = TrainingArguments(
                output_dir=workdir, report_to=[], max_steps=1, save_strategy="no",
                logging_strategy="no", eval_strategy="no", disable_tqdm=True,
                use_cpu=device.type == "cpu", seed=SEED, **arguments)
            self.trainer = _ContinuingTrainer(model=self.model, args=args,
                                              train_dataset=train_set, data_collator=collator,
                                              callbacks=[self.clock])
        self.trainer.remove_callback(PrinterCallback)  # it prints a metrics dict per train()
        self.optimizer_name = getattr(args.optim, "value", str(args.optim))

    def train_steps(self, steps: int) -> None:
        # Each call builds a fresh dataloader, optimiser and schedule (outside the clock); the
        # sampler carries on where the last call stopped.
        self.trainer.args.max_steps = steps
        self.trainer.train()

    def train_chunk(self, steps: int) -> Measurement:
        with self.active():
            before = self.counter.snapshot()
            self.train_steps(steps)
            seen = tuple(a - b for a, b in zip(self.counter.snapshot(), before, strict=True))
        wall, cpu = self.clock.last
        self.loop_seconds.append(wall)
        return Measurement(wall, cpu, *seen)

    def evaluate(self, small: bool = False) -> None:
        self.trainer.predict(self.small_eval if small else self.eval_set)


class TrainerDefault(TrainerVariant):
    """``Trainer`` as ``run_glue.py`` sets it up: pad to 128, batch 8, default optimiser."""

    name = "trainer_default"
    train_batch = 8

    def __init__(self, model_dir: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                 workdir: str, device: torch.device):
        super().__init__(
            build_model(model_dir, seed=SEED), device, workdir,
            PaddedPairs(tokenizer, train_df), PaddedPairs(tokenizer, eval_df),
            PaddedPairs(tokenizer, eval_df.head(8)), default_data_collator,
            per_device_train_batch_size=8, per_device_eval_batch_size=8)


def _length_grouping() -> dict[str, object]:
    """Length-grouped sampling in this transformers' spelling (``group_by_length=True``
    before 5.x, ``train_sampling_strategy="group_by_length"`` since)."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


class TrainerTuned(TrainerVariant):
    """``Trainer`` tuned for speed with its own switches: pad per batch, length-grouped
    batches, bf16 where native, fused AdamW, batch 32 (and TF32 on a GPU)."""

    name = "trainer_tuned"
    train_batch = 32
    tf32 = True

    def __init__(self, model_dir: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                 workdir: str, device: torch.device, max_length: int):
        model = build_model(model_dir, seed=SEED)
        bf16 = has_fast_bf16(device)
        self.precision = "bf16" if bf16 else "fp32"
        inputs = forward_inputs(model)
        cuda = device.type == "cuda"
        super().__init__(
            model, device, workdir,
            UnpaddedPairs(tokenizer, train_df, max_length, inputs),
            UnpaddedPairs(tokenizer, eval_df, max_length, inputs),
            UnpaddedPairs(tokenizer, eval_df.head(32), max_length, inputs),
            # Multiples of 8 suit a GPU's tensor cores; a CPU gains nothing from the extra pad.
            DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if cuda else None),
            per_device_train_batch_size=32, per_device_eval_batch_size=32, bf16=bf16,
            optim="adamw_torch_fused", **_length_grouping())
