"""The training loop: AdamW, linear warm-up and decay, clipping, mixed precision, resumable.

Read ``train`` top to bottom: one loop over epochs and batches, an evaluation at the end of
each epoch, and a checkpoint every ``checkpoint_every`` steps when a folder is given.
Accelerate places the model and batches on the device and runs the same code on several GPUs
under ``accelerate launch``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_model, save_model
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from mnli_lesson.config import LessonConfig
from mnli_lesson.encoding import EncodedPairs, LengthGroupedBatchSampler, make_collator
from mnli_lesson.errors import LessonError
from mnli_lesson.evaluate import autocast_for, predict, report


@dataclass
class TrainResult:
    """What a run produced: per-step and per-epoch records, final scores, timing."""

    history: list[dict] = field(default_factory=list)
    """One record per optimiser step: step, epoch (fractional), loss, lr."""
    epochs: list[dict] = field(default_factory=list)
    """One record per epoch (epoch 0 = before training): accuracies, train loss, seconds."""
    final: dict[str, dict] = field(default_factory=dict)
    """Per validation split: accuracy, per-class scores, confusion matrix (last epoch)."""
    wall_time_s: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    interrupted: bool = False
    resumed_from_step: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- hardware choices


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16 or AMX).

    Elsewhere bf16 is emulated and can be tens of times *slower* than fp32, so it stays off.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(requested: str) -> torch.device:
    """``auto`` -> cuda when present; asking for cuda without one is an error, not a fallback."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise LessonError(
            "device 'cuda' was asked for but no GPU is visible: use device=auto or cpu")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_precision(requested: str, device: torch.device) -> str:
    """bf16 where the hardware runs it natively, fp16 on older GPUs (T4), else fp32."""
    if requested != "auto":
        if requested == "fp16" and device.type != "cuda":
            raise LessonError("fp16 needs a GPU; on a CPU use precision=bf16 or fp32")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over trainable parameters; no decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
             else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel updates all tensors in one pass (CPU and CUDA since torch 2.4)
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr)


def _accelerator(cpu: bool) -> Accelerator:
    """An Accelerator for this run. Its state is a per-process singleton, so a notebook that
    switches between CPU and GPU runs resets it (never under ``accelerate launch``)."""
    try:
        return Accelerator(cpu=cpu)
    except ValueError:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(cpu=cpu)


# --------------------------------------------------------------------------- checkpoints


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    """Weights (safetensors) + optimiser/scheduler/RNG state, then a pointer naming them.

    Files carry the step in their names and ``latest.json`` is replaced last, so a crash at
    any moment leaves the previous complete checkpoint as the one a resume will use.
    """
    folder.mkdir(parents=True, exist_ok=True)
    step = state["step"]
    _atomic_write(folder / f"model-{step}.safetensors", lambda p: save_model(model, str(p)))
    payload = {**state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng_cpu": torch.get_rng_state(),
               "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    _atomic_write(folder / f"state-{step}.pt", lambda p: torch.save(payload, p))
    _atomic_write(folder / "latest.json",
                  lambda p: p.write_text(json.dumps({"step": step}), encoding="utf-8"))
    for old in [*folder.glob("model-*.safetensors"), *folder.glob("state-*.pt")]:
        if old.stem.split("-")[-1] != str(step):  # keep only the newest pair
            old.unlink(missing_ok=True)


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict | None:
    """Restore the newest complete checkpoint in ``folder``; None when there is none."""
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return None
    try:
        step = json.loads(pointer.read_text(encoding="utf-8"))["step"]
        load_model(model, str(folder / f"model-{step}.safetensors"))
        state = torch.load(folder / f"state-{step}.pt", weights_only=True)  # no pickled code
    except Exception as err:  # damaged, foreign or unsafe files: never trust them
        raise LessonError(
            f"checkpoint in {folder} cannot be loaded ({type(err).__name__}): delete that "
            "folder to start the run afresh") from None
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    torch.set_rng_state(state.pop("rng_cpu"))
    cuda_states = state.pop("rng_cuda")
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    return state


# --------------------------------------------------------------------------- the loop


def train(
    model: torch.nn.Module,
    tokenizer,
    train_set: EncodedPairs,
    eval_sets: dict[str, EncodedPairs],
    cfg: LessonConfig,
    *,
    epochs: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    evaluate_before: bool = True,
    evaluate_each_epoch: bool = True,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Fine-tune ``model`` on ``train_set``; score ``eval_sets`` before training and after each
    epoch. Ctrl-C stops cleanly and returns what was recorded so far.

    ``evaluate_each_epoch=False`` scores only after the last epoch (for sweeps with many short
    epochs). With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every``
    steps and at the end of each epoch, and an existing one there is resumed from: the
    finished run's loss history equals an uninterrupted run's with the same seed.
    """
    epochs = cfg.epochs if epochs is None else epochs
    if len(train_set) == 0:
        raise LessonError("the training set is empty: check train_size and the data folder")
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    set_seed(cfg.seed)
    accelerator = _accelerator(cpu=device.type == "cpu")
    # Mixed precision is ours, not Accelerate's: its setting is fixed once per process, and a
    # notebook compares fp32 and bf16 runs side by side. The scaler only acts for fp16.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # free speed on Ampere+, same accuracy
        torch.backends.cudnn.allow_tf32 = True
    collate = make_collator(tokenizer, pad_to_multiple_of=8 if device.type == "cuda" else None)
    sampler = LengthGroupedBatchSampler(train_set.lengths, cfg.batch_size, seed=cfg.seed)
    # Its own generator: creating an iterator must not draw from the global RNG, or dropout
    # masks after a resume would differ from an uninterrupted run's.
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * epochs
    scheduler = get_scheduler("linear", optimizer,
                              num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    raw_model = accelerator.unwrap_model(model)

    result = TrainResult(precision=precision, device=str(accelerator.device))
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    step, elapsed_before = 0, 0.0
    if folder is not None and (state := load_checkpoint(folder, raw_model, optimizer, scheduler)):
        step, elapsed_before = state["step"], state["elapsed"]
        result.history, result.epochs = state["history"], state["epochs"]
        result.resumed_from_step = step
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])

    def scores(tag: int) -> dict:
        out = {}
        for name, data in eval_sets.items():
            probs = predict(raw_model, data, collate, cfg.eval_batch_size, precision)
            out[name] = report(data.labels, probs)
        result.final = out
        return {name: r["accuracy"] for name, r in out.items()}

    if evaluate_before and step == 0 and eval_sets:
        result.epochs.append({"epoch": 0, **scores(0)})

    run_started = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_started

    def checkpoint() -> None:
        if folder is not None and accelerator.is_main_process:
            save_checkpoint(folder, raw_model, optimizer, scheduler,
                            {"step": step, "elapsed": elapsed(), "history": result.history,
                             "epochs": result.epochs, "scaler": scaler.state_dict()})

    # A model this small spends more time synchronising threads than computing; one thread
    # is faster, and much faster when other work shares the cores.
    threads = torch.get_num_threads()
    if device.type == "cpu" and sum(p.numel() for p in raw_model.parameters()) < 2_000_000:
        torch.set_num_threads(1)
    bar = tqdm(total=total_steps, initial=step, desc=desc, disable=not progress,
               dynamic_ncols=True)
    model.train()
    pending: list = []
    try:
        for epoch in range(step // steps_per_epoch, epochs):
            done_in_epoch = step - epoch * steps_per_epoch
            batches = accelerator.skip_first_batches(loader, done_in_epoch) \
                if done_in_epoch else loader
            # A new, seeded batch order each epoch. Set it on the prepared loader: Accelerate
            # passes its own epoch counter down to the sampler when iteration starts.
            # (The sampler too: after a resume the skipping wrapper does not pass it down.)
            batches.set_epoch(epoch)
            sampler.set_epoch(epoch)
            started = time.perf_counter()
            for batch in batches:
                with autocast_for(accelerator.device, precision):
                    loss = model(**batch).loss
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                # Keep the loss on the device; reading it each step would stall a GPU.
                pending.append((step, loss.detach(), scheduler.get_last_lr()[0]))
                if len(pending) == 20 or step % steps_per_epoch == 0:
                    _flush(pending, result.history, steps_per_epoch, bar)
                if checkpoint_every and step % checkpoint_every == 0:
                    _flush(pending, result.history, steps_per_epoch, bar)
                    checkpoint()
            _flush(pending, result.history, steps_per_epoch, bar)
            seconds = time.perf_counter() - started
            losses = [h["loss"] for h in result.history if epoch < h["epoch"] <= epoch + 1]
            record = {"epoch": epoch + 1, "train_loss": sum(losses) / max(len(losses), 1),
                      "epoch_time_s": seconds}
            if evaluate_each_epoch or epoch + 1 == epochs:
                record.update(scores(epoch + 1))
            result.epochs.append(record)
            checkpoint()
    except KeyboardInterrupt:
        _flush(pending, result.history, steps_per_epoch, bar)
        result.interrupted = True
    finally:
        bar.close()
        torch.set_num_threads(threads)
    if eval_sets and not result.final and not result.interrupted:
        scores(epochs)  # resumed from a checkpoint taken after the last epoch
    result.wall_time_s = elapsed()
    model.eval()
    return result


def _flush(pending: list, history: list[dict], steps_per_epoch: int, bar) -> None:
    """Move buffered (step, loss, lr) into the history with one device sync."""
    if not pending:
        return
    values = torch.stack([loss for _, loss, _ in pending]).float().cpu().tolist()
    for (step, _, lr), loss in zip(pending, values, strict=True):
        history.append({"step": step, "epoch": step / steps_per_epoch, "loss": loss, "lr": lr})
    bar.update(len(pending))
    bar.set_postfix(loss=f"{values[-1]:.3f}")
    pending.clear()
