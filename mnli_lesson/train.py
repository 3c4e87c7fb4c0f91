"""The training loop: AdamW, linear warm-up and decay, clipping, mixed precision, resumable.

Read ``train`` top to bottom: one loop over epochs and batches, an evaluation at the end of
each epoch, and, when a folder is given, a checkpoint at most every ``checkpoint_seconds``
(copied to CPU memory between two steps, written to disk by a background thread).
Accelerate places the model and batches on the device and runs the same code on several GPUs
under ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from mnli_lesson.config import LessonConfig
from mnli_lesson.encoding import EncodedPairs, LengthGroupedBatchSampler, make_collator
from mnli_lesson.errors import LessonError
from mnli_lesson.evaluate import autocast_for, predict, report
from mnli_lesson.results import EpochRecord, SplitScores, Step
from mnli_lesson.train_state import CheckpointWriter, load_checkpoint


@dataclass
class TrainResult:
    """What a run produced: per-step and per-epoch records, final scores, timing."""

    history: list[Step] = field(default_factory=list)
    """One record per optimiser step: step, epoch (fractional), loss, lr."""
    epochs: list[EpochRecord] = field(default_factory=list)
    """One record per epoch (epoch 0 = before training): accuracies, train loss, seconds."""
    final: dict[str, SplitScores] = field(default_factory=dict)
    """Per validation split: accuracy, per-class scores, confusion matrix (last epoch)."""
    wall_time_s: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    interrupted: bool = False
    resumed_from_step: int = 0


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
    # `accelerate launch --mixed_precision fp16` wraps forward passes in its own autocast;
    # adopt its choice, so that our gradient scaler is on whenever fp16 is.
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").strip().lower()
    if requested == "auto" and launcher in ("fp16", "bf16"):
        requested = launcher
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


def make_loader(train_set: EncodedPairs, tokenizer, cfg: LessonConfig,
                device: torch.device | None = None) -> DataLoader:
    """Training batches in the order ``train`` uses: length-grouped, seeded, padded per batch.

    The loader has its own generator: creating an iterator must not draw from the global
    RNG, or dropout masks after a resume would differ from an uninterrupted run's.
    """
    cuda = device is not None and device.type == "cuda"
    collate = make_collator(tokenizer, pad_to_multiple_of=8 if cuda else None)
    sampler = LengthGroupedBatchSampler(train_set.lengths, cfg.batch_size, seed=cfg.seed)
    return DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, pin_memory=cuda,
                      generator=torch.Generator().manual_seed(cfg.seed))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: LessonConfig, total_steps: int):
    """Linear warm-up over ``cfg.warmup_ratio`` of the steps, then linear decay to zero."""
    return get_scheduler("linear", optimizer,
                         num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
                         num_training_steps=total_steps)


def lr_schedule(cfg: LessonConfig, total_steps: int) -> list[float]:
    """The learning rate of every step of a run (what ``make_scheduler`` will do), for plots."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def make_accelerator(cpu: bool) -> Accelerator:
    """An Accelerator for this run. Its state is a per-process singleton, so a notebook that
    switches between CPU and GPU runs resets it (never under ``accelerate launch``)."""
    try:
        return Accelerator(cpu=cpu)
    except ValueError:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(cpu=cpu)


# --------------------------------------------------------------------------- one step


def train_step(model, batch: dict, optimizer, scheduler, scaler, *, device: torch.device,
               precision: str, max_grad_norm: float) -> torch.Tensor:
    """One optimiser step: forward, loss, backward, clip, step, schedule. Returns the loss
    (still on the device: reading it would make a GPU wait). The benchmark times this very
    function, so what it measures is what the lesson trains with."""
    with autocast_for(device, precision):
        loss = model(**batch).loss
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


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
    checkpoint_seconds: float | None = 120.0,
    first_checkpoint_step: int = 0,
    evaluate_before: bool = True,
    evaluate_each_epoch: bool = True,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Fine-tune ``model`` on ``train_set``; score ``eval_sets`` before training and after each
    epoch. Ctrl-C stops cleanly and returns what was recorded so far.

    ``evaluate_each_epoch=False`` scores only after the last epoch (for sweeps with many short
    epochs). With ``checkpoint_dir``, an existing checkpoint there is resumed from (the
    finished run's loss history equals an uninterrupted run's with the same seed), and one
    is taken once ``checkpoint_seconds`` have passed since the last (0: after every step;
    None: never by time) and at step ``first_checkpoint_step`` (0: none), but never after
    the last step: the caller saves a finished run. A checkpoint is copied to CPU memory
    between two steps and written by a background thread while training goes on.
    """
    epochs = cfg.epochs if epochs is None else epochs
    if len(train_set) == 0:
        raise LessonError("the training set is empty: check train_size and the data folder")
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    set_seed(cfg.seed)
    accelerator = make_accelerator(cpu=device.type == "cpu")
    # Mixed precision is ours, not Accelerate's: its setting is fixed once per process, and a
    # notebook compares fp32 and bf16 runs side by side. The scaler only acts for fp16.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # free speed on Ampere+, same accuracy
        torch.backends.cudnn.allow_tf32 = True
    loader = make_loader(train_set, tokenizer, cfg, device)
    sampler, collate = loader.batch_sampler, loader.collate_fn
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    # Under a launcher each of N processes takes every N-th batch and Accelerate steps the
    # schedule N times per step, so the schedule is laid out for one process's step count.
    scheduler = make_scheduler(optimizer, cfg, len(loader) * epochs)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    raw_model = accelerator.unwrap_model(model)
    steps_per_epoch = len(loader)  # this process's share
    total_steps = steps_per_epoch * epochs
    part = (accelerator.process_index, accelerator.num_processes)

    result = TrainResult(precision=precision, device=str(accelerator.device))
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    step, elapsed_before = 0, 0.0
    if folder is not None and (state := load_checkpoint(folder, raw_model, optimizer, scheduler)):
        step, elapsed_before = state["step"], state["elapsed"]
        result.history, result.epochs = state["history"], state["epochs"]
        result.resumed_from_step = step
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])

    def scores() -> dict[str, float]:
        """Score every validation split; keyword arguments for an EpochRecord."""
        for name, data in eval_sets.items():
            # Each process scores its share of the batches; the sum has every row once.
            probs = predict(raw_model, data, collate, cfg.eval_batch_size, precision, part)
            if accelerator.num_processes > 1:
                probs = accelerator.reduce(torch.from_numpy(probs).to(accelerator.device),
                                           "sum").cpu().numpy()
            result.final[name] = SplitScores.from_report(report(data.labels, probs))
        return {name.removeprefix("validation_"): s.accuracy for name, s in result.final.items()}

    if evaluate_before and step == 0 and eval_sets:
        result.epochs.append(EpochRecord(epoch=0, **scores()))

    run_started = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_started

    writer = CheckpointWriter(folder) \
        if folder is not None and accelerator.is_main_process else None
    last_checkpoint = time.perf_counter()

    def checkpoint_due() -> bool:
        if writer is None or step == total_steps:  # a finished run is saved by the caller
            return False
        if step == first_checkpoint_step:
            return True
        return checkpoint_seconds is not None \
            and time.perf_counter() - last_checkpoint >= checkpoint_seconds

    def checkpoint() -> None:
        nonlocal last_checkpoint
        _flush(pending, result.history, steps_per_epoch, bar)
        writer.save(raw_model, optimizer, scheduler,
                    {"step": step, "elapsed": elapsed(), "history": result.history,
                     "epochs": result.epochs, "scaler": scaler.state_dict()})
        last_checkpoint = time.perf_counter()

    # A model this small spends more time synchronising threads than computing; one thread
    # is faster, and much faster when other work shares the cores.
    threads = torch.get_num_threads()
    if device.type == "cpu" and sum(p.numel() for p in raw_model.parameters()) < 2_000_000:
        torch.set_num_threads(1)
    bar = tqdm(total=total_steps, initial=step, desc=desc,
               disable=not progress or not accelerator.is_main_process,
               dynamic_ncols=True)
    model.train()
    pending: list = []  # (step, loss, lr) not yet read from the device
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
                lr = scheduler.get_last_lr()[0]  # the rate this step uses (0 at step 1)
                loss = train_step(model, batch, optimizer, scheduler, scaler,
                                  device=accelerator.device, precision=precision,
                                  max_grad_norm=cfg.max_grad_norm)
                step += 1
                # Keep the loss on the device; reading it each step would stall a GPU.
                pending.append((step, loss, lr))
                if len(pending) == 20 or step % steps_per_epoch == 0:
                    _flush(pending, result.history, steps_per_epoch, bar)
                # An epoch's last step is checkpointed after its evaluation (below), so that
                # a resume from there never skips that epoch's record.
                if step % steps_per_epoch and checkpoint_due():
                    checkpoint()
            _flush(pending, result.history, steps_per_epoch, bar)
            seconds = time.perf_counter() - started
            losses = [h.loss for h in result.history if epoch < h.epoch <= epoch + 1]
            accuracies = scores() if evaluate_each_epoch or epoch + 1 == epochs else {}
            result.epochs.append(EpochRecord(
                epoch=epoch + 1, train_loss=sum(losses) / max(len(losses), 1),
                epoch_time_s=seconds, **accuracies))
            if checkpoint_due():
                checkpoint()
    except KeyboardInterrupt:
        _flush(pending, result.history, steps_per_epoch, bar)
        result.interrupted = True
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # report the training error, not a write's
                writer.wait()
        raise
    finally:
        bar.close()
        torch.set_num_threads(threads)
    if writer is not None:
        writer.wait()  # the last checkpoint is whole on disk before train() returns
    if eval_sets and not result.final and not result.interrupted:
        scores()  # resumed from a checkpoint taken after the last epoch
    result.wall_time_s = elapsed()
    model.eval()
    return result


def _flush(pending: list, history: list[Step], steps_per_epoch: int, bar) -> None:
    """Move buffered (step, loss, lr) into the history with one device sync."""
    if not pending:
        return
    values = torch.stack([loss for _, loss, _ in pending]).float().cpu().tolist()
    for (step, _, lr), loss in zip(pending, values, strict=True):
        history.append(Step(step=step, epoch=step / steps_per_epoch, loss=loss, lr=lr))
    bar.update(len(pending))
    bar.set_postfix(loss=f"{values[-1]:.3f}")
    pending.clear()
