"""Two processes train one comparison: ``torchrun --nproc_per_node 2`` (gloo on this CPU).

Checked against a single-process run of the same command: each process takes half the steps
of an epoch; before training (same seeded model, every validation pair scored once across
the two processes) both score exactly alike, and the first step (the same first batch, the
same dropout) has exactly the same loss; the scores recorded after training are what the
saved weights score when reloaded here; results, weights and the checkpoint are written and
removed once. The tiny model is random, so its final accuracies sit at chance in both runs:
agreement of trained accuracies is measured on the offline profile (see the README).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_model

from mnli_lesson import experiments
from mnli_lesson.config import resolve_config
from mnli_lesson.core import make_collator
from mnli_lesson.evaluate import evaluate
from mnli_lesson.results import RunResult

COMPARISON = "pretrained-vs-scratch"
EPOCHS = 4  # 7 steps per process per epoch: the step-50 checkpoint is written and removed
TINY = resolve_config("tiny", environ={}, epochs=EPOCHS)
ARGS = ["-m", "mnli_lesson", "compare", COMPARISON, "--profile", "tiny",
        "--epochs", str(EPOCHS), "--no-progress"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNLI_LESSON_")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def launch(command: list[str], out: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True,
                          env=child_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def runs(out: Path) -> dict[str, RunResult]:
    found = {}
    for path in sorted((out / COMPARISON).glob("*-*.json")):
        if not path.name.startswith("summary-"):
            result = RunResult.load(path)
            found[result.run] = result
    return found


def test_two_processes_share_each_epoch_and_write_once(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    launched = launch([sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc_per_node", "2", *ARGS], two)
    launch([sys.executable, *ARGS], one)

    # One process reports and writes: one table, one results file and weights per run,
    # no checkpoint, lock or temporary file left behind.
    assert launched.stdout.count("results:") == 1
    names = sorted(p.name for p in (two / COMPARISON).iterdir())
    shared_runs = runs(two)
    assert [n for n in names if n.endswith(".json") and not n.startswith("summary-")
            and n != "latest.json"] == sorted(f"{r.run}-{r.fingerprint}.json"
                                              for r in shared_runs.values())
    assert len([n for n in names if n.endswith(".safetensors")]) == 2
    assert not [n for n in names if n.endswith((".ckpt", ".lock", ".tmp")) or n.startswith(".")]

    batches = math.ceil(TINY.train_size / TINY.batch_size)  # 14
    prepared = experiments.prepare(TINY)
    collate = make_collator(prepared.tokenizer)
    for slug, single in runs(one).items():
        shared = shared_runs[slug]
        assert (shared.processes, single.processes) == (2, 1)
        assert shared.fingerprint != single.fingerprint  # another run, never reused for it
        assert len(single.history) == EPOCHS * batches
        assert len(shared.history) == EPOCHS * math.ceil(batches / 2)
        # Identical before the first update: the same model, every pair scored once.
        assert shared.epochs[0] == single.epochs[0]
        assert shared.history[0].loss == single.history[0].loss
        # The schedule is laid out for the whole run: warm-up to the peak, decay to ~0.
        peak = max(s.lr for s in single.history)
        assert abs(max(s.lr for s in shared.history) / peak - 1) < 0.02
        assert shared.history[-1].lr < 0.05 * TINY.lr
        # Gathered scores cover the whole validation split and are what the weights score.
        planned = next(p for p in experiments.plan(COMPARISON, TINY) if p.spec.slug == slug)
        model = experiments.build_for(planned.cfg, planned.spec)
        load_model(model, str(two / COMPARISON / f"{slug}-{shared.fingerprint}.safetensors"))
        for split, data in prepared.eval_sets.items():
            scores = shared.final[split]
            assert scores.n == len(data) == TINY.eval_size
            again = evaluate(model, data, collate, TINY.eval_batch_size)
            assert again["confusion_matrix"] == scores.confusion_matrix, (slug, split)

