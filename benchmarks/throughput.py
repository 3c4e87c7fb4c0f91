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
  ``core.training_step``, the function ``core.train`` (and so the engine) calls; one row per
  attention kernel.

Each round trains every variant for ``--steps`` optimiser steps (interleaved in chunks, in
rotating order) and scores the same evaluation pairs. Reported: median tokens/s and pairs/s,
medians of per-round ratios to ``baseline``, padding efficiency and model-FLOPs utilisation
against a GEMM peak measured in the same run. ``--device cuda`` runs the same comparison on a
GPU. Run ``python benchmarks/throughput.py --help``.

This file sets up the data, models and rounds; its pieces sit beside it:
``throughput_measure`` (clocks, token counts, GEMM peaks), ``throughput_variants`` (the
baseline loop and the engine), ``throughput_trainer`` (the two ``Trainer`` variants) and
``throughput_report`` (summaries and the markdown tables).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import DistilBertConfig, DistilBertModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from mnli_lesson.config import resolve_config
from mnli_lesson.core import encode_pairs, sorted_batches
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.models import load_tokenizer

from throughput_measure import Measurement, gemm_peak, has_fast_bf16, non_embedding_params
from throughput_report import ModelResult, add_mfu, markdown, summarise
from throughput_trainer import TrainerDefault, TrainerTuned, TrainerVariant
from throughput_variants import BASELINE_MAX_LENGTH, SEED, WARMUP_STEPS, Baseline, Engine, Variant

REPO = Path(__file__).resolve().parents[1]
MINILM_DIR = "models/all-MiniLM-L6-v2"
DATA_DIR = "data/mnli-sample"
CHUNK_STEPS = 5  # training is interleaved across variants in chunks of this many steps
MIN_STEPS = 20  # fewer optimiser steps per round than this make a round's ratio noisy


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
