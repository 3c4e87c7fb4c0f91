"""Training and evaluation throughput of three ways to fine-tune a classifier on MNLI pairs.

Variants, all in one process, on the same pairs and the same model configuration:

- ``baseline``: the original assignment's loop (tokenise in every batch, pad to the batch's
  longest, fp32, batch 32, plain AdamW, SDPA attention).
- ``trainer_default``: Hugging Face ``Trainer`` with ``run_glue.py``'s defaults (every pair
  padded to 128 tokens once, batch 8).
- ``engine[eager]`` / ``engine[sdpa]``: mnli_lesson's engine as the notebooks use it, with
  each attention implementation.

Rounds run the variants round-robin; each round trains every variant for the same number of
pairs and scores the same evaluation pairs. Reported: median tokens/s and pairs/s, medians of
per-round ratios to ``baseline``, padding efficiency and model-FLOPs utilisation against a GEMM
peak measured in the same run. Run ``python benchmarks/throughput.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
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
from torch.utils.data import DataLoader, Dataset
from transformers import (
    DistilBertConfig,
    DistilBertModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
    get_scheduler,
)
from transformers.utils import logging as hf_logging

from mnli_lesson.config import resolve_config
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.encoding import (
    EncodedPairs,
    LengthGroupedBatchSampler,
    encode_pairs,
    forward_inputs,
    load_tokenizer,
    make_collator,
    sorted_batches,
)
from mnli_lesson.evaluate import autocast_for, predict
from mnli_lesson.models import build_model
from mnli_lesson.train import (
    _accelerator,
    cpu_has_fast_bf16,
    make_optimizer,
    pick_device,
    pick_precision,
)

REPO = Path(__file__).resolve().parents[1]
MINILM_DIR = "models/all-MiniLM-L6-v2"
DATA_DIR = "data/mnli-sample"
BASELINE_MAX_LENGTH = 104  # what the original assignment truncated to
SEED = 42
CHUNK_PAIRS = 32  # training is interleaved across variants in chunks of this many pairs


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


class TokenCounter:
    """Counts pairs, real and padded tokens of every forward call of a model (a pre-hook).

    Counting at the model, not in the data pipeline, counts what was actually computed on,
    whatever the loop prefetches.
    """

    def __init__(self, model: torch.nn.Module):
        self.pairs = self.real = self.padded = 0
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None:  # every variant passes a mask; a bare call counts as unpadded
            mask = torch.ones_like(kwargs.get("input_ids", args[0] if args else None))
        self.pairs += mask.shape[0]
        self.real += int(mask.sum())
        self.padded += mask.numel()

    def snapshot(self) -> tuple[int, int, int]:
        return self.pairs, self.real, self.padded


@contextlib.contextmanager
def timed(counter: TokenCounter, out: list[Measurement]):
    """Time the block; append a Measurement of what ``counter`` saw inside it."""
    before = counter.snapshot()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    yield
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pairs, real, padded = (a - b for a, b in zip(counter.snapshot(), before, strict=True))
    out.append(Measurement(wall, cpu, pairs, real, padded))


def gemm_peak(dtype: torch.dtype, budget_s: float = 2.0) -> dict[str, object]:
    """Best single-matmul GFLOP/s for ``dtype`` over growing sizes, within about ``budget_s``.

    A larger size is only tried when a warm-up and one timed call of it are predicted to fit
    the time left, so an emulated (slow) bf16 costs a fraction of a second, not minutes.
    Taking the best call, not the mean, keeps the figure a peak on a busy machine.
    """
    shapes = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 768, 3072)]
    best, tried = 0.0, []
    deadline = time.perf_counter() + budget_s
    for i, (m, k, n) in enumerate(shapes):
        flops = 2 * m * k * n
        left = deadline - time.perf_counter()
        if best and 2 * flops / best > left:
            break
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        a @ b  # warm-up
        stop = time.perf_counter() + left / (len(shapes) - i)
        while True:
            start = time.perf_counter()
            a @ b
            now = time.perf_counter()
            best = max(best, flops / (now - start))
            if now >= stop:
                break
        tried.append(f"{m}x{k}x{n}")
    return {"gflops": best / 1e9, "shapes": tried}


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside the embedding tables (the ones every token multiplies through)."""
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


# --------------------------------------------------------------------------- variants


class Variant:
    """A way to train and score; subclasses fill ``train_steps`` and ``evaluate``."""

    name: str = ""
    precision: str = "fp32"
    train_batch: int = 32

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.counter = TokenCounter(model)
        self.train_log: list[Measurement] = []
        self.eval_log: list[Measurement] = []

    def warm_up(self) -> None:
        """One training step and a small scoring pass, untimed."""
        self.train_steps(1)
        self.evaluate(small=True)

    def train_chunk(self, pairs: int) -> Measurement:
        """Train on ``pairs`` pairs (whole batches) and return the timing."""
        out: list[Measurement] = []
        with timed(self.counter, out):
            self.train_steps(pairs // self.train_batch)
        return out[0]

    def eval_round(self) -> Measurement:
        with timed(self.counter, self.eval_log):
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

    def __init__(self, model_dir: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame):
        super().__init__(build_model(model_dir, seed=SEED))
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
            batch = next(self.batches)
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
                self.model(batch["input_ids"], attention_mask=batch["attention_mask"])


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


class TrainerDefault(Variant):
    """``Trainer`` as ``run_glue.py`` sets it up: pad to 128, batch 8, default optimiser."""

    name = "trainer_default"
    train_batch = 8

    def __init__(self, model_dir: str, tokenizer, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                 workdir: str):
        super().__init__(build_model(model_dir, seed=SEED))
        self.eval_set = PaddedPairs(tokenizer, eval_df)
        self.small_eval = PaddedPairs(tokenizer, eval_df.head(8))
        args = TrainingArguments(
            output_dir=workdir, report_to=[], per_device_train_batch_size=8,
            per_device_eval_batch_size=8, max_steps=1, save_strategy="no",
            logging_strategy="no", eval_strategy="no", disable_tqdm=True, use_cpu=True,
            seed=SEED,
        )
        self.loop_seconds: list[float] = []
        self.trainer = Trainer(model=self.model, args=args,
                               train_dataset=PaddedPairs(tokenizer, train_df),
                               data_collator=default_data_collator,
                               callbacks=[_LoopClock(self.loop_seconds)])
        self.trainer.remove_callback(PrinterCallback)  # it prints a metrics dict per train()
        self.optimizer_name = getattr(args.optim, "value", str(args.optim))

    def train_steps(self, steps: int) -> None:
        # Each call builds a fresh dataloader, optimiser and schedule; the sampler draws its
        # order from the global RNG, so successive rounds see different pairs.
        self.trainer.args.max_steps = steps
        self.trainer.train()

    def evaluate(self, small: bool = False) -> None:
        self.trainer.predict(self.small_eval if small else self.eval_set)


class _LoopClock(TrainerCallback):
    """Records the seconds between train begin and train end (the loop without its setup)."""

    def __init__(self, out: list[float]):
        self.out, self.start = out, 0.0

    def on_train_begin(self, *args, **kwargs) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, *args, **kwargs) -> None:
        self.out.append(time.perf_counter() - self.start)


class Engine(Variant):
    """mnli_lesson's engine, set up and stepped exactly as ``train.train`` does it."""

    def __init__(self, model_dir: str, tokenizer, train_set: EncodedPairs,
                 eval_set: EncodedPairs, attention: str):
        super().__init__(build_model(model_dir, seed=SEED, attn_implementation=attention))
        self.name = f"engine[{attention}]"
        cfg = resolve_config("cpu", model=model_dir, device="cpu", seed=SEED)
        self.cfg = cfg
        device = pick_device(cfg.device)
        self.precision = pick_precision(cfg.precision, device)
        self.train_batch = cfg.batch_size
        inputs = forward_inputs(self.model)
        self.train_set, self.eval_set = train_set.restrict_to(inputs), eval_set.restrict_to(inputs)
        self.small_eval = _first(self.eval_set, 16)
        self.accelerator = _accelerator(cpu=device.type == "cpu")
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.collate = make_collator(tokenizer,
                                     pad_to_multiple_of=8 if device.type == "cuda" else None)
        self.sampler = LengthGroupedBatchSampler(self.train_set.lengths, cfg.batch_size,
                                                 seed=cfg.seed)
        loader = DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=self.collate,
                            pin_memory=device.type == "cuda")
        optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        total = len(loader) * cfg.epochs
        scheduler = get_scheduler("linear", optimizer,
                                  num_warmup_steps=math.ceil(cfg.warmup_ratio * total),
                                  num_training_steps=total)
        self.wrapped, self.optimizer, self.loader, self.scheduler = self.accelerator.prepare(
            self.model, optimizer, loader, scheduler)
        self.batches = _endless(self._epoch)
        self.pending: list = []
        self.losses: list[float] = []

    def _epoch(self, epoch: int) -> Iterator[dict]:
        self.sampler.set_epoch(epoch)
        return iter(self.loader)

    def train_steps(self, steps: int) -> None:
        model, optimizer, scaler = self.wrapped, self.optimizer, self.scaler
        model.train()
        for _ in range(steps):  # the body of train.train's inner loop
            batch = next(self.batches)
            with autocast_for(self.accelerator.device, self.precision):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            self.scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            self.pending.append((loss.detach(), self.scheduler.get_last_lr()[0]))
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
    return train_df.reset_index(drop=True), eval_df.reset_index(drop=True), full_eval, source


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


def machine_info(threads: int, gemm_budget_s: float) -> dict:
    """CPU, cores, torch version, fast-bf16 flag and measured GEMM peaks."""
    name = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        name = match.group(1).strip() if match else name
    fast_bf16 = cpu_has_fast_bf16()
    peaks = {"fp32": gemm_peak(torch.float32, gemm_budget_s)}
    # bf16 is emulated without AVX512-BF16/AMX: still probed (bounded), so the gap is on record.
    peaks["bf16"] = gemm_peak(torch.bfloat16, gemm_budget_s if fast_bf16 else gemm_budget_s / 4)
    return {"cpu": name, "cores": os.cpu_count(), "threads": threads,
            "interop_threads": torch.get_num_interop_threads(), "torch": torch.__version__,
            "fast_bf16": fast_bf16, "gemm_peak": peaks, "loadavg_start": os.getloadavg()}


# --------------------------------------------------------------------------- the benchmark


@dataclass
class ModelResult:
    """Everything measured for one model: settings, per-variant rounds, summaries."""

    model: str
    params: int
    non_embedding_params: int
    train_pairs_per_round: int
    eval_pairs: int
    pool_pairs: int
    variants: dict[str, dict] = field(default_factory=dict)
    eval_padding_full_split: dict[str, float] = field(default_factory=dict)
    loadavg_end: tuple[float, ...] = ()


def run_model(model: str, args: argparse.Namespace, train_df: pd.DataFrame,
              eval_df: pd.DataFrame, full_eval_df: pd.DataFrame) -> ModelResult:
    """Build every variant for ``model`` and run the rounds round-robin."""
    with tempfile.TemporaryDirectory(prefix="mnli-throughput-") as tmp, \
            model_folder(model, Path(tmp)) as folder, _quiet():
        tokenizer: PreTrainedTokenizerBase = load_tokenizer(folder)
        cfg = resolve_config("cpu", model=folder, device="cpu")
        train_set = encode_pairs(tokenizer, train_df, cfg.max_length)
        eval_set = encode_pairs(tokenizer, eval_df, cfg.max_length)
        variants: list[Variant] = [
            Baseline(folder, tokenizer, train_df, eval_df),
            TrainerDefault(folder, tokenizer, train_df, eval_df, str(Path(tmp) / "trainer")),
            Engine(folder, tokenizer, train_set, eval_set, "eager"),
            Engine(folder, tokenizer, train_set, eval_set, "sdpa"),
        ]
        net = variants[0].model
        result = ModelResult(model, sum(p.numel() for p in net.parameters()),
                             non_embedding_params(net), args.train_pairs, len(eval_df),
                             len(train_df))
        full_lengths = encode_pairs(tokenizer, full_eval_df, cfg.max_length).lengths
        result.eval_padding_full_split = eval_padding(full_lengths, cfg.eval_batch_size)
        for v in variants:
            print(f"  warm-up {v.name}", flush=True)
            v.warm_up()
            v.train_log.clear()
            v.eval_log.clear()
            if isinstance(v, TrainerDefault):
                v.loop_seconds.clear()
        chunks = args.train_pairs // CHUNK_PAIRS
        for r in range(args.rounds):
            # Training is interleaved chunk by chunk (32 pairs each), so a busy spell on the
            # machine lands on every variant alike; scoring is one pass per variant.
            parts: dict[str, list[Measurement]] = {v.name: [] for v in variants}
            for c in range(chunks):
                for v in _rotate(variants, r + c):
                    parts[v.name].append(v.train_chunk(CHUNK_PAIRS))
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
            if isinstance(v, TrainerDefault):
                result.variants[v.name]["trainer_loop_seconds"] = v.loop_seconds
                result.variants[v.name]["optimizer"] = v.optimizer_name
        result.loadavg_end = os.getloadavg()
        del variants, net
        gc.collect()
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


def markdown(machine: dict, results: list[ModelResult], settings: dict) -> str:
    """The tables the README quotes, one per model, with the machine line."""
    peaks = machine["gemm_peak"]
    load = machine["loadavg_start"][0], results[-1].loadavg_end[0] if results else float("nan")
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['threads']} torch "
        f"threads), torch {machine['torch']}, fast bf16: "
        f"{'yes' if machine['fast_bf16'] else 'no'}, GEMM peak fp32 "
        f"{peaks['fp32']['gflops']:.0f} GFLOP/s, bf16 {peaks['bf16']['gflops']:.1f} GFLOP/s "
        f"(best of start and end); load average {load[0]:.1f} at start, {load[1]:.1f} at end.",
        "",
        f"Settings: {settings['rounds']} rounds; training pairs per variant per round "
        f"{settings['train_pairs']} (drawn from a pool of {settings['pool']}), evaluation pairs "
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
            "| variant | precision | train tok/s | train pairs/s | train x baseline | "
            "eval tok/s | eval pairs/s | eval x baseline | padding eff. (train / eval) | "
            "MFU (train / eval) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, v in res.variants.items():
            t, e = v["train"], v["eval"]
            lines.append(
                f"| {name} | {v['precision']} | {t['tokens_per_s']:.0f} | "
                f"{t['pairs_per_s']:.1f} | {t['ratio_to_baseline']:.2f} | "
                f"{e['tokens_per_s']:.0f} | {e['pairs_per_s']:.1f} | "
                f"{e['ratio_to_baseline']:.2f} | {t['padding_efficiency']:.2f} / "
                f"{e['padding_efficiency']:.2f} | {t['mfu']:.0%} / {e['mfu']:.0%} |")
        lines += [
            "",
            f"Scoring a whole split ({full['pairs']} pairs) would pad to efficiency "
            f"{full['baseline']:.2f} (baseline), {full['trainer_default']:.2f} (Trainer), "
            f"{full['engine']:.2f} (engine); the measured subset is smaller, so its sorted "
            "batches pad more. CPU share (process CPU time / (wall x threads), median per "
            f"variant; below 1 means other processes took cores): {_shares(res)}.",
            "",
        ]
    return "\n".join(lines)


def _shares(res: ModelResult) -> str:
    values = [v[phase]["cpu_share"] for v in res.variants.values() for phase in ("train", "eval")]
    return f"{min(values):.2f}-{max(values):.2f}"


def default_out(machine: dict) -> Path:
    """``benchmarks/results/throughput-<cpu>-<cores>c.json`` (no host name in it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", machine["cpu"].lower()).strip("-")[:40]
    return REPO / "benchmarks" / "results" / f"throughput-{slug}-{machine['cores']}c.json"


DEFAULT_SIZES = {"distilbert": (64, 256), "minilm": (96, 256)}  # (train pairs, eval pairs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("distilbert", "minilm", "both"), default="both",
                   help="which model configuration (default: both)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds (default: 3)")
    p.add_argument("--train-pairs", type=int, default=None,
                   help="training pairs per variant per round, a multiple of 32 (default: "
                        + ", ".join(f"{m} {s[0]}" for m, s in DEFAULT_SIZES.items()) + ")")
    p.add_argument("--eval-pairs", type=int, default=None,
                   help="evaluation pairs scored per variant per round (default: "
                        + ", ".join(f"{m} {s[1]}" for m, s in DEFAULT_SIZES.items()) + ")")
    p.add_argument("--pool", type=int, default=2000,
                   help="training pairs tokenised once; rounds draw batches from this pool "
                        "(default: 2000)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--gemm-seconds", type=float, default=2.0,
                   help="seconds for each fp32 GEMM probe, one at start and one at end "
                        "(default: 2)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path; the markdown table is written beside it "
                        "(default: benchmarks/results/throughput-<cpu>-<cores>c.json)")
    args = p.parse_args(argv)
    if args.train_pairs is not None and (args.train_pairs <= 0 or args.train_pairs % CHUNK_PAIRS):
        p.error(f"--train-pairs must be a positive multiple of {CHUNK_PAIRS}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    hf_logging.disable_progress_bar()
    machine = machine_info(torch.get_num_threads(), args.gemm_seconds)
    models = ["distilbert", "minilm"] if args.model == "both" else [args.model]
    results, sizes = [], {}
    for model in models:
        train_pairs, eval_pairs = DEFAULT_SIZES[model]
        run_args = argparse.Namespace(**vars(args))
        run_args.train_pairs = args.train_pairs or train_pairs
        run_args.eval_pairs = args.eval_pairs or eval_pairs
        train_df, eval_df, full_eval_df, source = load_pairs(args.pool, run_args.eval_pairs)
        print(f"{model}: {run_args.rounds} rounds x {run_args.train_pairs} training pairs, "
              f"{len(eval_df)} evaluation pairs, data {source}", flush=True)
        results.append(run_model(model, run_args, train_df, eval_df, full_eval_df))
        sizes[model] = {"train_pairs": run_args.train_pairs, "eval_pairs": len(eval_df)}
    # A second probe: on a shared machine the peak is whatever the quietest moment allowed.
    end_peak = gemm_peak(torch.float32, args.gemm_seconds)
    machine["gemm_peak_end_fp32"] = end_peak
    first = machine["gemm_peak"]["fp32"]
    machine["gemm_peak"]["fp32"] = max(first, end_peak, key=lambda p: p["gflops"])
    peaks = {k: v["gflops"] for k, v in machine["gemm_peak"].items()}
    for res in results:
        add_mfu(res, peaks)
    settings = {"rounds": args.rounds, "pool": args.pool, "data": source, "models": sizes,
                "train_pairs": "/".join(str(s["train_pairs"]) for s in sizes.values()),
                "eval_pairs": "/".join(str(s["eval_pairs"]) for s in sizes.values()),
                "chunk_pairs": CHUNK_PAIRS, "seed": SEED,
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
