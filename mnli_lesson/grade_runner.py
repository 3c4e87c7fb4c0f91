"""The runner: the process that executes one submission, inside the student's box.

It executes the prepared notebook with a time limit for the whole run and, right after each
check cell, runs one more cell that prints the exercise's answer as a plain JSON value
(``exercises.collect``). It writes, into the exchange folder, the executed notebook and
``run.json``: the collected lines, which cells' kernel replies were errors, and what stopped
the run. Everything it writes is a claim from inside the box; the grader judges the answers
against its own key and trusts nothing else it reads here for a score.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_OUTPUT_CHARS = 200_000  # per cell, in the executed copy the grader keeps


class CollectingClient(NotebookClient):
    """A ``NotebookClient`` that collects the answer after each check cell and records
    every reply status (a cell whose reply is an error failed, whatever it printed)."""

    def __init__(self, nb, probes: dict[int, tuple[str, str]], **kwargs):
        super().__init__(nb, **kwargs)
        self.probes = probes  # cell index -> (exercise, the answer's expression)
        self.collected: dict[str, dict] = {}
        self.error_cells: list[int] = []
        self._last_status = ""

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        self._last_status = (exec_reply or {}).get("content", {}).get("status", "")
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                store_history)
        if cell.cell_type == "code" and self._last_status == "error":
            self.error_cells.append(cell_index)
        if cell_index in self.probes:
            exercise, expression = self.probes[cell_index]
            source = ('__import__("mnli_lesson.exercises", fromlist=["collect"])'
                      f".collect({exercise!r}, {expression})")
            probe = nbformat.v4.new_code_cell(source)
            await super().async_execute_cell(probe, cell_index, store_history=False)
            self.nb.cells[cell_index] = cell  # nbclient stored the probe in its place
            self.collected[exercise] = {"status": self._last_status,
                                        "stdout": _stdout(probe)[-20_000:]}
        return cell


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _trim(nb) -> None:
    """Cap each cell's outputs, so a notebook that printed 50 MB stays readable."""
    for cell in nb.cells:
        size = 0
        for i, out in enumerate(cell.get("outputs", [])):
            size += len(json.dumps(out))
            if size > MAX_OUTPUT_CHARS:
                cell.outputs = [*cell.outputs[:i], nbformat.v4.new_output(
                    "stream", name="stdout", text="[outputs cut by the grader]\n")]
                break


def run(exchange: str, timeout: str, reference: str = "") -> int:
    """Execute ``exchange/submission.ipynb`` as planned in ``exchange/plan.json``."""
    folder = Path(exchange)
    plan = json.loads((folder / "plan.json").read_text())
    if reference and Path(reference).is_dir():  # the grader's results: cached, not retrained
        shutil.copytree(reference, plan["out_dir"], dirs_exist_ok=True)
    nb = nbformat.read(folder / "submission.ipynb", as_version=4)
    deadline = time.monotonic() + float(timeout)
    probes = {int(i): (e, x) for i, (e, x) in plan["probes"].items()}
    # allow_errors: a wrong answer or a crash must not stop the checks after it.
    client = CollectingClient(nb, probes, kernel_name="python3", allow_errors=True,
                              shutdown_kernel="immediate",
                              timeout_func=lambda cell: max(1.0, deadline - time.monotonic()),
                              resources={"metadata": {"path": plan["workdir"]}})
    stopped = ""
    try:
        client.execute()
    except CellTimeoutError:
        stopped = f"timed out after {float(timeout):g} s"
    except DeadKernelError:
        stopped = "the kernel died (out of memory, or the notebook ended its process)"
    except Exception as err:  # the row says what happened; the grader goes on
        stopped = f"{type(err).__name__}: {err}"
    _trim(nb)
    nbformat.write(nb, folder / "executed.ipynb")
    (folder / "run.json").write_text(json.dumps({
        "collected": client.collected, "error_cells": client.error_cells,
        "stopped": stopped[:500]}))
    return 0


if __name__ == "__main__":
    sys.exit(run(*sys.argv[1:]))
