"""Measuring for the throughput benchmark: timed blocks, token counts at the model, GEMM peaks."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from mnli_lesson.train import cpu_has_fast_bf16

CPU = torch.device("cpu")


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


def sync(device: torch.device) -> None:
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
    sync(device)
    before = counter.snapshot()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    yield
    sync(device)
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
            sync(device)
            stop = time.perf_counter() + left / (len(shapes) - i)
            while True:
                start = time.perf_counter()
                for _ in range(calls):
                    a @ b
                sync(device)
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
