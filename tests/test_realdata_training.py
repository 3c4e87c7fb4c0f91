"""The lesson's central claims, on real MNLI pairs with a real pre-trained encoder.

Uses ``../shared/data/mnli-sample`` and the ``all-MiniLM-L6-v2`` stand-in encoder (a BERT
with the DistilBERT vocabulary). Three runs share one set of data, seed and schedule:
full fine-tuning from pre-trained weights, the same with a frozen encoder, and the same
architecture from random weights. Required in CI; skipped elsewhere when the folders are absent.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mnli_lesson import experiments
from mnli_lesson.config import resolve_config
from mnli_lesson.experiments import RunSpec
from mnli_lesson.results import RunResult
from mnli_lesson.train import cpu_has_fast_bf16

# The `cpu` profile's own settings (2,000 pairs, 3 epochs, lr 5e-5, batch 32), so these tests
# check the very runs whose figures reports/ shows.
TRAIN_PAIRS = 2000
EVAL_PAIRS = 1000
EPOCHS = 3
LR = 5e-5
CHANCE = 1 / 3
# Two standard errors of an accuracy near chance on EVAL_PAIRS pairs: anything below could
# be luck.
ABOVE_CHANCE = CHANCE + 2 * math.sqrt(CHANCE * (1 - CHANCE) / EVAL_PAIRS)

pytestmark = pytest.mark.realdata
# Taken at collection, before any test can change it: the threads a plain run uses, so these
# runs compute exactly what `mnli-lesson compare` computed for reports/.
DEFAULT_THREADS = torch.get_num_threads()


@pytest.fixture(scope="module")
def prepared(shared_paths, tmp_path_factory):
    torch.set_num_threads(DEFAULT_THREADS)
    cfg = resolve_config(
        "cpu", data=str(shared_paths["data"]), model=str(shared_paths["model"]),
        train_size=TRAIN_PAIRS, eval_size=EVAL_PAIRS, epochs=EPOCHS, lr=LR,
        out_dir=str(tmp_path_factory.mktemp("realdata")),
    )
    prep = experiments.prepare(cfg)
    prep.eval_sets.pop("validation_mismatched")  # matched is what the claims are about
    return prep


def _run(prepared, spec: RunSpec) -> RunResult:
    planned = experiments.plan_run(spec, prepared.cfg, len(prepared.data.train))
    results, _ = experiments.run(planned, prepared, None, progress=False, keep_model=False)
    # Shown with `pytest -s` (and in CI logs on failure): what the claims were tested against.
    print(f"\n{spec.label}: matched accuracy {_matched(results):.3f}, "
          f"train time {results.wall_time_s:.0f} s")
    return results


@pytest.fixture(scope="module")
def pretrained(prepared):
    return _run(prepared, RunSpec("pretrained", "pre-trained", evaluate_each_epoch=False))


@pytest.fixture(scope="module")
def scratch(prepared):
    return _run(prepared, RunSpec("scratch", "from scratch", init="scratch",
                                  evaluate_each_epoch=False))


@pytest.fixture(scope="module")
def frozen(prepared):
    return _run(prepared, RunSpec("frozen", "frozen encoder", frozen=True,
                                  evaluate_each_epoch=False))


def _matched(results: RunResult) -> float:
    return results.accuracy("matched")


def test_pretrained_beats_scratch_by_15_points(pretrained, scratch):
    gap = _matched(pretrained) - _matched(scratch)
    assert gap >= 0.15, f"pre-trained {_matched(pretrained):.3f} vs scratch {_matched(scratch):.3f}"


def test_pretrained_loss_drops_below_scratch_within_the_first_epoch(pretrained, scratch):
    steps_per_epoch = math.ceil(TRAIN_PAIRS / 32)
    late_first_epoch = slice(2 * steps_per_epoch // 3, steps_per_epoch)  # its last third
    pre = np.mean([h.loss for h in pretrained.history[late_first_epoch]])
    scr = np.mean([h.loss for h in scratch.history[late_first_epoch]])
    # The mean of ~20 per-step losses wobbles by about 0.005; 0.01 is well clear of that.
    assert pre < scr - 0.01, f"pre-trained {pre:.3f} vs scratch {scr:.3f}"


def test_scratch_stays_near_the_uniform_guess(scratch):
    # With a few thousand pairs a random Transformer learns almost nothing: its loss stays
    # near ln 3, the loss of predicting 1/3 for every label.
    last = np.mean([h.loss for h in scratch.history[-20:]])
    assert abs(last - math.log(3)) < 0.1


def test_full_finetuning_beats_the_frozen_encoder(pretrained, frozen):
    assert _matched(pretrained) > _matched(frozen) + 0.05, (
        f"full {_matched(pretrained):.3f} vs frozen {_matched(frozen):.3f}")


def test_fine_tuned_model_beats_chance(pretrained, frozen):
    assert _matched(pretrained) > ABOVE_CHANCE
    # The frozen run is not held to this: the stand-in encoder was trained for mean-pooled
    # sentence embeddings, so the [CLS]/pooler vector its classification head reads carries
    # little NLI signal, and a head on it stays near chance with a few thousand pairs
    # (measured: see reports/finetune-vs-frozen). Its score must still be a real accuracy.
    assert 0.0 <= _matched(frozen) <= 1.0


def test_frozen_trains_only_the_head(pretrained, frozen):
    assert frozen.trainable_params < 0.01 * pretrained.trainable_params


def test_loss_histories_are_finite_and_complete(pretrained, scratch, frozen):
    for results in (pretrained, scratch, frozen):
        losses = results.losses()
        assert len(losses) == EPOCHS * math.ceil(TRAIN_PAIRS / 32)
        assert all(math.isfinite(x) for x in losses)


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason=(
    "this CPU has no native bf16 (AVX512-BF16/AMX): bf16 autocast is emulated and many "
    "times slower than fp32 here, so the lesson trains in fp32 on it"))
def test_bf16_reaches_fp32_accuracy(prepared, pretrained):
    import dataclasses

    bf16 = dataclasses.replace(prepared.cfg, precision="bf16")
    prep16 = dataclasses.replace(prepared, cfg=bf16)
    results = _run(prep16, RunSpec("pretrained-bf16", "pre-trained bf16",
                                   evaluate_each_epoch=False))
    assert results.precision == "bf16"
    assert abs(_matched(results) - _matched(pretrained)) < 0.04
