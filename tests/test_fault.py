"""A hard crash mid-run: kill -9 a real training process, run it again, compare with a run that
was never interrupted.

Folder A: ``compare pretrained-vs-scratch`` is killed (SIGKILL) just after the first run wrote
a mid-epoch checkpoint, then the same command is run again to the end. Checkpoints are written
by a background thread, at most every ``experiments.CHECKPOINT_SECONDS`` and once at step
``experiments.FIRST_CHECKPOINT_STEP``: that step-based one is the checkpoint this short run
gets, at the same step on a fast or a slow machine. Folder B: the same
command, uninterrupted (it runs alongside A to save time). Both processes get one thread, so
their floating point is the same; the resumed run must then match B step for step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_model

from mnli_lesson import experiments
from mnli_lesson.checkpoints import build_tiny_checkpoint
from mnli_lesson.cli import _resolve, build_parser, main
from mnli_lesson.config import resolve_config

COMPARISON = "pretrained-vs-scratch"
TINY = resolve_config("tiny", environ={})
STEPS_PER_EPOCH = math.ceil(TINY.train_size / TINY.batch_size)  # 216 pairs: 14
# Enough epochs that the first checkpoint (step 50) lands inside the first run, mid-epoch,
# and one more so that whole epochs follow the resume point.
FIRST = experiments.FIRST_CHECKPOINT_STEP
assert FIRST % STEPS_PER_EPOCH, "the test wants a mid-epoch checkpoint"
EPOCHS = math.ceil((FIRST + 1) / STEPS_PER_EPOCH) + 1  # 5
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH  # 70
COMMAND = [sys.executable, "-m", "mnli_lesson", "compare", COMPARISON, "--profile", "tiny",
           "--epochs", str(EPOCHS), "--no-progress"]
TIMEOUT = 600


def child_env() -> dict[str, str]:
    """No MNLI_LESSON_* settings; one thread everywhere, so A and B compute identically."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNLI_LESSON_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false")
    return env


def start(out: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen([*COMMAND, "--out", str(out)], stdout=handle,
                                stderr=subprocess.STDOUT, env=child_env())


def latest_step(folder: Path) -> int:
    """The highest step any checkpoint pointer in ``folder`` names (0 when none)."""
    best = 0
    for pointer in folder.glob("*.ckpt/latest.json"):
        # FileNotFoundError: the run finished and removed its checkpoint meanwhile
        with contextlib.suppress(FileNotFoundError):
            best = max(best, json.loads(pointer.read_text(encoding="utf-8"))["step"])
    return best


def checkpoint_loads(ckpt: Path) -> str:
    """Whether the checkpoint that ``latest.json`` names loads the safe way ("ok" or why not)."""
    try:
        step = json.loads((ckpt / "latest.json").read_text(encoding="utf-8"))["step"]
        load_file(ckpt / f"model-{step}.safetensors")
        state = torch.load(ckpt / f"state-{step}.pt", weights_only=True)
        return "ok" if state["step"] == step else f"state says step {state['step']}"
    except Exception as err:  # report any failure as the test's message
        return f"{type(err).__name__}: {err}"


def results(out: Path) -> dict[str, dict]:
    folder = out / COMPARISON
    return {slug: json.loads(next(folder.glob(f"{slug}-*.json")).read_text(encoding="utf-8"))
            for slug in ("pretrained", "scratch")}


@pytest.fixture(scope="module")
def crash(tmp_path_factory) -> dict:
    build_tiny_checkpoint()  # once, before two processes would race to build it
    root = tmp_path_factory.mktemp("fault")
    a, b = root / "A", root / "B"
    uninterrupted = start(b, root / "B.log")
    victim = start(a, root / "A1.log")
    deadline = time.monotonic() + TIMEOUT
    seen = 0
    try:
        while victim.poll() is None and time.monotonic() < deadline:
            seen = latest_step(a / COMPARISON)
            if seen >= FIRST:
                victim.send_signal(signal.SIGKILL)  # a hard crash: no handler runs
                break
            time.sleep(0.02)
    finally:
        victim.kill()
        victim.wait()
    log = (root / "A1.log").read_text()
    assert victim.returncode == -signal.SIGKILL, f"not killed mid-run: {victim.returncode}\n{log}"

    after_crash = {"jsons": {}, "checkpoints": {}}
    for path in a.rglob("*.json"):
        try:
            after_crash["jsons"][str(path)] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            after_crash["jsons"][str(path)] = err
    for ckpt in (a / COMPARISON).glob("*.ckpt"):
        after_crash["checkpoints"][ckpt.name] = {"files": sorted(p.name for p in ckpt.iterdir()),
                                                 "loads": checkpoint_loads(ckpt)}
    # Leftovers a crash can leave (a half-written temp file) must never be read.
    (a / COMPARISON / ".pretrained-00000000.json.tmp99999").write_text('{"run": "pre')
    for ckpt in (a / COMPARISON).glob("*.ckpt"):
        (ckpt / f".model-{TOTAL_STEPS}.safetensors.tmp99999").write_bytes(b"half a file")

    rerun = subprocess.run([*COMMAND, "--out", str(a)], capture_output=True, text=True,
                           env=child_env(), timeout=TIMEOUT)
    assert uninterrupted.wait(timeout=TIMEOUT) == 0, (root / "B.log").read_text()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    return {"A": a, "B": b, "killed_after_step": seen, "after_crash": after_crash,
            "rerun": rerun}


def test_a_crash_leaves_only_whole_files(crash):
    after = crash["after_crash"]
    assert after["jsons"], "the crash left no checkpoint pointer behind"
    for path, parsed in after["jsons"].items():
        assert not isinstance(parsed, Exception), f"{path} is partial: {parsed}"
    assert after["checkpoints"], "the crash left no checkpoint behind"
    for name, found in after["checkpoints"].items():
        # The pointer names a complete pair (files of a later, unfinished checkpoint may lie
        # beside it, but nothing points at them), and it loads with weights_only=True.
        assert "latest.json" in found["files"], found
        assert found["loads"] == "ok", f"{name}: {found}"


def test_the_rerun_resumed_from_the_crash_checkpoint(crash):
    a = results(crash["A"])
    assert a["pretrained"]["resumed_from_step"] >= crash["killed_after_step"] > 0
    assert a["pretrained"]["resumed_from_step"] < TOTAL_STEPS
    assert a["scratch"]["resumed_from_step"] == 0
    for run in a.values():
        assert not run["interrupted"]
        assert [h["step"] for h in run["history"]] == list(range(1, TOTAL_STEPS + 1))
        assert [e["epoch"] for e in run["epochs"]] == list(range(EPOCHS + 1))
    assert not list((crash["A"] / COMPARISON).glob("*.ckpt")), "finished runs keep no checkpoint"
    assert "Traceback" not in crash["rerun"].stderr


def untimed(epochs: list[dict]) -> list[dict]:
    """Per-epoch records without their wall-clock time (accuracies, train loss)."""
    return [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in epochs]


def test_the_resumed_run_equals_the_uninterrupted_one(crash):
    a, b = results(crash["A"]), results(crash["B"])
    differences = []
    for slug in ("pretrained", "scratch"):
        for key, what in (("history", "per-step losses"), ("final", "final metrics")):
            if a[slug][key] != b[slug][key]:
                differences.append(f"{slug}: {what} differ")
        if untimed(a[slug]["epochs"]) != untimed(b[slug]["epochs"]):
            differences.append(f"{slug}: per-epoch accuracies differ")
        weights_a = load_file(next((crash["A"] / COMPARISON).glob(f"{slug}-*.safetensors")))
        weights_b = load_file(next((crash["B"] / COMPARISON).glob(f"{slug}-*.safetensors")))
        if not all(torch.equal(weights_a[k], weights_b[k]) for k in weights_b):
            differences.append(f"{slug}: final weights differ")
    assert not differences


# --------------------------------------------------------------------------- a hostile checkpoint


class _Payload:
    """Unpickling this object would create ``marker``: what a booby-trapped file could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def planted_checkpoint(tmp_path, clean_env):
    """A checkpoint where the next run will look for one, whose state file carries code."""
    argv = ["compare", COMPARISON, "--profile", "tiny", "--out", str(tmp_path / "out"),
            "--no-progress", "--epochs", "1", "--train-size", "48", "--eval-size", "12"]
    cfg = _resolve(build_parser().parse_args(argv))
    prepared = experiments.prepare(cfg)
    planned = experiments.plan(COMPARISON, cfg, len(prepared.data.train))[0]
    ckpt = tmp_path / "out" / COMPARISON / f"{experiments.run_stem(planned, prepared)}.ckpt"
    ckpt.mkdir(parents=True)
    save_model(experiments.build_for(cfg, planned.spec), str(ckpt / "model-1.safetensors"))
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "payload": _Payload(marker)}, ckpt / "state-1.pt")
    (ckpt / "latest.json").write_text(json.dumps({"step": 1}), encoding="utf-8")
    return argv, marker


def test_a_checkpoint_never_runs_pickled_code(planted_checkpoint):
    argv, marker = planted_checkpoint
    assert main(argv) == 2  # torch.load(weights_only=True) refuses; the CLI says so in a line
    assert not marker.exists(), "loading a checkpoint executed code from it"


def test_a_damaged_checkpoint_is_one_line(planted_checkpoint, capsys):
    argv, _ = planted_checkpoint
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
