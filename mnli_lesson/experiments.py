"""The lesson's named comparisons, run the same way from a notebook or the CLI.

Each run's results are written as JSON (atomically) under ``<out_dir>/<comparison>/``, named
by the run and a hash of its configuration. Running a comparison again reuses finished runs
with the same configuration, resumes an interrupted one from its checkpoint, and never
overwrites a result made with different settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from mnli_lesson.config import LessonConfig
from mnli_lesson.data import LABELS, MnliData, load_mnli, stratified_subset
from mnli_lesson.encoding import EncodedPairs, encode_pairs, forward_inputs, load_tokenizer
from mnli_lesson.errors import LessonError
from mnli_lesson.models import build_model, parameter_counts
from mnli_lesson.train import pick_device, train

EVAL_SPLITS = ("validation_matched", "validation_mismatched")
#: Peak learning rate for a head trained on a frozen encoder (unless the configuration's is
#: larger). A fresh linear head needs far larger steps than a pre-trained encoder tolerates:
#: at fine-tuning rates (2e-5..5e-5) it barely moves in a few hundred steps.
HEAD_ONLY_LR = 1e-3
CHECKPOINT_EVERY = 50  # steps between mid-run checkpoints: a crash loses at most this much


@dataclass(frozen=True)
class RunSpec:
    """One training run of a comparison."""

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


COMPARISONS: dict[str, tuple[RunSpec, ...]] = {
    "finetune-vs-frozen": (
        RunSpec("full", "full fine-tuning"),
        RunSpec("frozen", "frozen encoder (head only)", frozen=True),
    ),
    "pretrained-vs-scratch": (
        RunSpec("pretrained", "pre-trained"),
        RunSpec("scratch", "from scratch", init="scratch"),
    ),
}
SWEEP = "data-efficiency"


def sweep_specs(cfg: LessonConfig) -> tuple[RunSpec, ...]:
    """Both initialisations at every size in ``cfg.sweep_sizes``.

    Small sets get more epochs, so that every point trains for at least
    ``cfg.sweep_min_steps`` optimiser steps: otherwise a small-data point would measure
    too few updates, not too little data.
    """
    specs = []
    for n in cfg.sweep_sizes:
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        epochs = max(cfg.epochs, math.ceil(cfg.sweep_min_steps / steps_per_epoch))
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


# --------------------------------------------------------------------------- data, once


@dataclass
class Prepared:
    """Data, tokenizer and encoded validation sets shared by every run of a comparison."""

    cfg: LessonConfig
    data: MnliData
    tokenizer: object
    eval_sets: dict[str, EncodedPairs]

    def train_set(self, size: int | None) -> EncodedPairs:
        subset = stratified_subset(self.data.train, size, seed=self.cfg.seed)
        return encode_pairs(self.tokenizer, subset, self.cfg.max_length)


def check_max_length(cfg: LessonConfig) -> None:
    """Refuse a max_length longer than the model has position embeddings for (it would fail
    with a shape error at the first long pair, mid-training)."""
    from transformers import AutoConfig

    from mnli_lesson.checkpoints import resolve_checkpoint

    try:
        limit = AutoConfig.from_pretrained(resolve_checkpoint(cfg.model)).max_position_embeddings
    except (OSError, ValueError, AttributeError):  # unknown: let the model itself decide
        return
    if isinstance(limit, int) and cfg.max_length > limit:
        raise LessonError(f"max_length {cfg.max_length} is more than {cfg.model!r} can read "
                          f"({limit} tokens): use --max-length {limit} or less")


def prepare(cfg: LessonConfig, data: MnliData | None = None) -> Prepared:
    """Load the data and tokenizer and encode the validation subsets once."""
    data = data if data is not None else load_mnli(cfg.data)
    tokenizer = load_tokenizer(cfg.model)
    check_max_length(cfg)
    eval_sets = {}
    for split in EVAL_SPLITS:
        frame = data.splits[split]
        size = None if cfg.eval_size is None else min(cfg.eval_size, len(frame))
        eval_sets[split] = encode_pairs(tokenizer, stratified_subset(frame, size, cfg.seed),
                                        cfg.max_length)
    return Prepared(cfg, data, tokenizer, eval_sets)


# --------------------------------------------------------------------------- one run


def fingerprint(cfg: LessonConfig, spec: RunSpec) -> str:
    """Eight hex digits naming a configuration + run (output folders excluded)."""
    settings = {k: v for k, v in cfg.to_dict().items() if k != "out_dir"}
    text = json.dumps({"config": settings, "spec": spec.__dict__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def write_json(path: Path, payload: dict) -> None:
    """Write JSON through a temporary file and rename it: never a half-written result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> dict:
    """Read a results file, with a one-line error if it is damaged."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LessonError(f"no results file at {path}: run the comparison first") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LessonError(f"{path} is damaged (not valid JSON): delete it and run again") from None


def _attention_for(cfg: LessonConfig) -> str | None:
    # Eager attention beat SDPA for MNLI-length inputs on the CPUs we measured; on GPUs the
    # fused SDPA kernels win. (benchmarks/throughput.py compares both.)
    return "eager" if pick_device(cfg.device).type == "cpu" else None


def build_for(cfg: LessonConfig, spec: RunSpec) -> torch.nn.Module:
    return build_model(cfg.model, spec.init, frozen=spec.frozen, seed=cfg.seed,
                       attn_implementation=_attention_for(cfg))


def _same_run(results: dict, spec: RunSpec, cfg: LessonConfig) -> bool:
    """Whether a finished run elsewhere trained exactly what ``spec`` asks for."""
    # Fields that do not change what a single run trains.
    ignored = {"out_dir", "sweep_sizes", "sweep_min_steps"}
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ignored}
    theirs = {k: v for k, v in results.get("config", {}).items() if k not in ignored}
    size = spec.train_size or cfg.train_size
    return (theirs == settings and results.get("init") == spec.init
            and results.get("frozen") == spec.frozen
            and (size is None or results.get("train_size") == size)
            and results.get("epochs_planned") == (spec.epochs or cfg.epochs)
            and not results.get("interrupted")
            # Evaluating each epoch draws no random numbers, so a run that did is a superset.
            and (results.get("evaluate_each_epoch", True) or not spec.evaluate_each_epoch))


def _adopt_twin(spec: RunSpec, cfg: LessonConfig, folder: Path, stem: str) -> None:
    """Reuse an identical run finished by another comparison (e.g. notebook 03's full
    fine-tuning is notebook 04's pre-trained run) instead of training it again."""
    for candidate in sorted(folder.parent.glob("*/*.json")):
        if candidate.name == "summary.json" or (candidate.parent == folder
                                                and candidate.stem == stem):
            continue
        try:
            results = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(results, dict) or not _same_run(results, spec, cfg):
            continue
        results.update(run=spec.slug, label=spec.label, reused_from=str(candidate))
        weights = candidate.with_suffix(".safetensors")
        if weights.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(weights, folder / f".{stem}.tmp")
            os.replace(folder / f".{stem}.tmp", folder / f"{stem}.safetensors")
        write_json(folder / f"{stem}.json", results)
        return


def run_config(cfg: LessonConfig, spec: RunSpec) -> LessonConfig:
    """The configuration a run trains with: the frozen head gets its own learning rate."""
    if spec.frozen and cfg.lr < HEAD_ONLY_LR:
        return dataclasses.replace(cfg, lr=HEAD_ONLY_LR)
    return cfg


def run(spec: RunSpec, prepared: Prepared, folder: Path | None, *, progress: bool = True,
        keep_model: bool = True) -> tuple[dict, torch.nn.Module | None]:
    """Train one run (or reload it) and return its results dict and, when at hand, the model."""
    cfg = run_config(prepared.cfg, spec)
    stem = f"{spec.slug}-{fingerprint(cfg, spec)}"
    result_file = folder / f"{stem}.json" if folder else None
    weights_file = folder / f"{stem}.safetensors" if folder else None
    if result_file is not None and not result_file.is_file():
        _adopt_twin(spec, cfg, folder, stem)
    if result_file is not None and result_file.is_file():
        results = read_json(result_file)
        if not isinstance(results, dict) or not {"label", "history", "final"} <= set(results):
            raise LessonError(f"{result_file} is not a finished run's results: delete it and "
                              "run again")
        model = None
        if keep_model and weights_file.is_file():
            model = build_for(cfg, spec)
            load_model(model, str(weights_file))
            model.eval()
        return results, model

    model = build_for(cfg, spec)
    train_set = prepared.train_set(spec.train_size if spec.train_size else cfg.train_size)
    inputs = forward_inputs(model)
    evals = {k: v.restrict_to(inputs) for k, v in prepared.eval_sets.items()}
    ckpt = folder / f"{stem}.ckpt" if folder else None
    outcome = train(model, prepared.tokenizer, train_set.restrict_to(inputs), evals, cfg,
                    epochs=spec.epochs, checkpoint_dir=ckpt,
                    checkpoint_every=CHECKPOINT_EVERY if ckpt else 0,
                    evaluate_before=spec.evaluate_each_epoch,
                    evaluate_each_epoch=spec.evaluate_each_epoch, progress=progress,
                    desc=spec.label)
    results = {
        "run": spec.slug,
        "label": spec.label,
        "init": spec.init,
        "frozen": spec.frozen,
        "train_size": len(train_set),
        "epochs_planned": spec.epochs or cfg.epochs,
        "evaluate_each_epoch": spec.evaluate_each_epoch,
        "config": cfg.to_dict(),
        "params": parameter_counts(model),
        "label_names": list(LABELS),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **outcome.to_dict(),
    }
    if folder is not None and not outcome.interrupted:
        if keep_model:
            save_model(model, str(weights_file) + ".tmp")
            os.replace(str(weights_file) + ".tmp", weights_file)
        write_json(result_file, results)
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: the checkpoint has served
    return results, model


def check_sizes(specs: Iterable[RunSpec], prepared: Prepared) -> None:
    """Refuse a training size larger than the data before any run starts, not midway."""
    have = len(prepared.data.train)
    for spec in specs:
        size = spec.train_size if spec.train_size else prepared.cfg.train_size
        if size is not None and size > have:
            setting = "sweep_sizes" if spec.train_size else "train_size"
            raise LessonError(
                f"{setting} asks for {size} training pairs but {prepared.data.source} has only "
                f"{have}: use at most {have} (train_size may also be 'all')"
            )


def compare(
    name: str,
    cfg: LessonConfig,
    *,
    prepared: Prepared | None = None,
    out_dir: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    progress: bool = True,
    keep_models: bool = True,
) -> Comparison:
    """Run (or reload) every run of comparison ``name``; stops early if one is interrupted."""
    specs = specs_for(name, cfg)
    if only is not None:
        wanted = set(only)
        specs = tuple(s for s in specs if s.slug in wanted)
    prepared = prepared or prepare(cfg)
    check_sizes(specs, prepared)
    folder = Path(out_dir if out_dir is not None else cfg.out_dir) / name
    comparison = Comparison(name=name, profile=cfg.profile, model=cfg.model, data=cfg.data)
    for spec in specs:
        results, model = run(spec, prepared, folder, progress=progress, keep_model=keep_models)
        comparison.runs[spec.slug] = results
        if model is not None:
            comparison.models[spec.slug] = model
        if results.get("interrupted"):
            break
    comparison.tokenizer = prepared.tokenizer
    return comparison


@dataclass
class Comparison:
    """The results of a named comparison: one results dict (and maybe a model) per run."""

    name: str
    profile: str
    model: str
    data: str

    def __post_init__(self) -> None:
        self.runs: dict[str, dict] = {}
        self.models: dict[str, torch.nn.Module] = {}
        self.tokenizer = None

    def histories(self) -> dict[str, list[dict]]:
        """Per-step records keyed by run label (what ``plots.plot_loss_curves`` takes)."""
        return {r["label"]: r["history"] for r in self.runs.values()}

    def epoch_records(self) -> dict[str, list[dict]]:
        return {r["label"]: r["epochs"] for r in self.runs.values()}

    def accuracy(self, run: str, split: str = "validation_matched") -> float:
        return float(self.runs[run]["final"][split]["accuracy"])

    def table(self):
        """One row per run: accuracies, trainable parameters, time."""
        import pandas as pd

        rows = []
        for r in self.runs.values():
            rows.append({
                "run": r["label"],
                "train pairs": r["train_size"],
                "epochs": r["epochs_planned"],
                "matched acc": round(r["final"]["validation_matched"]["accuracy"], 3),
                "mismatched acc": round(r["final"]["validation_mismatched"]["accuracy"], 3),
                "trainable params": r["params"]["all"]["trainable"],
                "train time (s)": round(r["wall_time_s"], 1),
            })
        return pd.DataFrame(rows).set_index("run")

    def sweep_points(self, split: str = "validation_matched") -> dict[str, list[tuple[int, float]]]:
        """(train pairs, accuracy) per initialisation, for ``plots.plot_data_efficiency``."""
        points: dict[str, list[tuple[int, float]]] = {}
        for r in self.runs.values():
            points.setdefault(r["init"], []).append(
                (int(r["train_size"]), float(r["final"][split]["accuracy"])))
        return {k: sorted(v) for k, v in points.items()}

    def to_dict(self) -> dict:
        return {"name": self.name, "profile": self.profile, "model": self.model,
                "data": self.data, "runs": self.runs}

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Comparison:
        payload = read_json(path)
        try:
            out = cls(payload["name"], payload["profile"], payload["model"], payload["data"])
            out.runs = payload["runs"]
        except (KeyError, TypeError):
            raise LessonError(f"{path} is not a comparison results file") from None
        return out
