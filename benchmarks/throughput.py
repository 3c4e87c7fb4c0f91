"""Training and evaluation throughput of five ways to fine-tune a classifier on MNLI pairs.

Variants, all in one process, on the same pairs and the same model configuration:

- ``baseline``: the original assignment's loop (tokenise in every batch, pad to the batch's
  longest, fp32, batch 32, plain AdamW, SDPA attention).
- ``trainer_default``: Hugging Face ``Trainer`` with ``run_glue.py``'s defaults (every pair
  padded to 128 tokens once, batch 8).
- ``trainer_tuned``: ``Trainer`` set up for speed: dynamic padding (``DataCollatorWithPadding``),
  length-grouped sampling, bf16 where the hardware runs it natively, fused AdamW, batch 32.
- ``engine[eager]`` / ``engine[sdpa]``: mnli_lesson's engine, built from its public pieces
  (``make_loader``, ``make_optimizer``, ``make_scheduler``, ``make_accelerator``) and stepped by
  ``train.train_step``, the function ``train.train`` calls; one row per attention kernel.

Each round trains every variant for ``--steps`` optimiser steps (interleaved in chunks, in
rotating order) and scores the same evaluation pairs. Reported: median tokens/s and pairs/s,
medians of per-round ratios to ``baseline``, padding efficiency and model-FLOPs utilisation
against a GEMM peak measured in the same run. ``--device cuda`` runs the same comparison on a
GPU. Run ``python benchmarks/throughput.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate.state import AcceleratorState, GradientState, PartialState
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import (
    DataCollatorWithPadding,
    DistilBertConfig,
    DistilBertModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)
from transformers.utils import logging as hf_logging

from mnli_lesson.config import resolve_config
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.encoding import (
    EncodedPairs,
    encode_pairs,
    forward_inputs,
    load_tokenizer,
    sorted_batches,
)
from mnli_lesson.evaluate import predict
from mnli_lesson.models import build_model
from mnli_lesson.train import (
    cpu_has_fast_bf16,
    make_accelerator,
    make_loader,
    make_optimizer,
    make_scheduler,
    pick_device,
    pick_precision,
    train_step,
)

REPO = Path(__file__).resolve().parents[1]
MINILM_DIR = "models/all-MiniLM-L6-v2"
DATA_DIR = "data/mnli-sample"
BASELINE_MAX_LENGTH = 104  # what the original assignment truncated to
SEED = 42
CHUNK_STEPS = 5  # training is interleaved across variants in chunks of this many steps
WARMUP_STEPS = 2  # untimed, per variant, before the first round
MIN_STEPS = 20  # fewer optimiser steps per round than this make a round's ratio noisy
CPU = torch.device("cpu")


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """One timed piece of work: wall and process-CPU seconds, and what the model saw."""

    seconds: float
    cpu_seconds: float
    pairs: int
    real_tokens: int
    padded_tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.real_tokens / self.seconds

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds


def _sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TokenCounter:
    """Counts pairs, real and padded tokens of every forward call of a model (a pre-hook).

    Counting at the model, not in the data pipeline, counts what was actually computed on,
    whatever the loop prefetches. Real tokens are summed on the mask's device and read only
    in ``snapshot``: reading them in the hook would make a GPU wait at every forward call.
    """

    def __init__(self, model: torch.nn.Module):
        self.pairs = self.real = self.padded = 0
        self._real_pending: list[torch.Tensor] = []
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None:  # every variant passes a mask; a bare call counts as unpadded
            mask = torch.ones_like(kwargs.get("input_ids", args[0] if args else None))
        self.pairs += mask.shape[0]
        self._real_pending.append(mask.sum())
        self.padded += mask.numel()

    def snapshot(self) -> tuple[int, int, int]:
        if self._real_pending:
            self.real += int(torch.stack(self._real_pending).sum())
            self._real_pending.clear()
        return self.pairs, self.real, self.padded


@contextlib.contextmanager
def timed(counter: TokenCounter, out: list[Measurement], device: torch.device):
    """Time the block; append a Measurement of what ``counter`` saw inside it."""
    _sync(device)
    before = counter.snapshot()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    yield
    _sync(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pairs, real, padded = (a - b for a, b in zip(counter.snapshot(), before, strict=True))
    out.append(Measurement(wall, cpu, pairs, real, padded))


def gemm_peak(dtype: torch.dtype, budget_s: float = 2.0,
              device: torch.device = CPU) -> dict[str, object]:
    """Best single-matmul GFLOP/s for ``dtype`` over growing sizes, within about ``budget_s``.

    A larger size is only tried when a warm-up and one timed call of it are predicted to fit
    the time left, so an emulated (slow) bf16 costs a fraction of a second, not minutes.
    Taking the best call, not the mean, keeps the figure a peak on a busy machine. On a GPU
    the sizes are larger, each timing covers several calls (one call is too short to time
    alone), and fp32 is probed without TF32: the fp32 rows that use it are the ones without it.
    """
    cuda = device.type == "cuda"
    shapes = [(2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192)] if cuda else \
        [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 768, 3072)]
    calls = 10 if cuda else 1
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    best, tried = 0.0, []
    deadline = time.perf_counter() + budget_s
    try:
        for i, (m, k, n) in enumerate(shapes):
            flops = 2 * m * k * n * calls
            left = deadline - time.perf_counter()
            if best and 2 * flops / best > left:
                break
            a = torch.randn(m, k, device=device).to(dtype)
            b = torch.randn(k, n, device=device).to(dtype)
            a @ b  # warm-up
            _sync(device)
            stop = time.perf_counter() + left / (len(shapes) - i)
            while True:
                start = time.perf_counter()
                for _ in range(calls):
                    a @ b
                _sync(device)
                now = time.perf_counter()
                best = max(best, flops / (now - start))
                if now >= stop:
                    break
            tried.append(f"{m}x{k}x{n}")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return {"gflops": best / 1e9, "shapes": tried}


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside the embedding tables (the ones every token multiplies through)."""
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def has_fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively (never emulated: that is slower than fp32)."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()


# --------------------------------------------------------------------------- variants


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
        _sync(self.device)
        self.start = (time.perf_counter(), time.process_time())

    def on_train_end(self, *args, **kwargs) -> None:
        _sync(self.device)
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
        self.sampler, self.collate = loader.batch_sampler, loader.collate_fn
        optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        scheduler = make_scheduler(optimizer, cfg, len(loader) * cfg.epochs)
        with self.active():
            self.accelerator = make_accelerator(cpu=engine_device.type == "cpu")
            self.wrapped, self.optimizer, self.loader, self.scheduler = self.accelerator.prepare(
                self.model, optimizer, loader, scheduler)
        self.batches = _endless(self._epoch)
        self.pending: list = []
        self.losses: list[float] = []

    def _epoch(self, epoch: int) -> Iterator[dict]:
        # As train.train: the seeded order of each epoch, set on the loader and its sampler.
        self.loader.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        return iter(self.loader)

    def train_steps(self, steps: int) -> None:
        self.wrapped.train()
        for _ in range(steps):
            batch = next(self.batches)
            lr = self.scheduler.get_last_lr()[0]
            loss = train_step(self.wrapped, batch, self.optimizer, self.scheduler, self.scaler,
                              device=self.accelerator.device, precision=self.precision,
                              max_grad_norm=self.cfg.max_grad_norm)
            self.pending.append((loss, lr))
            if len(self.pending) == 20:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        """What train's ``_flush`` does: one stacked read of the buffered losses."""
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


# --------------------------------------------------------------------------- setup


def shared_dir() -> Path:
    """The shared data/model folder (``MNLI_LESSON_SHARED`` or ``../shared``)."""
    return Path(os.environ.get("MNLI_LESSON_SHARED", REPO.parent / "shared")).expanduser()


def load_pairs(pool: int, eval_pairs: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """A seeded, stratified training pool and evaluation subset (shared sample, or built-in),
    the whole validation split, and where the data came from."""
    folder = shared_dir() / DATA_DIR
    source = str(folder) if (folder / "train.csv").is_file() else "sample"
    data = load_mnli(source)
    train_df, full_eval = data.splits["train"], data.splits["validation_matched"]
    train_df = stratified_subset(train_df, min(pool, len(train_df)), seed=SEED)
    eval_df = stratified_subset(full_eval, min(eval_pairs, len(full_eval)), seed=SEED)
    named = f"shared/{DATA_DIR}" if source != "sample" else source  # no machine paths in results
    return train_df.reset_index(drop=True), eval_df.reset_index(drop=True), full_eval, named


def eval_padding(lengths: np.ndarray, eval_batch: int) -> dict[str, float]:
    """Padding efficiency each variant's scoring batches would reach on a whole split
    (the measured subset is smaller, so sorting has fewer batches to work with)."""
    def efficiency(batches: list) -> float:
        return sum(b.sum() for b in batches) / sum(b.max() * len(b) for b in batches)

    clipped = np.minimum(lengths, BASELINE_MAX_LENGTH)
    return {
        "pairs": len(lengths),
        "baseline": efficiency([clipped[i:i + 32] for i in range(0, len(lengths), 32)]),
        "trainer_default": float(lengths.mean() / 128),
        "trainer_tuned": efficiency([lengths[i:i + 32] for i in range(0, len(lengths), 32)]),
        "engine": efficiency([lengths[b] for b in sorted_batches(lengths, eval_batch)]),
    }


@contextlib.contextmanager
def model_folder(model: str, workdir: Path) -> Iterator[str]:
    """A checkpoint folder for ``model`` that build_model and load_tokenizer can read."""
    minilm = shared_dir() / MINILM_DIR
    if not (minilm / "config.json").is_file():
        raise SystemExit(f"{minilm} is missing: the benchmark needs the shared MiniLM folder")
    if model == "minilm":
        yield str(minilm)
        return
    # DistilBERT-base shape with random weights; MiniLM's tokenizer has the same vocabulary.
    folder = workdir / "distilbert-random"
    torch.manual_seed(SEED)
    with _quiet():
        DistilBertModel(DistilBertConfig()).save_pretrained(folder)
        load_tokenizer(str(minilm)).save_pretrained(folder)
    yield str(folder)


@contextlib.contextmanager
def _quiet():
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def machine_info(threads: int, gemm_budget_s: float, device: torch.device) -> dict:
    """CPU (and GPU), cores, torch version, native-bf16 flag and measured GEMM peaks."""
    name = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        name = match.group(1).strip() if match else name
    fast_bf16 = has_fast_bf16(device)
    peaks = {"fp32": gemm_peak(torch.float32, gemm_budget_s, device)}
    # bf16 is emulated without AVX512-BF16/AMX: still probed (bounded), so the gap is on record.
    peaks["bf16"] = gemm_peak(torch.bfloat16, gemm_budget_s if fast_bf16 else gemm_budget_s / 4,
                              device)
    info = {"cpu": name, "cores": os.cpu_count(), "threads": threads,
            "interop_threads": torch.get_num_interop_threads(), "torch": torch.__version__,
            "device": device.type, "fast_bf16": fast_bf16, "gemm_peak": peaks,
            "loadavg_start": os.getloadavg()}
    if device.type == "cuda":
        peaks["fp16"] = gemm_peak(torch.float16, gemm_budget_s, device)  # the engine's on a T4
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info


# --------------------------------------------------------------------------- the benchmark


@dataclass
class ModelResult:
    """Everything measured for one model: settings, per-variant rounds, summaries."""

    model: str
    params: int
    non_embedding_params: int
    train_steps_per_round: int
    eval_pairs: int
    pool_pairs: int
    variants: dict[str, dict] = field(default_factory=dict)
    eval_padding_full_split: dict[str, float] = field(default_factory=dict)
    loadavg_end: tuple[float, ...] = ()


def build_variants(folder: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                   workdir: Path, device: torch.device) -> list[Variant]:
    """Every variant for one model folder, the baseline first."""
    cfg = resolve_config("cpu", model=folder, device=device.type)
    train_set = encode_pairs(tokenizer, train_df, cfg.max_length)
    eval_set = encode_pairs(tokenizer, eval_df, cfg.max_length)
    return [
        Baseline(folder, tokenizer, train_df, eval_df, device),
        TrainerDefault(folder, tokenizer, train_df, eval_df, str(workdir / "default"), device),
        TrainerTuned(folder, tokenizer, train_df, eval_df, str(workdir / "tuned"), device,
                     cfg.max_length),
        Engine(folder, tokenizer, train_set, eval_set, "eager", device),
        Engine(folder, tokenizer, train_set, eval_set, "sdpa", device),
    ]


def run_model(model: str, args: argparse.Namespace, train_df: pd.DataFrame,
              eval_df: pd.DataFrame, full_eval_df: pd.DataFrame) -> ModelResult:
    """Build every variant for ``model`` and run the rounds round-robin."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="mnli-throughput-") as tmp, \
            model_folder(model, Path(tmp)) as folder, _quiet():
        tokenizer: PreTrainedTokenizerBase = load_tokenizer(folder)
        variants = build_variants(folder, tokenizer, train_df, eval_df, Path(tmp), device)
        net = variants[0].model
        result = ModelResult(model, sum(p.numel() for p in net.parameters()),
                             non_embedding_params(net), args.steps, len(eval_df), len(train_df))
        cfg = resolve_config("cpu", model=folder, device=device.type)
        full_lengths = encode_pairs(tokenizer, full_eval_df, cfg.max_length).lengths
        result.eval_padding_full_split = eval_padding(full_lengths, cfg.eval_batch_size)
        for v in variants:
            print(f"  warm-up {v.name}", flush=True)
            v.warm_up(min(WARMUP_STEPS, args.steps))
            v.train_log.clear()
            v.eval_log.clear()
            if isinstance(v, TrainerVariant):
                v.loop_seconds.clear()
        chunks = [CHUNK_STEPS] * (args.steps // CHUNK_STEPS) + \
            ([args.steps % CHUNK_STEPS] if args.steps % CHUNK_STEPS else [])
        for r in range(args.rounds):
            # Training is interleaved chunk by chunk, in rotating order, so a busy spell on
            # the machine lands on every variant alike; scoring is one pass per variant.
            parts: dict[str, list[Measurement]] = {v.name: [] for v in variants}
            for c, steps in enumerate(chunks):
                for v in _rotate(variants, r + c):
                    parts[v.name].append(v.train_chunk(steps))
            for v in _rotate(variants, r):
                v.train_log.append(_total(parts[v.name]))
                v.eval_round()
            for v in variants:
                t, e = v.train_log[-1], v.eval_log[-1]
                print(f"  round {r + 1}/{args.rounds} {v.name:16s} train {t.tokens_per_s:7.0f} "
                      f"tok/s ({t.seconds:5.1f} s)  eval {e.tokens_per_s:7.0f} tok/s "
                      f"({e.seconds:5.1f} s)", flush=True)
        for v in variants:
            result.variants[v.name] = summarise(v, variants[0])
            result.variants[v.name]["train_batch"] = v.train_batch
            if isinstance(v, TrainerVariant):
                result.variants[v.name]["trainer_loop_seconds"] = v.loop_seconds
                result.variants[v.name]["optimizer"] = v.optimizer_name
        result.loadavg_end = os.getloadavg()
        del variants, net
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def _rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def _total(parts: list[Measurement]) -> Measurement:
    """The chunks of one round as one Measurement."""
    return Measurement(*(sum(getattr(m, f) for m in parts) for f in
                         ("seconds", "cpu_seconds", "pairs", "real_tokens", "padded_tokens")))


def summarise(v: Variant, base: Variant) -> dict:
    """Medians, per-round ratios to the baseline, padding efficiency; raw rounds kept."""
    out: dict[str, object] = {"precision": v.precision}
    for phase, log, base_log, factor in (("train", v.train_log, base.train_log, 6),
                                         ("eval", v.eval_log, base.eval_log, 2)):
        tok = [m.tokens_per_s for m in log]
        ratios = [a.tokens_per_s / b.tokens_per_s for a, b in zip(log, base_log, strict=True)]
        out[phase] = {
            "tokens_per_s": statistics.median(tok),
            "pairs_per_s": statistics.median(m.pairs_per_s for m in log),
            "ratio_to_baseline": statistics.median(ratios),
            "padding_efficiency": sum(m.real_tokens for m in log)
            / max(sum(m.padded_tokens for m in log), 1),
            "flops_per_token": factor,
            "cpu_share": statistics.median(m.cpu_seconds / m.seconds for m in log)
            / torch.get_num_threads(),
            "rounds": [asdict(m) for m in log],
            "ratios": ratios,
        }
    return out


def add_mfu(result: ModelResult, peaks: dict[str, float]) -> None:
    """Model-FLOPs utilisation: flops_per_token x non-embedding params x real tokens/s,
    over the GEMM peak of the variant's precision (median over rounds)."""
    for v in result.variants.values():
        for phase in ("train", "eval"):
            x = v[phase]
            flops = [x["flops_per_token"] * result.non_embedding_params * m["real_tokens"]
                     / m["seconds"] for m in x["rounds"]]
            x["mfu"] = statistics.median(flops) / (peaks[v["precision"]] * 1e9)


def _flops(gflops: float) -> str:
    return f"{gflops / 1000:.0f} TFLOP/s" if gflops >= 10_000 else f"{gflops:.1f} GFLOP/s" \
        if gflops < 10 else f"{gflops:.0f} GFLOP/s"


def markdown(machine: dict, results: list[ModelResult], settings: dict) -> str:
    """The tables the README quotes, one per model, with the machine line."""
    peaks = machine["gemm_peak"]
    load = machine["loadavg_start"][0], results[-1].loadavg_end[0] if results else float("nan")
    where = f"GPU {machine['gpu']} (CUDA {machine['cuda']}), CPU {machine['cpu']}" \
        if machine.get("device") == "cuda" else \
        f"{machine['cpu']}, {machine['cores']} cores ({machine['threads']} torch threads)"
    lines = [
        f"Machine: {where}, torch {machine['torch']}, native bf16: "
        f"{'yes' if machine['fast_bf16'] else 'no'}, GEMM peak fp32 "
        f"{_flops(peaks['fp32']['gflops'])}, bf16 {_flops(peaks['bf16']['gflops'])} "
        f"(best of start and end); load average {load[0]:.1f} at start, {load[1]:.1f} at end.",
        "",
        f"Settings: {settings['rounds']} rounds of {settings['steps']} optimiser steps per "
        f"variant (chunks of {settings['chunk_steps']}, rotating order); training batches "
        f"drawn from a pool of {settings['pool']} pairs; evaluation pairs "
        f"{settings['eval_pairs']} (per model, in table order); medians over rounds; "
        f"total {settings['total_seconds']:.0f} s. MFU = 6 (train) or 2 (eval) x non-embedding "
        "parameters x real tokens/s / GEMM peak of the variant's precision.",
        "",
    ]
    for res in results:
        full = res.eval_padding_full_split
        lines += [
            f"**{res.model}** ({res.params / 1e6:.1f} M parameters, "
            f"{res.non_embedding_params / 1e6:.1f} M outside embeddings)",
            "",
            "| variant | precision | batch | train tok/s | train pairs/s | train x baseline | "
            "eval tok/s | eval pairs/s | eval x baseline | padding eff. (train / eval) | "
            "MFU (train / eval) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, v in res.variants.items():
            t, e = v["train"], v["eval"]
            lines.append(
                f"| {name} | {v['precision']} | {v['train_batch']} | {t['tokens_per_s']:.0f} | "
                f"{t['pairs_per_s']:.1f} | {t['ratio_to_baseline']:.2f} | "
                f"{e['tokens_per_s']:.0f} | {e['pairs_per_s']:.1f} | "
                f"{e['ratio_to_baseline']:.2f} | {t['padding_efficiency']:.2f} / "
                f"{e['padding_efficiency']:.2f} | {t['mfu']:.0%} / {e['mfu']:.0%} |")
        lines += [
            "",
            f"Scoring a whole split ({full['pairs']} pairs) would pad to efficiency "
            f"{full['baseline']:.2f} (baseline), {full['trainer_default']:.2f} (Trainer "
            f"default), {full['trainer_tuned']:.2f} (Trainer tuned), {full['engine']:.2f} "
            "(engine); the measured subset is smaller, so its sorted batches pad more. CPU "
            "share (process CPU time / (wall x threads), median per variant; below 1 means "
            f"other processes took cores): {_shares(res)}.",
            "",
        ]
    return "\n".join(lines)


def _shares(res: ModelResult) -> str:
    values = [v[phase]["cpu_share"] for v in res.variants.values() for phase in ("train", "eval")]
    return f"{min(values):.2f}-{max(values):.2f}"


def default_out(machine: dict) -> Path:
    """``benchmarks/results/throughput-<cpu>-<cores>c.json``, or ``-<gpu>-cuda.json`` on a
    GPU (no host name in it)."""
    cuda = machine.get("device") == "cuda"
    slug = re.sub(r"[^a-z0-9]+", "-", machine["gpu" if cuda else "cpu"].lower()).strip("-")[:40]
    tail = "cuda" if cuda else f"{machine['cores']}c"
    return REPO / "benchmarks" / "results" / f"throughput-{slug}-{tail}.json"


DEFAULT_EVAL_PAIRS = 256
# --quick: a smoke run (a minute or two on 2 cores). The pool stays whole: Trainer's length
# grouping sorts within megabatches of up to 50 batches and groups nothing in a small pool.
QUICK = {"model": "minilm", "rounds": 1, "steps": 1, "eval_pairs": 32, "gemm_seconds": 0.1}
DEFAULTS = {"model": "both", "rounds": 3, "steps": MIN_STEPS, "eval_pairs": DEFAULT_EVAL_PAIRS,
            "pool": 2000, "gemm_seconds": 2.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("distilbert", "minilm", "both"), default=None,
                   help="which model configuration (default: both)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where every variant trains and scores (default: cpu)")
    p.add_argument("--rounds", type=int, default=None, help="round-robin rounds (default: 3)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"optimiser steps per variant per round, at each variant's own batch "
                        f"size (default: {MIN_STEPS}; fewer make a round's ratio noisy)")
    p.add_argument("--eval-pairs", type=int, default=None,
                   help=f"evaluation pairs scored per variant per round "
                        f"(default: {DEFAULT_EVAL_PAIRS})")
    p.add_argument("--pool", type=int, default=None,
                   help="training pairs tokenised once; rounds draw batches from this pool "
                        "(default: 2000)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--gemm-seconds", type=float, default=None,
                   help="seconds for each fp32 GEMM probe, one at start and one at end "
                        "(default: 2)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: " + ", ".join(f"{k.replace('_', '-')} {v}"
                                                   for k, v in QUICK.items())
                        + " (flags given explicitly win); its numbers mean nothing")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path; the markdown table is written beside it (default: "
                        "benchmarks/results/throughput-<cpu>-<cores>c.json, or "
                        "throughput-<gpu>-cuda.json)")
    args = p.parse_args(argv)
    for key, value in {**DEFAULTS, **(QUICK if args.quick else {})}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 1 or args.rounds < 1 or args.eval_pairs < 1 or args.pool < 32:
        p.error("--steps, --rounds and --eval-pairs must be at least 1, --pool at least 32")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no GPU here "
                         "(torch.cuda.is_available() is False): run without --device")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    hf_logging.disable_progress_bar()
    machine = machine_info(torch.get_num_threads(), args.gemm_seconds, device)
    models = ["distilbert", "minilm"] if args.model == "both" else [args.model]
    results, sizes = [], {}
    for model in models:
        train_df, eval_df, full_eval_df, source = load_pairs(args.pool, args.eval_pairs)
        print(f"{model} on {device.type}: {args.rounds} rounds x {args.steps} steps per "
              f"variant, {len(eval_df)} evaluation pairs, data {source}", flush=True)
        results.append(run_model(model, args, train_df, eval_df, full_eval_df))
        sizes[model] = {"steps": args.steps, "eval_pairs": len(eval_df)}
    # A second probe: on a shared machine the peak is whatever the quietest moment allowed.
    end_peak = gemm_peak(torch.float32, args.gemm_seconds, device)
    machine["gemm_peak_end_fp32"] = end_peak
    first = machine["gemm_peak"]["fp32"]
    machine["gemm_peak"]["fp32"] = max(first, end_peak, key=lambda p: p["gflops"])
    peaks = {k: v["gflops"] for k, v in machine["gemm_peak"].items()}
    for res in results:
        add_mfu(res, peaks)
    settings = {"rounds": args.rounds, "steps": args.steps, "pool": args.pool, "data": source,
                "device": device.type, "quick": args.quick, "models": sizes,
                "eval_pairs": "/".join(str(s["eval_pairs"]) for s in sizes.values()),
                "chunk_steps": CHUNK_STEPS, "warmup_steps": WARMUP_STEPS, "seed": SEED,
                "total_seconds": time.perf_counter() - started}
    table = markdown(machine, results, settings)
    print("\n" + table)
    out = args.out or default_out(machine)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "settings": settings, "results": [asdict(r) for r in results]}
    out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md').name} in {settings['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
