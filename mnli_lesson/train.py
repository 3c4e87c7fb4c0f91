"""The course engine's training: the lesson's loop (``core.train``) with what a long run needs.

``core.train`` is the loop the notebooks teach. ``train`` here runs that same loop and adds,
through one ``core.Callback``: a per-step record of loss and learning rate (read from the
device 20 steps at a time), a progress bar, scoring before training and after each epoch,
checkpoints (copied to CPU memory between two steps, written by a background thread) and
exact resume from them, Ctrl-C that keeps what was recorded, and Accelerate, which places the
model and batches on the device and shards batches under ``accelerate launch``.
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

from mnli_lesson import core
from mnli_lesson.config import LessonConfig
from mnli_lesson.core import EncodedPairs, make_scheduler
from mnli_lesson.errors import LessonError
from mnli_lesson.evaluate import report
from mnli_lesson.results import EpochRecord, SplitScores, Step, ValidationPoint
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
    validation: list[ValidationPoint] = field(default_factory=list)
    """Validation loss and accuracy (matched) before training, within epoch 1, each epoch."""
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


def lr_schedule(cfg: LessonConfig, total_steps: int) -> list[float]:
    """The learning rate of every step of a run (what ``make_scheduler`` will do), for plots."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, total_steps, cfg.warmup_ratio)
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


def make_loader(train_set: EncodedPairs, tokenizer, cfg: LessonConfig,
                device: torch.device | None = None) -> DataLoader:
    """``core.make_loader`` with this configuration (pinned memory, multiples of 8 on GPUs)."""
    cuda = device is not None and device.type == "cuda"
    return core.make_loader(train_set, tokenizer, cfg.batch_size, cfg.seed,
                            pad_to_multiple_of=8 if cuda else None, pin_memory=cuda)


# --------------------------------------------------------------------------- the engine

#: Times the matched split is scored within the first epoch (at 1/4, 1/2, 3/4 of it): that is
#: where curves move most, and where a run that over-fits early would show it. Scoring time is
#: left out of the epoch times. Notebooks 03 and 04 say "three times": keep them in step.
FIRST_EPOCH_SCORINGS = 3


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
    """Fine-tune ``model`` with ``core.train``; score ``eval_sets`` before training and after
    each epoch. Ctrl-C stops cleanly and returns what was recorded so far.

    ``evaluate_each_epoch=False`` scores only after the last epoch (sweeps). With
    ``checkpoint_dir``, a checkpoint there is resumed from (the finished run's history equals
    an uninterrupted run's), and one is taken once ``checkpoint_seconds`` have passed since the
    last (0: every step; None: never by time) and at step ``first_checkpoint_step`` (0: none),
    never after the last step: the caller saves a finished run.
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
    optimizer = core.make_optimizer(model, cfg.lr, cfg.weight_decay)
    # Under a launcher each of N processes takes every N-th batch and Accelerate steps the
    # schedule N times per step, so the schedule is laid out for one process's step count.
    scheduler = make_scheduler(optimizer, len(loader) * epochs, cfg.warmup_ratio)
    collate = loader.collate_fn
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    run = _Run(accelerator, accelerator.unwrap_model(model), optimizer, scheduler, scaler,
               eval_sets, collate, cfg, precision, len(loader), epochs, folder=folder,
               checkpoint_seconds=checkpoint_seconds,
               first_checkpoint_step=first_checkpoint_step,
               evaluate_each_epoch=evaluate_each_epoch)
    if folder is not None:
        run.resume_from(folder)
    if evaluate_before and run.step == 0 and eval_sets:
        run.result.epochs.append(EpochRecord(epoch=0, **run.scores()))
        run.record_validation()
    run.start_clock()  # scoring before training is not training time
    # A model this small spends more time synchronising threads than computing; one thread
    # is faster, and much faster when other work shares the cores.
    threads = torch.get_num_threads()
    if device.type == "cpu" and sum(p.numel() for p in run.model.parameters()) < 2_000_000:
        torch.set_num_threads(1)
    run.bar = tqdm(total=run.total_steps, initial=run.step, desc=desc, dynamic_ncols=True,
                   disable=not progress or not accelerator.is_main_process)
    try:
        core.train(model, loader, optimizer, scheduler, epochs=epochs, precision=precision,
                   max_grad_norm=cfg.max_grad_norm, scaler=scaler, start_step=run.step,
                   callbacks=[run])
    except KeyboardInterrupt:
        run.flush()
        run.result.interrupted = True
    except BaseException:
        if run.writer is not None:
            with contextlib.suppress(Exception):  # report the training error, not a write's
                run.writer.wait()
        raise
    finally:
        run.bar.close()
        torch.set_num_threads(threads)
    if run.writer is not None:
        run.writer.wait()  # the last checkpoint is whole on disk before train() returns
    if eval_sets and not run.result.final and not run.result.interrupted:
        run.scores()  # resumed from a checkpoint taken after the last epoch
    run.result.wall_time_s = run.elapsed()
    model.eval()
    return run.result


class _Run(core.Callback):
    """What the engine keeps beside the loop: records, scores, timing and checkpoints."""

    def __init__(self, accelerator, model, optimizer, scheduler, scaler, eval_sets, collate,
                 cfg: LessonConfig, precision: str, steps_per_epoch: int, epochs: int, *,
                 folder: Path | None, checkpoint_seconds: float | None,
                 first_checkpoint_step: int, evaluate_each_epoch: bool):
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.scheduler, self.scaler = scheduler, scaler
        self.eval_sets, self.collate = eval_sets, collate
        self.cfg, self.precision = cfg, precision
        self.steps_per_epoch, self.total_steps = steps_per_epoch, steps_per_epoch * epochs
        self.checkpoint_seconds = checkpoint_seconds
        self.first_checkpoint_step = first_checkpoint_step
        self.evaluate_each_epoch = evaluate_each_epoch
        # Under a launcher only the main process writes checkpoints.
        self.writer = CheckpointWriter(folder) \
            if folder is not None and accelerator.is_main_process else None
        self.result = TrainResult(precision=precision, device=str(accelerator.device))
        self.step, self.elapsed_before = 0, 0.0
        self.pending: list = []  # (step, loss, lr) not yet read from the device
        self.diverged: tuple[int, float] | None = None  # the first non-finite loss
        self.bar = None
        # Spread evenly over epoch 1; an epoch of a handful of steps (tiny data) would score
        # nearly every step, so short epochs are scored at their ends only.
        quarter = steps_per_epoch / (FIRST_EPOCH_SCORINGS + 1)
        self.scoring_steps = {round(quarter * k) for k in range(1, FIRST_EPOCH_SCORINGS + 1)} \
            if evaluate_each_epoch and steps_per_epoch > 2 * FIRST_EPOCH_SCORINGS else set()
        self.start_clock()

    def start_clock(self) -> None:
        """Training time, and the time since the last checkpoint, count from now."""
        self.started = self.last_checkpoint = self.epoch_started = time.perf_counter()

    # -- the loop's callbacks

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch_started = time.perf_counter()

    def on_step(self, step: int, loss: torch.Tensor, lr: float) -> None:
        self.step = step
        self.pending.append((step, loss, lr))  # reading it each step would stall a GPU
        if len(self.pending) == 20 or step % self.steps_per_epoch == 0:
            self.flush()
            self.stop_if_diverged()  # here every process flushes at the same steps
        if step in self.scoring_steps and "validation_matched" in self.eval_sets:
            paused = time.perf_counter()
            self.scores(only="validation_matched")
            self.record_validation()
            # Scoring is not training: the clocks of the run, the epoch and checkpoints skip it.
            pause = time.perf_counter() - paused
            self.started += pause
            self.epoch_started += pause
            self.last_checkpoint += pause
        # An epoch's last step is checkpointed after its evaluation, so that a resume from
        # there never skips that epoch's record.
        if step % self.steps_per_epoch and self.checkpoint_due():
            self.checkpoint()

    def on_epoch_end(self, epoch: int) -> None:
        self.flush()
        self.stop_if_diverged()
        seconds = time.perf_counter() - self.epoch_started
        losses = [h.loss for h in self.result.history if epoch - 1 < h.epoch <= epoch]
        last = epoch * self.steps_per_epoch == self.total_steps
        scored = self.scores() if self.evaluate_each_epoch or last else {}
        self.result.epochs.append(EpochRecord(
            epoch=epoch, train_loss=sum(losses) / max(len(losses), 1), epoch_time_s=seconds,
            **scored))
        if self.evaluate_each_epoch:
            self.record_validation()
        if self.checkpoint_due():
            self.checkpoint()

    # -- records, scores, checkpoints

    def flush(self) -> None:
        """Move buffered (step, loss, lr) into the history with one device sync."""
        if not self.pending:
            return
        values = torch.stack([loss for _, loss, _ in self.pending]).float().cpu().tolist()
        for (step, _, lr), loss in zip(self.pending, values, strict=True):
            if not math.isfinite(loss) and self.diverged is None:
                self.diverged = (step, loss)
            self.result.history.append(Step(step=step, epoch=step / self.steps_per_epoch,
                                            loss=loss, lr=lr))
        if self.bar is not None:
            self.bar.update(len(self.pending))
            self.bar.set_postfix(loss=f"{values[-1]:.3f}")
        self.pending.clear()

    def stop_if_diverged(self) -> None:
        """A non-finite loss stops the run in one line: every later step would be NaN too, and
        a diverged run reported as a run says "ends at 1.100" of a model that learnt nothing.
        Under a launcher the processes agree first, so that none waits alone for the others."""
        diverged = self.diverged is not None
        if self.accelerator.num_processes > 1:
            flag = torch.tensor(float(diverged), device=self.accelerator.device)
            diverged = bool(self.accelerator.reduce(flag, "sum").item())
        if diverged:
            step, loss = self.diverged or (self.step, float("nan"))
            raise LessonError(
                f"training diverged: the loss became {loss} at step {step}; lower this run's "
                f"learning rate (its peak was {self.cfg.lr:g}) or its weight_decay "
                f"({self.cfg.weight_decay:g}) and run again")

    def scores(self, only: str | None = None) -> dict[str, float]:
        """Score every validation split (or ``only`` that one); keyword arguments for an
        EpochRecord: each split's accuracy and loss."""
        part = (self.accelerator.process_index, self.accelerator.num_processes)
        for name, data in self.eval_sets.items():
            if only is not None and name != only:
                continue
            # Each process scores its share of the batches; the sum has every row once.
            probs = core.predict(self.model, data, self.collate, self.cfg.eval_batch_size,
                                 self.precision, part)
            if self.accelerator.num_processes > 1:
                probs = self.accelerator.reduce(
                    torch.from_numpy(probs).to(self.accelerator.device), "sum").cpu().numpy()
            self.result.final[name] = SplitScores.from_report(report(data.labels, probs))
        scored = {}
        for name, split in self.result.final.items():
            scored[name.removeprefix("validation_")] = split.accuracy
            scored[name.removeprefix("validation_") + "_loss"] = split.loss
        return scored

    def record_validation(self) -> None:
        """Keep the matched split's latest loss and accuracy as a point of its curve."""
        matched = self.result.final.get("validation_matched")
        if matched is not None and matched.loss is not None:
            self.result.validation.append(ValidationPoint(
                step=self.step, epoch=self.step / self.steps_per_epoch, loss=matched.loss,
                accuracy=matched.accuracy))

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def resume_from(self, folder: Path) -> None:
        """Continue from the newest checkpoint in ``folder``, if there is one."""
        state = load_checkpoint(folder, self.model, self.optimizer, self.scheduler)
        if state:
            self.step, self.elapsed_before = state["step"], state["elapsed"]
            self.result.history, self.result.epochs = state["history"], state["epochs"]
            self.result.validation = state.get("validation", [])
            self.result.resumed_from_step = self.step
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])

    def checkpoint_due(self) -> bool:
        if self.writer is None or self.step == self.total_steps:  # the caller saves the end
            return False
        if self.step == self.first_checkpoint_step:
            return True
        return self.checkpoint_seconds is not None \
            and time.perf_counter() - self.last_checkpoint >= self.checkpoint_seconds

    def checkpoint(self) -> None:
        self.flush()
        self.writer.save(self.model, self.optimizer, self.scheduler,
                         {"step": self.step, "elapsed": self.elapsed(),
                          "history": self.result.history, "epochs": self.result.epochs,
                          "validation": self.result.validation,
                          "scaler": self.scaler.state_dict()})
        self.last_checkpoint = time.perf_counter()
