"""Tests for mnli_lesson.train on the tiny model: one step, determinism, records, schedule,
Ctrl-C, checkpoint resume, background checkpoints, and the hardware choices."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from transformers import get_scheduler

from mnli_lesson.config import resolve_config
from mnli_lesson.core import (
    EncodedPairs,
    encode_pairs,
    forward_inputs,
    make_collator,
    make_optimizer,
)
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.errors import LessonError
from mnli_lesson.models import build_model, load_tokenizer
from mnli_lesson.results import Step
from mnli_lesson.train import cpu_has_fast_bf16, pick_device, pick_precision, train
from mnli_lesson.train_state import CheckpointWriter, load_checkpoint, save_checkpoint

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
    sizes = {"train": cfg.train_size, **dict.fromkeys(SPLITS, cfg.eval_size)}  # 216, 36, 36
    return {name: encode_pairs(tokenizer, stratified_subset(data.splits[name], sizes[name],
                                                            cfg.seed),
                               cfg.max_length).restrict_to(accepted)
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
    return [h.loss for h in result.history]


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
    assert [h.step for h in baseline.history] == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    for h in baseline.history:
        assert isinstance(h, Step)
        assert h.epoch == pytest.approx(h.step / STEPS_PER_EPOCH)
        assert math.isfinite(h.loss) and h.loss > 0


def test_epoch_records(baseline):
    assert [e.epoch for e in baseline.epochs] == list(range(EPOCHS + 1))
    before = baseline.epochs[0]
    # accuracy before training, nothing else
    assert before.train_loss is None and before.epoch_time_s is None
    for record in baseline.epochs:
        assert all(0.0 <= acc <= 1.0 for acc in (record.matched, record.mismatched))
    for record in baseline.epochs[1:]:
        assert record.epoch_time_s > 0
        assert math.isfinite(record.train_loss) and record.train_loss > 0


def test_validation_loss_is_recorded_before_within_and_after_epochs(baseline):
    # Before training, at 1/4, 1/2 and 3/4 of the first epoch, and at every epoch's end.
    assert [v.step for v in baseline.validation] == [0, 4, 7, 10, 14, 28]
    for v in baseline.validation:
        assert math.isfinite(v.loss) and v.loss > 0 and 0 <= v.accuracy <= 1
        assert v.epoch == pytest.approx(v.step / STEPS_PER_EPOCH)
    ends = [v for v in baseline.validation if v.step % STEPS_PER_EPOCH == 0]
    for record, point in zip(baseline.epochs, ends, strict=True):
        assert (record.matched_loss, record.matched) == (point.loss, point.accuracy)
        assert record.mismatched_loss is not None and record.mismatched_loss > 0
    assert baseline.final["validation_matched"].loss == baseline.validation[-1].loss


def test_scoring_during_training_does_not_change_training(cfg, tokenizer, datasets, baseline):
    """Scoring draws no random numbers: a run scored only at its end trains identically."""
    plain = run(cfg, tokenizer, datasets, evaluate_before=False, evaluate_each_epoch=False)
    assert plain.history == baseline.history
    assert plain.validation == []  # sweep points keep only their final scores


def test_train_loss_is_the_mean_of_the_epoch_steps(baseline):
    first = losses(baseline)[:STEPS_PER_EPOCH]
    assert baseline.epochs[1].train_loss == pytest.approx(sum(first) / len(first))


def test_final_scores_and_run_facts(baseline):
    assert set(baseline.final) == set(SPLITS)
    assert baseline.final["validation_matched"].n == 36
    assert not baseline.interrupted and baseline.resumed_from_step == 0
    assert baseline.precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert baseline.wall_time_s > 0


def test_lr_warms_up_then_decays_to_zero(cfg, baseline):
    from mnli_lesson.train import lr_schedule

    lrs = [h.lr for h in baseline.history]
    warmup = math.ceil(cfg.warmup_ratio * len(lrs))
    peak = lrs.index(max(lrs))
    assert lrs[0] == 0.0  # each record holds the rate its step used: warm-up starts at zero
    assert peak == warmup  # the first step after warm-up runs at the peak
    assert max(lrs) == pytest.approx(cfg.lr)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1], strict=True))
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1:], strict=True))
    assert lrs == pytest.approx(lr_schedule(cfg, len(lrs)))  # what notebook 03 plots


def test_frozen_training_changes_only_the_head(tokenizer, datasets):
    cfg = resolve_config("tiny", environ={}, epochs=1)
    model = build_model("tiny", frozen=True, seed=cfg.seed)
    before = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    run(cfg, tokenizer, datasets, model=model)
    # On a GPU machine the trained weights live on CUDA: compare on the CPU.
    after = {k: v.detach().cpu() for k, v in model.state_dict().items()}
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
    assert [h.step for h in result.history] == [1, 2, 3, 4]
    assert [e.epoch for e in result.epochs] == [0]


def checkpoint_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def resumed(cfg, tokenizer, datasets, tmp_path_factory):
    """A run checkpointed after every step (checkpoint_seconds=0), stopped by Ctrl-C during
    step 7 (last checkpoint: step 6), then resumed."""
    folder = tmp_path_factory.mktemp("checkpoints")
    model = interrupt_at(build_model("tiny", seed=cfg.seed), 7)
    stopped = run(cfg, tokenizer, datasets, model=model, checkpoint_dir=folder,
                  checkpoint_seconds=0)
    files_when_stopped = checkpoint_files(folder)
    finished = run(cfg, tokenizer, datasets, checkpoint_dir=folder, checkpoint_seconds=0)
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
    assert [h.step for h in finished.history] == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
    assert [e.epoch for e in finished.epochs] == list(range(EPOCHS + 1))
    # None after the last step (the caller saves a finished run); no temp files left behind.
    last = EPOCHS * STEPS_PER_EPOCH - 1
    assert checkpoint_files(folder) == ["latest.json", f"model-{last}.safetensors",
                                        f"state-{last}.pt"]


def test_resume_keeps_the_steps_before_the_checkpoint(resumed, baseline):
    _, _, finished, _ = resumed
    assert finished.history[:6] == baseline.history[:6]


def test_resumed_history_equals_an_uninterrupted_run(resumed, baseline):
    _, _, finished, _ = resumed
    assert finished.history == baseline.history
    assert finished.validation == baseline.validation  # kept in the checkpoint, not lost


def test_no_checkpoint_before_its_time(cfg, tokenizer, datasets, tmp_path):
    """The default: at most one per checkpoint_seconds; a short run writes none at all."""
    run(cfg, tokenizer, datasets, epochs=1, checkpoint_dir=tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_first_checkpoint_step_at_an_epoch_end_keeps_that_epoch(cfg, tokenizer, datasets,
                                                                  baseline, tmp_path):
    """A checkpoint at an epoch's last step is taken after that epoch's evaluation, so the
    resumed run has every epoch record."""
    model = interrupt_at(build_model("tiny", seed=cfg.seed), STEPS_PER_EPOCH + 3)
    stopped = run(cfg, tokenizer, datasets, model=model, checkpoint_dir=tmp_path,
                  checkpoint_seconds=None, first_checkpoint_step=STEPS_PER_EPOCH)
    assert stopped.interrupted
    assert checkpoint_files(tmp_path) == ["latest.json", f"model-{STEPS_PER_EPOCH}.safetensors",
                                          f"state-{STEPS_PER_EPOCH}.pt"]
    finished = run(cfg, tokenizer, datasets, checkpoint_dir=tmp_path, checkpoint_seconds=None,
                   first_checkpoint_step=STEPS_PER_EPOCH)
    assert finished.resumed_from_step == STEPS_PER_EPOCH
    assert finished.history == baseline.history
    assert [(e.epoch, e.matched, e.mismatched) for e in finished.epochs] == \
        [(e.epoch, e.matched, e.mismatched) for e in baseline.epochs]


def test_background_checkpoint_holds_the_state_of_its_step(tokenizer, datasets, tmp_path):
    """What is written is the state when save() was called, although the next step changes
    weights and optimiser moments in place while the writer may still be busy."""
    model = build_model("tiny", seed=0)
    optimizer = make_optimizer(model, 1e-3, 0.0)
    batch = make_collator(tokenizer)([datasets["train"][i] for i in range(16)])

    def step() -> None:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=4)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {i: {k: v.clone() for k, v in s.items()} for i, s in
               optimizer.state_dict()["state"].items()}
    writer = CheckpointWriter(tmp_path)
    writer.save(model, optimizer, scheduler,
                {"step": 1, "elapsed": 0.0, "history": [], "epochs": []})
    step()  # in place, possibly while the writer is still writing
    writer.wait()
    fresh = build_model("tiny", seed=1)
    fresh_optimizer = make_optimizer(fresh, 1e-3, 0.0)
    load_checkpoint(tmp_path, fresh, fresh_optimizer,
                    get_scheduler("linear", fresh_optimizer, num_warmup_steps=0,
                                  num_training_steps=4))
    assert all(torch.equal(v, weights[k]) for k, v in fresh.state_dict().items())
    loaded = fresh_optimizer.state_dict()["state"]
    assert loaded.keys() == moments.keys()
    assert all(torch.equal(loaded[i][k], v) for i, s in moments.items() for k, v in s.items())


def test_a_failed_background_write_is_raised(tmp_path):
    model = build_model("tiny")
    optimizer = make_optimizer(model, 1e-3, 0.0)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=4)
    (tmp_path / "taken").write_text("a file where the folder should be", encoding="utf-8")
    writer = CheckpointWriter(tmp_path / "taken")
    writer.save(model, optimizer, scheduler,
                {"step": 1, "elapsed": 0.0, "history": [], "epochs": []})
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # the error is raised once


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


def test_a_step_by_hand_has_the_loss_train_records(cfg, tokenizer, datasets):
    """Notebook 03 makes one step by hand; its loss is the first one train() records."""
    from accelerate.utils import set_seed

    from mnli_lesson.core import autocast_for
    from mnli_lesson.train import make_loader, pick_device, pick_precision

    model = build_model("tiny", seed=cfg.seed)
    batch = next(iter(make_loader(datasets["train"], tokenizer, cfg)))
    set_seed(cfg.seed)  # what train() does before its first step: same dropout masks
    model.train()
    device = pick_device(cfg.device)
    # train()'s precision too: bf16 autocast on a CPU with native bf16 (AVX512-BF16, AMX).
    with autocast_for(device, pick_precision(cfg.precision, device)):
        by_hand = model(**batch).loss.item()
    recorded = run(cfg, tokenizer, datasets, epochs=1).history[0].loss
    assert by_hand == pytest.approx(recorded, rel=1e-6)
    assert by_hand != pytest.approx(run(dataclasses.replace(cfg, seed=cfg.seed + 1), tokenizer,
                                        datasets, epochs=1).history[0].loss, rel=1e-6)


def test_lr_schedule_warms_up_from_zero_then_decays(cfg):
    from mnli_lesson.train import lr_schedule

    rates = lr_schedule(cfg, 100)
    warm = math.ceil(cfg.warmup_ratio * 100)
    assert rates[0] == 0 and rates[warm] == pytest.approx(cfg.lr)
    assert max(rates) == pytest.approx(cfg.lr) and rates[-1] < rates[warm] / 10


@pytest.mark.parametrize("launcher, expected", [("bf16", "bf16"), ("no", None)])
def test_the_launchers_mixed_precision_is_adopted(monkeypatch, launcher, expected):
    """`accelerate launch --mixed_precision X` sets ACCELERATE_MIXED_PRECISION; `auto` follows
    it, so the gradient scaler is on exactly when fp16 autocast is."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launcher)
    got = pick_precision("auto", torch.device("cpu"))
    assert got == (expected or ("bf16" if cpu_has_fast_bf16() else "fp32"))


def test_fp16_from_the_launcher_on_a_cpu_is_one_line(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(LessonError, match="fp16 needs a GPU"):
        pick_precision("auto", torch.device("cpu"))


def test_a_diverged_run_stops_with_one_line(cfg, tokenizer, datasets):
    """A loss that becomes NaN stops the run, naming the step and what to lower, instead of
    training on and reporting a model that gives every label a third."""
    wild = dataclasses.replace(cfg, lr=1e6)
    expected = (r"training diverged: the loss became nan at step \d+; "
                r"lower this run's learning rate \(its peak was 1e\+06\)")
    with pytest.raises(LessonError, match=expected):
        run(wild, tokenizer, datasets)


def test_results_files_never_hold_nan(tmp_path):
    from mnli_lesson.store import write_json

    with pytest.raises(LessonError, match="NaN or Infinity"):
        write_json(tmp_path / "r.json", {"loss": float("nan")})
    with pytest.raises(LessonError, match="NaN or Infinity"):
        write_json(tmp_path / "r.json", {"loss": [1.0, float("inf")]})
    assert not (tmp_path / "r.json").exists()
