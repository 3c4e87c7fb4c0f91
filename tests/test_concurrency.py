"""Several processes writing into one --out: each ends with correct results, or one clear
line saying another process is training that run; never a torn checkpoint or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnli_lesson.errors import LessonError
from mnli_lesson.store import exclusive

COMMAND = [sys.executable, "-m", "mnli_lesson", "compare", "pretrained-vs-scratch",
           "--profile", "tiny", "--epochs", "2", "--train-size", "96", "--eval-size", "24",
           "--no-progress"]


def test_a_held_run_lock_refuses_a_second_holder(tmp_path):
    held = exclusive(tmp_path / ".run.lock", "training run-1")
    second = exclusive(tmp_path / ".run.lock", "training run-1")
    with held, pytest.raises(LessonError, match="another process is already training run-1"):
        second.__enter__()
    with exclusive(tmp_path / ".run.lock", "training run-1"):  # released: free again
        pass


def test_three_processes_into_one_out(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNLI_LESSON_")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    out = tmp_path / "out"
    procs = [subprocess.Popen([*COMMAND, "--out", str(out)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outcomes = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    for rc, _, err in outcomes:
        assert "Traceback" not in err, err
        if rc != 0:  # refused: one line that says why
            lines = err.strip().splitlines()
            assert rc == 2 and len(lines) == 1 and "another process is already" in lines[0], err
    assert any(rc == 0 for rc, _, _ in outcomes)
    results = sorted((out / "pretrained-vs-scratch").glob("*-*.json"))
    runs = [json.loads(p.read_text()) for p in results if not p.name.startswith("summary")]
    assert sorted(r["run"] for r in runs) == ["pretrained", "scratch"]
    assert all(not r["interrupted"] and r["epochs_planned"] == 2 for r in runs)
    assert not list((out / "pretrained-vs-scratch").glob("*.ckpt")), "no checkpoint left"
    assert not list(Path(out).rglob(".*.tmp")), "no temporary file left"
