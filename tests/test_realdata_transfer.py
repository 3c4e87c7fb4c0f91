"""The built-in sample is MNLI to a model (issue 23): fine-tuned on the sample, the offline
recipe scores real MNLI pairs well above chance, and fine-tuned on 2,000 real pairs it scores
the sample's validation sets well above chance.

The sample-trained run is the lesson's own: the same settings and content fingerprint as
notebook 03's full fine-tuning and notebook 04's pre-trained run, trained here into the
session's results folder, so the notebooks (which run after these tests) reload it instead of
training it again. docs/SAMPLE_RECIPE.md gives the same runs over five seeds.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mnli_lesson import experiments
from mnli_lesson.config import resolve_config
from mnli_lesson.data import load_mnli, stratified_subset

pytestmark = pytest.mark.realdata
ROOT = Path(__file__).resolve().parent.parent
#: Both off-diagonal cells of the transfer table must reach this (chance: 1/3). Before the
#: sample was rewritten they were 36.0 % and 38.8 % (issue 23).
FLOOR = 0.45
#: Matched accuracy after one epoch of the sample-trained run (it was 33.4 % before).
EPOCH_ONE_FLOOR = 0.40


def _script():
    """scripts/transfer_sample.py, whose accuracy() and subset size the recorded tables used."""
    spec = importlib.util.spec_from_file_location("transfer_sample",
                                                  ROOT / "scripts" / "transfer_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(cfg):
    """The offline recipe's pre-trained run on ``cfg``'s data (reloaded when it exists)."""
    prepared = experiments.prepare(cfg)
    spec = experiments.specs_for("pretrained-vs-scratch", cfg)[0]
    planned = experiments.plan_run(spec, cfg, len(prepared.data.train))
    folder = Path(cfg.out_dir) / "transfer"
    folder.mkdir(parents=True, exist_ok=True)
    result, model = experiments.run(planned, prepared, folder, progress=False)
    assert model is not None
    return result, model, prepared


def _scores(model, prepared, other) -> dict[str, float]:
    script = _script()
    return {split: script.accuracy(
        model, prepared.tokenizer,
        stratified_subset(other.splits[split], script.SCORE_SIZE, script.SCORE_SEED),
        prepared.cfg.max_length) for split in ("validation_matched", "validation_mismatched")}


def test_trained_on_the_sample_it_reads_real_mnli(shared_paths):
    cfg = resolve_config("offline", out_dir=os.environ["MNLI_LESSON_OUT_DIR"])
    assert cfg.data == "sample"
    result, model, prepared = _train(cfg)
    scores = _scores(model, prepared, load_mnli(shared_paths["data"]))
    print(f"\nsample-trained: own matched {result.accuracy('matched'):.3f}; real pairs "
          f"{scores['validation_matched']:.3f} / {scores['validation_mismatched']:.3f}")
    assert scores["validation_matched"] >= FLOOR
    assert scores["validation_mismatched"] >= FLOOR
    # The curve Q3 reads: clearly above chance after the first epoch already (its first
    # epoch's mean training loss stays near ln 3: docs/SAMPLE_RECIPE.md).
    assert result.epochs[1].matched >= EPOCH_ONE_FLOOR


def test_trained_on_real_mnli_it_reads_the_sample(shared_paths, tmp_path):
    cfg = resolve_config("offline", data=str(shared_paths["data"]), out_dir=str(tmp_path))
    result, model, prepared = _train(cfg)
    scores = _scores(model, prepared, load_mnli("sample"))
    print(f"\nreal-trained: own matched {result.accuracy('matched'):.3f}; the sample "
          f"{scores['validation_matched']:.3f} / {scores['validation_mismatched']:.3f}")
    assert scores["validation_matched"] >= FLOOR
    assert scores["validation_mismatched"] >= FLOOR
