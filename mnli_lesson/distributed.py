"""Several processes training one run (``torchrun``, ``accelerate launch``): who does what.

Under a launcher every process trains its share of each epoch (Accelerate hands each one every
N-th batch) and scores its share of the validation pairs; the *main* process alone reads and
writes the results folder (results, weights, checkpoints), and the others wait for it where
files change. Run directly (the usual case, and every notebook) there is one process, every
function here is a no-op, and Accelerate's per-process state is left untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


def launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 when run directly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """True in the process that prints and writes (rank 0, or the only one)."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


@dataclass(frozen=True)
class Team:
    """This process's place among the launched ones, and the few collective steps we need."""

    size: int = 1
    index: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def wait(self) -> None:
        """Block until every process reaches this point."""
        if self.size > 1:
            torch.distributed.barrier()

    def broadcast(self, value: object) -> object:
        """The main process's ``value``, in every process."""
        if self.size == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


def team(cpu: bool) -> Team:
    """The launched processes, with their process group set up (gloo on CPUs, NCCL on GPUs).

    ``cpu`` must match the run's device: Accelerate only joins CPU processes into a group
    when asked for CPU (without it, ``torchrun`` on a machine without GPUs would quietly give
    N independent single-process runs).
    """
    if launched_processes() == 1:
        return Team()
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    return Team(state.num_processes, state.process_index, torch.device(state.device))
