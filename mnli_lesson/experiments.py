"""The lesson's named comparisons, run the same way from a notebook or the CLI.

Each run's results are written as JSON (atomically) under ``<out_dir>/<comparison>/``, named
by the run and its fingerprint (``identity.run_fingerprint``: settings and content). Running
a comparison again reuses finished runs with the same fingerprint, wherever another
comparison in the same ``out_dir`` trained them, resumes an interrupted one from its
checkpoint, and never overwrites a result made with other settings or other data. Under
``torchrun`` / ``accelerate launch`` the main process alone reads and writes these files
(``distributed``); the others train their share and wait for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from mnli_lesson import distributed, identity
from mnli_lesson.config import LessonConfig
from mnli_lesson.core import LABELS, EncodedPairs, encode_pairs, forward_inputs
from mnli_lesson.data import MnliData, load_mnli, require_two_labels, stratified_subset
from mnli_lesson.errors import LessonError
from mnli_lesson.models import (
    build_model,
    check_max_length,
    check_tokenizer_fits,
    check_unknown_share,
    load_tokenizer,
    parameter_counts,
)
from mnli_lesson.results import SPLITS, ComparisonResult, PartCount, RunResult
from mnli_lesson.store import atomic_write, digest, exclusive
from mnli_lesson.train import pick_device, train

EVAL_SPLITS = SPLITS
# Mid-run checkpoints, written in the background: at most one per CHECKPOINT_SECONDS (a crash
# loses at most that much training), plus one at FIRST_CHECKPOINT_STEP, so that even a short
# run has one (tests/test_fault.py kills a real run right after it appears).
CHECKPOINT_SECONDS = 120.0
FIRST_CHECKPOINT_STEP = 50
SWEEP = "data-efficiency"


@dataclass(frozen=True)
class RunSpec:
    """One training run of a comparison, before the configuration fills in its sizes."""

    slug: str
    """File-name-safe id, e.g. ``full`` or ``scratch-n1000``."""
    label: str
    """What plots and tables call it."""
    init: str = "pretrained"
    frozen: bool = False
    train_size: int | None = None
    """None: the configuration's ``train_size``."""
    epochs: int | None = None
    """None: the configuration's ``epochs``."""
    evaluate_each_epoch: bool = True
    lr_scale: float = 1.0
    """Its learning rate is the configuration's times this (a second rate, measured)."""


@dataclass(frozen=True)
class PlannedRun:
    """A run with every size decided: the one place sizes, epochs and steps are derived."""

    spec: RunSpec
    cfg: LessonConfig
    """The configuration it trains with (a frozen run's ``lr`` is the head's)."""
    train_size: int
    epochs: int

    @property
    def steps(self) -> int:
        return self.epochs * math.ceil(self.train_size / self.cfg.batch_size)


COMPARISONS: dict[str, tuple[RunSpec, ...]] = {
    "finetune-vs-frozen": (
        RunSpec("full", "full fine-tuning"),
        RunSpec("frozen", "frozen encoder (head only)", frozen=True),
    ),
    "pretrained-vs-scratch": (
        RunSpec("pretrained", "pre-trained"),
        RunSpec("scratch", "from scratch", init="scratch"),
    ),
    # Was the scratch run beaten by its learning rate? The same run at three times the rate
    # (fine-tuning rates are small on purpose; a random network is often trained faster).
    "scratch-learning-rate": (
        RunSpec("scratch", "from scratch", init="scratch"),
        RunSpec("scratch-lr3x", "from scratch, 3x learning rate", init="scratch", lr_scale=3.0),
    ),
}


def sweep_specs(cfg: LessonConfig) -> tuple[RunSpec, ...]:
    """Both initialisations at every size in ``cfg.sweep_sizes``.

    Small sets get more epochs, so that every point trains for at least
    ``cfg.sweep_min_steps`` optimiser steps: otherwise a small-data point would measure
    too few updates, not too little data.
    """
    specs = []
    for n in cfg.sweep_sizes:
        epochs = max(cfg.epochs, math.ceil(cfg.sweep_min_steps / math.ceil(n / cfg.batch_size)))
        for init in ("pretrained", "scratch"):
            specs.append(RunSpec(f"{init}-n{n}", f"{init} (n={n})", init=init, train_size=n,
                                 epochs=epochs, evaluate_each_epoch=False))
    return tuple(specs)


def specs_for(name: str, cfg: LessonConfig) -> tuple[RunSpec, ...]:
    if name == SWEEP:
        return sweep_specs(cfg)
    if name not in COMPARISONS:
        raise LessonError(
            f"unknown comparison {name!r}: choose one of {', '.join([*COMPARISONS, SWEEP])}"
        )
    return COMPARISONS[name]


def run_config(cfg: LessonConfig, spec: RunSpec) -> LessonConfig:
    """The configuration a run trains with: a frozen encoder's head gets ``cfg.head_lr``,
    and a run with ``lr_scale`` that multiple of the rate.

    A fresh linear head needs far larger steps than a pre-trained encoder tolerates: at
    fine-tuning rates (2e-5..5e-5) it barely moves in a few hundred steps.
    """
    lr = (cfg.head_lr if spec.frozen else cfg.lr) * spec.lr_scale
    return cfg if lr == cfg.lr else dataclasses.replace(cfg, lr=lr)


def plan(name: str, cfg: LessonConfig, n_train: int | None = None) -> list[PlannedRun]:
    """Every run of comparison ``name`` with its training size, epochs and steps.

    ``n_train``: pairs in the training split, so that ``train_size=None`` ("all") and sizes
    larger than the data can be resolved (and refused) before anything trains.
    """
    return [plan_run(spec, cfg, n_train) for spec in specs_for(name, cfg)]


def plan_run(spec: RunSpec, cfg: LessonConfig, n_train: int | None = None) -> PlannedRun:
    """One run of ``plan``: its size (refused when larger than ``n_train``) and epochs."""
    size = spec.train_size or cfg.train_size
    if n_train is not None and size is not None and size > n_train:
        setting = "sweep_sizes" if spec.train_size else "train_size"
        raise LessonError(f"{setting} asks for {size} training pairs but the data has only "
                          f"{n_train}: use at most {n_train} (train_size may also be 'all')")
    size = size if size is not None else (n_train or 0)
    return PlannedRun(spec, run_config(cfg, spec), size, spec.epochs or cfg.epochs)


# --------------------------------------------------------------------------- data, once


@dataclass
class Prepared:
    """Data, tokenizer and encoded validation sets shared by every run of a comparison."""

    cfg: LessonConfig
    data: MnliData
    tokenizer: object
    eval_sets: dict[str, EncodedPairs]
    eval_digest: str
    """Digest of the validation pairs scored (content, not path)."""
    model_digest: str
    """Digest of the checkpoint's configuration, weights and tokenizer files."""

    def train_frame(self, size: int | None):
        """The training pairs a run of ``size`` uses: a stratified, seeded subset."""
        return stratified_subset(self.data.train, size, seed=self.cfg.seed)

    def train_set(self, size: int | None, model: torch.nn.Module) -> EncodedPairs:
        """Those pairs tokenised once, with only the inputs ``model.forward`` accepts."""
        encoded = encode_pairs(self.tokenizer, self.train_frame(size), self.cfg.max_length)
        return encoded.restrict_to(forward_inputs(model))


def prepare(cfg: LessonConfig, data: MnliData | None = None) -> Prepared:
    """Load the data and tokenizer, encode the validation subsets once, digest both."""
    from mnli_lesson.checkpoints import resolve_checkpoint

    data = data if data is not None else load_mnli(cfg.data)
    require_two_labels(data.train, "the training split", "a model learns nothing from one label")
    source = resolve_checkpoint(cfg.model)
    tokenizer = load_tokenizer(cfg.model)
    check_unknown_share(tokenizer, [*data.train.premise[:500], *data.train.hypothesis[:500]])
    check_max_length(cfg, source)
    eval_sets, digests = {}, []
    for split in EVAL_SPLITS:
        frame = data.splits[split]
        size = None if cfg.eval_size is None else min(cfg.eval_size, len(frame))
        subset = stratified_subset(frame, size, cfg.seed)
        # An untrained model would score 1.0 or 0.0 on one label.
        require_two_labels(subset, split, "accuracy on one label measures nothing")
        digests.append(identity.frame_digest(subset))
        eval_sets[split] = encode_pairs(tokenizer, subset, cfg.max_length)
    return Prepared(cfg, data, tokenizer, eval_sets, digest(digests),
                    identity.model_digest(source))


# --------------------------------------------------------------------------- one run


def attention_for(cfg: LessonConfig) -> str | None:
    # On a CPU, eager and SDPA attention train MNLI-length batches at the same speed within
    # noise (benchmarks/README.md, 20-step rounds on a 2-core AVX2 CPU); eager stays, so that
    # CPU runs keep computing exactly what the recorded reports computed. On a GPU the
    # library's default (SDPA, fused kernels) is used.
    return "eager" if pick_device(cfg.device).type == "cpu" else None


def build_for(cfg: LessonConfig, spec: RunSpec) -> torch.nn.Module:
    return build_model(cfg.model, spec.init, frozen=spec.frozen, seed=cfg.seed,
                       attn_implementation=attention_for(cfg))


def _finished_twin(own: Path, fingerprint: str, want_each_epoch: bool) -> Path | None:
    """This run's own results file ``own`` if it exists (damaged: a one-line error), else a
    finished results file with the same fingerprint from another comparison beside it.

    Evaluating each epoch draws no random numbers, so a run that did is a superset of one
    that did not, and serves it too.
    """
    if own.exists():
        if RunResult.load(own).interrupted:
            raise LessonError(f"{own} holds an interrupted run: delete it and run again")
        return own
    out_root = own.parent.parent
    for candidate in sorted(out_root.glob(f"*/*-{fingerprint}.json")):
        try:
            found = RunResult.load(candidate)
        except LessonError:
            continue
        if not found.interrupted and (found.evaluate_each_epoch or not want_each_epoch):
            return candidate
    return None


def run_stem(planned: PlannedRun, prepared: Prepared) -> str:
    """``<slug>-<fingerprint>``: the name of a run's results, weights and checkpoint."""
    return f"{planned.spec.slug}-{_fingerprint(planned, prepared)}"


def _fingerprint(planned: PlannedRun, prepared: Prepared) -> str:
    spec, frame = planned.spec, prepared.train_frame(planned.train_size)
    return identity.run_fingerprint(
        planned.cfg, init=spec.init, frozen=spec.frozen, train_size=len(frame),
        epochs=planned.epochs, train_digest=identity.frame_digest(frame),
        eval_digest=prepared.eval_digest, model=prepared.model_digest,
        processes=distributed.launched_processes())


def _team(cfg: LessonConfig) -> distributed.Team:
    return distributed.team(cpu=pick_device(cfg.device).type == "cpu")


def run(planned: PlannedRun, prepared: Prepared, folder: Path | None, *, progress: bool = True,
        keep_model: bool = True) -> tuple[RunResult, torch.nn.Module | None]:
    """Train one run (or reload it) and return its results and, when at hand, the model."""
    spec = planned.spec
    fp = _fingerprint(planned, prepared)
    stem = f"{spec.slug}-{fp}"
    team = _team(planned.cfg)
    if folder is None:
        return _train(planned, prepared, None, fp, team, progress=progress,
                      keep_model=keep_model)
    # Under a launcher the main process alone locks, looks and decides; the others follow.
    lock = exclusive(folder / f".{stem}.lock", f"training {stem}") if team.is_main \
        else contextlib.nullcontext()
    with lock:
        # Checked again under the lock: another process may have just finished this run.
        twin = _finished_twin(folder / f"{stem}.json", fp, spec.evaluate_each_epoch) \
            if team.is_main else None
        twin = team.broadcast(twin)
        if twin is not None:
            return _reload(twin, folder / f"{stem}.json", planned, team, keep_model)
        return _train(planned, prepared, folder, fp, team, progress=progress,
                      keep_model=keep_model)


def _train(planned: PlannedRun, prepared: Prepared, folder: Path | None, fp: str,
           team: distributed.Team, *, progress: bool,
           keep_model: bool) -> tuple[RunResult, torch.nn.Module | None]:
    """Train one run and, when ``folder`` is given, save its results and weights there
    (the main process of ``team`` writes them)."""
    spec, cfg = planned.spec, planned.cfg
    stem = f"{spec.slug}-{fp}"
    model = build_for(cfg, spec)
    check_tokenizer_fits(prepared.tokenizer, model)
    train_set = prepared.train_set(planned.train_size, model)
    evals = {k: v.restrict_to(forward_inputs(model)) for k, v in prepared.eval_sets.items()}
    ckpt = folder / f"{stem}.ckpt" if folder else None
    outcome = train(model, prepared.tokenizer, train_set, evals, cfg,
                    epochs=planned.epochs, checkpoint_dir=ckpt,
                    checkpoint_seconds=CHECKPOINT_SECONDS,
                    first_checkpoint_step=FIRST_CHECKPOINT_STEP,
                    evaluate_before=spec.evaluate_each_epoch,
                    evaluate_each_epoch=spec.evaluate_each_epoch, progress=progress,
                    desc=spec.label)
    result = RunResult(
        run=spec.slug, label=spec.label, init=spec.init, frozen=spec.frozen,
        train_size=len(train_set), epochs_planned=planned.epochs,
        evaluate_each_epoch=spec.evaluate_each_epoch, fingerprint=fp,
        settings={k: v for k, v in cfg.to_dict().items() if k != "out_dir"},  # no machine paths
        params={k: PartCount(**v) for k, v in parameter_counts(model).items()},
        label_names=list(LABELS), history=outcome.history, epochs=outcome.epochs,
        final=outcome.final, wall_time_s=outcome.wall_time_s, precision=outcome.precision,
        device=outcome.device, interrupted=outcome.interrupted,
        resumed_from_step=outcome.resumed_from_step, processes=distributed.launched_processes(),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"), validation=outcome.validation)
    team.wait()  # every process is done with the checkpoint before it is replaced
    if folder is not None and not outcome.interrupted and team.is_main:
        if keep_model:
            atomic_write(folder / f"{stem}.safetensors", lambda p: save_model(model, str(p)))
        result.save(folder / f"{stem}.json")
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: the checkpoint has served
    team.wait()  # the others go on only once the results are on disk
    return result, model


def _reload(found: Path, target: Path, planned: PlannedRun, team: distributed.Team,
            keep_model: bool) -> tuple[RunResult, torch.nn.Module | None]:
    """Results (and weights, when kept) of a finished run, copied beside this comparison's
    when another comparison trained them (notebook 03's full fine-tuning is notebook 04's
    pre-trained run)."""
    result = RunResult.load(found)
    weights = found.with_suffix(".safetensors")
    if found != target and team.is_main:
        result.run, result.label = planned.spec.slug, planned.spec.label
        result.reused_from = f"{found.parent.name}/{found.name}"
        if weights.is_file():
            atomic_write(target.with_suffix(".safetensors"),
                         lambda p: shutil.copyfile(weights, p))
        result.save(target)
    team.wait()  # the copies are in place before any process reads them
    model = None
    if keep_model and target.with_suffix(".safetensors").is_file():
        model = build_for(planned.cfg, planned.spec)
        try:
            load_model(model, str(target.with_suffix(".safetensors")))
        except Exception as err:  # truncated or foreign weights: one line, with the remedy
            raise LessonError(f"{target.with_suffix('.safetensors')} cannot be loaded "
                              f"({type(err).__name__}): delete it and {target.name}, then run "
                              "again to retrain that run") from None
        model.eval()
    return result, model


# --------------------------------------------------------------------------- comparisons


def compare(
    name: str,
    cfg: LessonConfig,
    *,
    prepared: Prepared | None = None,
    out_dir: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    progress: bool = True,
    keep_models: bool = True,
) -> ComparisonResult:
    """Run (or reload) every run of comparison ``name``; stops early if one is interrupted.
    The result also holds the trained models (``.models``) and the tokenizer, not saved."""
    from mnli_lesson.config import check_config

    check_config(cfg)  # a configuration edited after resolution is checked again here
    if prepared is not None and (diff := identity.config_diff(prepared.cfg, cfg)):
        raise LessonError(f"prepared was made for other settings ({diff}): call "
                          "prepare(cfg) with this configuration")
    prepared = prepared or prepare(cfg)
    planned = plan(name, cfg, len(prepared.data.train))
    if only is not None:
        planned = [p for p in planned if p.spec.slug in set(only)]
    if out_dir is not None and not str(out_dir).strip():  # "" would write into the cwd
        raise LessonError("out_dir is empty: give a folder (--out DIR, MNLI_LESSON_OUT_DIR)")
    folder = Path(out_dir if out_dir is not None else cfg.out_dir).expanduser() / name
    result = ComparisonResult(name=name, profile=cfg.profile, model=cfg.model, data=cfg.data)
    for p in planned:
        run_result, model = run(p, prepared, folder, progress=progress, keep_model=keep_models)
        result.runs[p.spec.slug] = run_result
        if model is not None:
            result.models[p.spec.slug] = model
        if run_result.interrupted:
            break
    result.fingerprint = digest(name, [r.fingerprint for r in result.runs.values()])[:12]
    result.tokenizer = prepared.tokenizer
    return result
