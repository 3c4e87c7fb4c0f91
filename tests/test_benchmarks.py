"""The benchmarks still run and still write what their readers rely on.

Smoke runs only: one optimiser step per variant, a handful of pairs. Their numbers mean
nothing and nothing here compares speeds (that is what the benchmarks themselves are for);
what is checked is that every variant trains and scores the same pairs and that the output
keeps the layout the README and the issue tracker quote
(``results[].variants[name].train.ratio_to_baseline``, ``machine.fast_bf16``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["baseline", "trainer_default", "trainer_tuned", "engine[eager]", "engine[sdpa]"]
QUICK_EVAL_PAIRS = 32  # throughput.py's --quick setting

pytestmark = pytest.mark.realdata


def run(script: str, *args: str, shared: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MNLI_LESSON_SHARED": str(shared), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_throughput_quick_run_measures_every_variant_on_the_same_pairs(shared_paths, tmp_path):
    out = tmp_path / "throughput.json"
    run("throughput.py", "--quick", "--out", str(out),
        shared=shared_paths["model"].parents[1])

    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["machine"]["fast_bf16"] in (True, False)
    assert payload["settings"]["quick"] is True
    assert payload["settings"]["data"] in ("shared/data/mnli-sample", "sample")  # no paths
    (result,) = payload["results"]
    assert result["model"] == "minilm"
    assert list(result["variants"]) == VARIANTS
    assert result["variants"]["baseline"]["train"]["ratio_to_baseline"] == 1.0
    for name, variant in result["variants"].items():
        assert variant["precision"] in ("fp32", "bf16"), name
        for phase in ("train", "eval"):
            summary = variant[phase]
            (measured,) = summary["rounds"]
            assert summary["ratio_to_baseline"] > 0, (name, phase)
            assert 0 < measured["real_tokens"] <= measured["padded_tokens"], (name, phase)
            # A quick run probes the GEMM peak for a fraction of a second, so the peak can come
            # out low on a shared 2-core VM (once: trainer_tuned's train MFU 1.23 in CI); the
            # quick run checks the order of magnitude, full runs report MFU below 1.
            assert 0 < summary["mfu"] < 2, (name, phase)
        # One optimiser step at the variant's own batch size (a length-grouped pool may
        # hand out its one short batch), and every variant scores the same pairs.
        assert 0 < variant["train"]["rounds"][0]["pairs"] <= variant["train_batch"], name
        assert variant["eval"]["rounds"][0]["pairs"] == QUICK_EVAL_PAIRS, name
    assert result["variants"]["trainer_default"]["train_batch"] == 8
    table = out.with_suffix(".md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in table for name in VARIANTS)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout (git archive)")
def test_checkpoint_cost_compares_an_exported_revision_with_this_checkout(shared_paths,
                                                                          tmp_path):
    out = tmp_path / "checkpoint_cost.json"
    run("checkpoint_cost.py", "--before", "HEAD", "--rounds", "1", "--train-pairs", "64",
        "--epochs", "1", "--out", str(out), shared=shared_paths["model"].parents[1])

    payload = json.loads(out.read_text(encoding="utf-8"))
    cells = payload["records"]
    assert sorted(cells) == ["after/with", "after/without", "before/with", "before/without"]
    for name, (record,) in cells.items():
        assert record["steps"] == 4, name  # 64 pairs in batches of 16, one epoch
        assert record["steps_per_s"] > 0, name
        assert record["checkpoints"] == 0, name  # the first checkpoint is due at step 50
    assert cells["before/with"][0]["package"] == "exported revision"
    assert cells["after/with"][0]["package"] == "this checkout"
    assert "| before | with |" in payload["table"]
