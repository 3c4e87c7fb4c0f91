"""The three model variants of the lesson, and where their parameters live.

- ``pretrained``: the checkpoint's encoder weights plus a new, randomly initialised head.
- ``scratch``: the same architecture and configuration, every weight random.
- ``frozen=True`` (with either): the encoder's weights are fixed; only the head trains.
  That is feature extraction, not fine-tuning, and notebook 03 names it so.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from mnli_lesson.checkpoints import resolve_checkpoint
from mnli_lesson.data import LABEL2ID, LABELS
from mnli_lesson.errors import LessonError

Init = Literal["pretrained", "scratch"]


def build_model(
    model: str,
    init: Init = "pretrained",
    *,
    frozen: bool = False,
    seed: int = 42,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """A sequence classifier over ``LABELS`` from ``model`` (Hub id, folder or ``tiny``).

    ``seed`` fixes the random parts (the head, and everything for ``scratch``), so two
    variants built with one seed differ only where they are meant to.
    ``attn_implementation="eager"`` is faster than SDPA for short sequences on CPUs.
    """
    if init not in ("pretrained", "scratch"):
        raise LessonError(f"unknown init {init!r}: use 'pretrained' or 'scratch'")
    source = resolve_checkpoint(model)
    labels = dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                  label2id=dict(LABEL2ID))
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    torch.manual_seed(seed)
    with quiet():
        net = _load(source, init, labels, extra, model)
    if frozen:
        freeze_encoder(net)
    return net


def _load(source: str, init: Init, labels: dict, extra: dict, model: str) -> PreTrainedModel:
    try:
        if init == "pretrained":
            net = AutoModelForSequenceClassification.from_pretrained(
                source, **labels, **extra
            )
        else:
            config = AutoConfig.from_pretrained(source, **labels)
            net = AutoModelForSequenceClassification.from_config(config, **extra)
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LessonError(f"could not load model {model!r}: {first}") from None
    return net


@contextlib.contextmanager
def quiet():
    """Silence transformers' load-time chatter (progress bars, the expected notice that the
    new head is randomly initialised, which the lesson explains in words)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def freeze_encoder(model: PreTrainedModel) -> PreTrainedModel:
    """Fix every weight of the encoder (``model.base_model``); the head stays trainable."""
    for p in model.base_model.parameters():
        p.requires_grad_(False)
    return model


def _part(name: str, base_prefix: str) -> str:
    """Which part of the network a parameter name belongs to."""
    if name.startswith(base_prefix + "."):
        rest = name[len(base_prefix) + 1:]
        for part in ("embeddings", "pooler"):
            if rest.startswith(part):
                return part
        return "encoder"  # DistilBERT calls it "transformer", BERT "encoder"
    return name.split(".")[0]  # head parts: pre_classifier, classifier, ...


def parameter_counts(model: torch.nn.Module) -> dict[str, dict[str, int]]:
    """Total and trainable parameters per part (embeddings, encoder, pooler, head layers)."""
    base_prefix = getattr(model, "base_model_prefix", "")
    counts: dict[str, dict[str, int]] = {}
    for name, p in model.named_parameters():
        part = _part(name, base_prefix)
        entry = counts.setdefault(part, {"total": 0, "trainable": 0})
        entry["total"] += p.numel()
        entry["trainable"] += p.numel() if p.requires_grad else 0
    counts["all"] = {
        "total": sum(v["total"] for v in counts.values()),
        "trainable": sum(v["trainable"] for v in counts.values()),
    }
    return counts
