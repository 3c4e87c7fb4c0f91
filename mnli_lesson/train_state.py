"""Resumable training state: checkpoints that cost the training loop little.

A checkpoint is the model's weights (safetensors) and the optimiser, scheduler, scaler and
RNG states (``torch.save``, loaded with ``weights_only=True`` so it cannot run code), plus a
``latest.json`` pointer written last: a crash at any moment leaves the previous complete
checkpoint as the one a resume uses. ``CheckpointWriter`` copies the state to CPU memory
between two steps and writes it in a background thread.

Kept instead of Accelerate's ``save_state``/``load_state``, which write in the training thread:
``benchmarks/checkpoint_cost.py`` measured 561 ms blocked per synchronous checkpoint against
70 ms for this writer (MiniLM, 2-core CPU; ``benchmarks/README.md``), and ``save_state`` keeps
no record of the run (history, epochs) that an exact resume needs beside the weights.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_model, save_file

from mnli_lesson.errors import LessonError
from mnli_lesson.results import EpochRecord, Step, ValidationPoint
from mnli_lesson.store import atomic_write


def snapshot_checkpoint(model, optimizer, scheduler, state: dict,
                        buffers: dict | None = None) -> dict:
    """Everything a checkpoint holds, copied to CPU memory now, so that training can go on
    while it is written: weights, optimiser/scheduler state, RNG state, history.

    ``buffers``: CPU tensors kept from the previous snapshot, refilled in place (and new
    ones added); without it every tensor is a fresh copy.
    """
    # Copies, not references: the next step changes weights and moments in place. Tied
    # weights become two tensors; load_model fills both into the one shared parameter.
    snapshot = {
        "step": state["step"],
        "weights": _cpu_copy(model.state_dict(), buffers, ("weights",)),
        "state": {**state, "history": list(state["history"]), "epochs": list(state["epochs"]),
                  "validation": list(state.get("validation", [])),
                  "optimizer": _cpu_copy(optimizer.state_dict(), buffers, ("optimizer",)),
                  "scheduler": _cpu_copy(scheduler.state_dict()),
                  # The RNG state at this step boundary, not when the writer gets to it.
                  "rng_cpu": torch.get_rng_state(),
                  "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                  else []},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # the copies from the GPU were queued without waiting
    return snapshot


def write_checkpoint(folder: Path, snapshot: dict) -> None:
    """Weights (safetensors) + optimiser/scheduler/RNG state, then a pointer naming them.

    Files carry the step in their names and ``latest.json`` is replaced last, so a crash at
    any moment leaves the previous complete checkpoint as the one a resume will use.
    """
    folder.mkdir(parents=True, exist_ok=True)
    step = snapshot["step"]
    atomic_write(folder / f"model-{step}.safetensors",
                 lambda p: save_file(snapshot["weights"], str(p), metadata={"format": "pt"}))
    state = snapshot["state"]
    # Plain dicts: torch.load(weights_only=True) refuses to rebuild arbitrary classes.
    payload = {**state, "history": [asdict(h) for h in state["history"]],
               "epochs": [asdict(e) for e in state["epochs"]],
               "validation": [asdict(v) for v in state.get("validation", [])]}
    atomic_write(folder / f"state-{step}.pt", lambda p: torch.save(payload, p))
    atomic_write(folder / "latest.json", json.dumps({"step": step}))
    for old in [*folder.glob("model-*.safetensors"), *folder.glob("state-*.pt")]:
        if old.stem.split("-")[-1] != str(step):  # keep only the newest pair
            old.unlink(missing_ok=True)


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    """Snapshot and write a checkpoint now, in this thread (``CheckpointWriter`` does it in
    the background)."""
    write_checkpoint(folder, snapshot_checkpoint(model, optimizer, scheduler, state))


def _cpu_copy(value, buffers: dict | None = None, key: tuple = ()):
    """A deep copy with every tensor copied to contiguous CPU memory (as safetensors wants).

    With ``buffers``, a tensor goes into ``buffers[key]`` when one of its shape and dtype is
    there: refilling warm memory is several times faster than filling fresh pages, which is
    most of what a snapshot costs. A GPU tensor goes into pinned memory, without waiting.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if buffers is None:
            return value.to("cpu", copy=True, memory_format=torch.contiguous_format)
        buffer = buffers.get(key)
        if buffer is None or buffer.shape != value.shape or buffer.dtype != value.dtype:
            buffer = torch.empty(value.shape, dtype=value.dtype, pin_memory=value.is_cuda)
            buffers[key] = buffer
        return buffer.copy_(value, non_blocking=value.is_cuda)
    if isinstance(value, dict):
        return {k: _cpu_copy(v, buffers, (*key, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v, buffers, (*key, i)) for i, v in enumerate(value))
    return copy.deepcopy(value)


class CheckpointWriter:
    """Writes checkpoints into ``folder`` in a background thread, one at a time.

    ``save`` costs the step only the copy to CPU memory; the disk write overlaps the next
    steps. ``wait`` blocks until the write in flight is complete and raises its error. The
    CPU copy (weights and optimiser state, about 3x the weights under AdamW) is kept and
    refilled by the next ``save``: a run with checkpoints holds it until the writer goes.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._buffers: dict = {}  # reused only after wait(): the writer is done with them

    def save(self, model, optimizer, scheduler, state: dict) -> None:
        """Snapshot now; write in the background once the previous write has finished."""
        # Waiting first: never two writes at once, and never two snapshots in memory.
        self.wait()
        snapshot = snapshot_checkpoint(model, optimizer, scheduler, state, self._buffers)
        # Not a daemon: if the program ends mid-write, Python finishes the write first.
        self._thread = threading.Thread(target=self._write, args=(snapshot,),
                                        name="checkpoint-writer")
        self._thread.start()

    def _write(self, snapshot: dict) -> None:
        try:
            write_checkpoint(self.folder, snapshot)
        except BaseException as err:  # raised in the training thread by wait()
            self._error = err

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict | None:
    """Restore the newest complete checkpoint in ``folder``; None when there is none."""
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return None
    try:
        step = json.loads(pointer.read_text(encoding="utf-8"))["step"]
        load_model(model, str(folder / f"model-{step}.safetensors"))
        state = torch.load(folder / f"state-{step}.pt", weights_only=True)  # no pickled code
        # Inside the guard too: a checkpoint of another run (say a full fine-tuning's where
        # a frozen run's belongs) has optimiser state of another shape.
        optimizer.load_state_dict(state.pop("optimizer"))
        scheduler.load_state_dict(state.pop("scheduler"))
        torch.set_rng_state(state.pop("rng_cpu"))
        cuda_states = state.pop("rng_cuda")
        state["history"] = [Step(**h) for h in state["history"]]
        state["epochs"] = [EpochRecord(**e) for e in state["epochs"]]
        state["validation"] = [ValidationPoint(**v) for v in state.get("validation", [])]
    except Exception as err:  # damaged, foreign or unsafe files: never trust them
        raise LessonError(
            f"checkpoint in {folder} cannot be loaded ({type(err).__name__}): delete that "
            "folder to start the run afresh") from None
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    return state
