"""What the throughput benchmark reports: per-variant summaries, MFU and the markdown tables."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import torch

from throughput_variants import Variant


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
