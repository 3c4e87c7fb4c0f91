"""Tests for mnli_lesson.train on the tiny model: one step, determinism, records, schedule,
Ctrl-C, checkpoint resume, and the hardware choices."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import get_scheduler

from mnli_lesson.config import resolve_config
from mnli_lesson.data import load_mnli
from mnli_lesson.encoding import (
    EncodedPairs,
    encode_pairs,
    forward_inputs,
    load_tokenizer,
    make_collator,
)
from mnli_lesson.errors import LessonError
from mnli_lesson.models import build_model
from mnli_lesson.train import (
    cpu_has_fast_bf16,
    make_optimizer,
    pick_device,
    pick_precision,
    save_checkpoint,
    train,
)

EPOCHS = 2
STEPS_PER_EPOCH = 14  # 216 sample pairs in batches of 16
SPLITS = ("validation_matched", "validation_mismatched")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight parallel test runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cfg():
    return resolve_config("tiny", environ={}, epochs=EPOCHS)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


@pytest.fixture(scope="module")
def datasets(tokenizer, cfg):
    data = load_mnli("sample")
    accepted = forward_inputs(build_model("tiny"))
    return {name: encode_pairs(tokenizer, data.splits[name], cfg.max_length).restrict_to(accepted)
            for name in ("train", *SPLITS)}


def run(cfg, tokenizer, datasets, model=None, **kwargs):
    model = build_model("tiny", seed=cfg.seed) if model is None else model
    evals = {name: datasets[name] for name in SPLITS}
    try:
        return train(model, tokenizer, datasets["train"], evals, cfg, progress=False, **kwargs)
    except KeyboardInterrupt:  # must never reach pytest: it would stop the whole session
        pytest.fail("train() let KeyboardInterrupt escape")


def interrupt_at(model, step: int):
    """Raise KeyboardInterrupt in the forward pass of training step ``step``."""
    calls = {"n": 0}

    def hook(module, args, kwargs):
        if module.training:
            calls["n"] += 1
            if calls["n"] == step:
                raise KeyboardInterrupt

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return model


@pytest.fixture(scope="module")
def baseline(cfg, tokenizer, datasets):
    return run(cfg, tokenizer, datasets)


def losses(result) -> list[float]:
    return [h["loss"] for h in result.history]


# --------------------------------------------------------------------------- one step


def test_one_step_lowers_the_loss_on_its_batch(tokenizer, datasets):
    model = build_model("tiny", seed=0).eval()  # eval: no dropout, so losses compare exactly
    batch = make_collator(tokenizer)([datasets["train"][i] for i in range(16)])
    optimizer = make_optimizer(model, lr=1e-2, weight_decay=0.0)
    before = model(**batch).loss
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(**batch).loss
    assert math.isfinite(before.item())
    assert after.item() < before.item() - 1e-3


def test_optimizer_skips_frozen_weights_and_decays_only_matrices():
    model = build_model("tiny", frozen=True)
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.01)
    decay, no_decay = optimizer.param_groups
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable)
    assert all(p.ndim == 2 for p in decay["params"]) and decay["weight_decay"] == 0.01
    assert all(p.ndim == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_history(cfg, tokenizer, datasets, baseline):
    again = run(cfg, tokenizer, datasets)
    assert again.history == baseline.history


def test_different_seed_gives_a_different_history(cfg, tokenizer, datasets, baseline):
    other = resolve_config("tiny", environ={}, epochs=EPOCHS, seed=cfg.seed + 1)
    assert losses(run(other, tokenizer, datasets)) != losses(baseline)


# --------------------------------------------------------------------------- records


def test_history_has_one_record_per_step(baseline):
    assert [h["step"] for h in baseline.history] == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    for h in baseline.history:
        assert set(h) == {"step", "epoch", "loss", "lr"}
        assert h["epoch"] == pytest.approx(h["step"] / STEPS_PER_EPOCH)
        assert math.isfinite(h["loss"]) and h["loss"] > 0


def test_epoch_records(baseline):
    assert [e["epoch"] for e in baseline.epochs] == list(range(EPOCHS + 1))
    before = baseline.epochs[0]
    assert set(before) == {"epoch", *SPLITS}  # accuracy before training, nothing else
    for record in baseline.epochs:
        assert all(0.0 <= record[name] <= 1.0 for name in SPLITS)
    for record in baseline.epochs[1:]:
        assert record["epoch_time_s"] > 0
        assert math.isfinite(record["train_loss"]) and record["train_loss"] > 0


def test_train_loss_is_the_mean_of_the_epoch_steps(baseline):
    first = losses(baseline)[:STEPS_PER_EPOCH]
    assert baseline.epochs[1]["train_loss"] == pytest.approx(sum(first) / len(first))


def test_final_scores_and_run_facts(baseline):
    assert set(baseline.final) == set(SPLITS)
    assert baseline.final["validation_matched"]["n"] == 36
    assert not baseline.interrupted and baseline.resumed_from_step == 0
    assert baseline.precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert baseline.wall_time_s > 0
    assert baseline.to_dict()["history"] == baseline.history


def test_lr_warms_up_then_decays_to_zero(cfg, baseline):
    lrs = [h["lr"] for h in baseline.history]
    warmup = math.ceil(cfg.warmup_ratio * len(lrs))
    peak = lrs.index(max(lrs))
    assert peak == warmup - 1  # lr after the step that finishes warm-up
    assert max(lrs) == pytest.approx(cfg.lr)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1], strict=True))
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1:], strict=True))
    assert lrs[-1] == pytest.approx(0.0, abs=cfg.lr * 1e-6)


def test_frozen_training_changes_only_the_head(tokenizer, datasets):
    cfg = resolve_config("tiny", environ={}, epochs=1)
    model = build_model("tiny", frozen=True, seed=cfg.seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run(cfg, tokenizer, datasets, model=model)
    after = model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"pre_classifier", "classifier"}


def test_empty_training_set_is_refused(cfg, tokenizer):
    empty = EncodedPairs({"input_ids": [], "attention_mask": []}, [])
    with pytest.raises(LessonError, match="empty"):
        train(build_model("tiny"), tokenizer, empty, {}, cfg, progress=False)


# --------------------------------------------------------------------------- Ctrl-C and resume


def test_keyboard_interrupt_stops_cleanly(cfg, tokenizer, datasets):
    model = interrupt_at(build_model("tiny", seed=cfg.seed), 5)
    result = run(cfg, tokenizer, datasets, model=model)
    assert result.interrupted
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]
    assert [e["epoch"] for e in result.epochs] == [0]


def checkpoint_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def resumed(cfg, tokenizer, datasets, tmp_path_factory):
    """A run stopped by Ctrl-C during step 7 (last checkpoint: step 6), then resumed."""
    folder = tmp_path_factory.mktemp("checkpoints")
    model = interrupt_at(build_model("tiny", seed=cfg.seed), 7)
    stopped = run(cfg, tokenizer, datasets, model=model, checkpoint_dir=folder,
                  checkpoint_every=3)
    files_when_stopped = checkpoint_files(folder)
    finished = run(cfg, tokenizer, datasets, checkpoint_dir=folder, checkpoint_every=3)
    return stopped, files_when_stopped, finished, folder


def test_interrupted_run_leaves_its_last_checkpoint(resumed):
    stopped, files, _, _ = resumed
    assert stopped.interrupted
    assert len(stopped.history) == 6
    assert files == ["latest.json", "model-6.safetensors", "state-6.pt"]


def test_resume_continues_from_the_checkpoint(resumed):
    _, _, finished, folder = resumed
    assert finished.resumed_from_step == 6
    assert not finished.interrupted
    assert [h["step"] for h in finished.history] == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    assert [e["epoch"] for e in finished.epochs] == list(range(EPOCHS + 1))
    last = EPOCHS * STEPS_PER_EPOCH
    assert checkpoint_files(folder) == ["latest.json", f"model-{last}.safetensors",
                                        f"state-{last}.pt"]  # no temp files left behind


def test_resume_keeps_the_steps_before_the_checkpoint(resumed, baseline):
    _, _, finished, _ = resumed
    assert finished.history[:6] == baseline.history[:6]


def test_resumed_history_equals_an_uninterrupted_run(resumed, baseline):
    _, _, finished, _ = resumed
    assert finished.history == baseline.history


def test_checkpoint_leaves_unrelated_files_alone(tmp_path):
    model = build_model("tiny")
    optimizer = make_optimizer(model, 1e-3, 0.0)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=4)
    (tmp_path / "notes-v1.txt").write_text("mine", encoding="utf-8")
    save_checkpoint(tmp_path, model, optimizer, scheduler,
                    {"step": 2, "elapsed": 0.0, "history": [], "epochs": []})
    assert (tmp_path / "notes-v1.txt").is_file()


# --------------------------------------------------------------------------- hardware choices


def test_auto_precision_on_this_cpu():
    expected = "bf16" if cpu_has_fast_bf16() else "fp32"
    assert pick_precision("auto", torch.device("cpu")) == expected


def test_explicit_precision_is_kept_on_cpu():
    assert pick_precision("fp32", torch.device("cpu")) == "fp32"
    assert pick_precision("bf16", torch.device("cpu")) == "bf16"


def test_fp16_on_cpu_is_refused():
    with pytest.raises(LessonError, match="fp16"):
        pick_precision("fp16", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(LessonError, match="cuda"):
        pick_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_auto_device_is_cpu_without_a_gpu():
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
