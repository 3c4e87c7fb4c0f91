"""The facts Q1 and Q2 quote, from the data and the model (pure functions returning frozen
dataclasses; no prose, no verdicts), and the published figures the answers cite, as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mnli_lesson import checkpoints
from mnli_lesson.core import LABELS
from mnli_lesson.data import choose_max_length
from mnli_lesson.label_order import negation_evidence
from mnli_lesson.writeups.run_facts import Facts
from mnli_lesson.writeups.wording import is_smoke_test

if TYPE_CHECKING:
    from mnli_lesson.config import LessonConfig
    from mnli_lesson.data import MnliData
    from mnli_lesson.results import PartCount

#: The assignment's three questions, verbatim (Korean), with an English translation.
QUESTIONS: dict[str, tuple[str, str]] = {
    "Q1": ("어떤 task를 선택하셨나요?", "Which task did you choose?"),
    "Q2": (
        "모델은 어떻게 설계하셨나요? 설계한 모델의 입력과 출력 형태가 어떻게 되나요?",
        "How did you design the model? What are the shapes of its inputs and outputs?",
    ),
    "Q3": (
        "실제로 pre-trained 모델을 fine-tuning했을 때 loss curve은 어떻게 그려지나요? "
        "그리고 pre-train 하지 않은 Transformer를 학습했을 때와 어떤 차이가 있나요?",
        "When a pre-trained model is actually fine-tuned, what does its loss curve look like? "
        "And how does it differ from training a Transformer that was not pre-trained?",
    ),
}
#: The lesson's own checkpoint; any other is a stand-in the answers name.
REFERENCE_MODEL = "distilbert-base-uncased"
#: Published sizes of MultiNLI (Williams et al., 2018).
MNLI_PUBLISHED_SIZES = {"train": 392_702, "validation_matched": 9_815,
                        "validation_mismatched": 9_832}
FULL_TRAIN_PAIRS = MNLI_PUBLISHED_SIZES["train"]
#: MNLI-matched accuracy (%) with all the training data, pre-trained or not, and sources.
PUBLISHED = {"pretrained": (82.2, "DistilBERT, Sanh et al., 2019"),
             "scratch": (75.7, "a Transformer, Radford et al., 2018, Table 5")}
PUBLISHED_GAP = round(PUBLISHED["pretrained"][0] - PUBLISHED["scratch"][0], 1)
#: The first training pair of the Kaggle export: labelled 1 there, and neutral by its meaning.
LABEL_CHECK_PAIR = (
    "Conceptually cream skimming has two basic dimensions - product and geography.",
    "Product and geography are what make cream skimming work.",
)
#: Pairs model_facts encodes when it is given none (written for this project, lengths differ).
EXAMPLE_PAIRS: tuple[tuple[str, str, int], ...] = (
    ("A dog sleeps.", "An animal rests.", 0),
    ("The museum opens at nine on weekdays and at ten on Sundays.",
     "The museum is closed on Sundays.", 2),
    ("She moved to the coast after retiring from her teaching job.",
     "She missed teaching.", 1),
    ("After three weeks of rain, the river rose over its banks and the town council closed "
     "the lower bridge until engineers could inspect it.",
     "The lower bridge was closed because of flooding.", 0),
)


@dataclass(frozen=True)
class CheckpointFacts(Facts):
    """Which checkpoint a setting names and what a reader must know about it: ``reference``,
    it is the lesson's own; ``random``, the tiny stand-in (every comparison a smoke test)."""

    setting: str
    name: str
    caveat: str | None
    reference: bool
    random: bool


def checkpoint_facts(model: str) -> CheckpointFacts:
    """Name and caveat from ``checkpoints.checkpoint_info`` (data, not guessed from a path)."""
    info = checkpoints.checkpoint_info(model)
    return CheckpointFacts(
        setting=str(model), name=info.name if info else str(model).rstrip("/").split("/")[-1],
        caveat=info.caveat if info else None, reference=str(model) == REFERENCE_MODEL,
        random=is_smoke_test(model))


def source_kind(source: str) -> str:
    """``sample``, ``kaggle`` or ``folder``."""
    return source if source in ("sample", "kaggle") else "folder"


@dataclass(frozen=True)
class LengthStats(Facts):
    n_pairs: int
    mean: float
    max: int


@dataclass(frozen=True)
class MaxLengthChoice(Facts):
    """The chosen ``max_length`` and what it, and the configured one, truncate."""

    chosen: int
    percentile: float
    multiple: int
    truncated_share: float
    configured: int
    configured_truncated_share: float


@dataclass(frozen=True)
class LabelCheck(Facts):
    """Where the cream-skimming pair is in the data (None: absent), and its label."""

    split: str | None = None
    label: int | None = None

    @property
    def status(self) -> str:
        """``absent``, ``neutral`` (the expected label order) or ``differs``."""
        if self.label is None:
            return "absent"
        return "neutral" if LABELS[self.label] == "neutral" else "differs"


@dataclass(frozen=True)
class DataFacts(Facts):
    """The loaded data and the profile's use of it (Q1 and the closing summary)."""

    profile: str
    source: str
    source_kind: str
    checkpoint: CheckpointFacts
    sizes: dict[str, int]
    used: dict[str, int]
    dropped: dict[str, int]
    """Pairs cleaning dropped, over all splits, by reason (``empty_pair``, ``no_gold_label``)."""
    lengths: LengthStats
    max_length: MaxLengthChoice

    @property
    def uses_all_train(self) -> bool:
        return self.used["train"] == self.sizes["train"]


def negation_shares(df: pd.DataFrame) -> dict[str, float | None]:
    """Per label, the share of hypotheses with a negation word (None for an absent label)."""
    return negation_evidence(df).shares


def find_label_check_pair(data: MnliData) -> LabelCheck:
    """Where the "cream skimming" pair is in ``data``, and its label."""

    def norm(text: object) -> str:
        return " ".join(str(text).lower().split())

    premise, hypothesis = (norm(t) for t in LABEL_CHECK_PAIR)
    for split, df in data.splits.items():
        candidates = df[df["hypothesis"].astype(str).str.contains("cream skimming", case=False)]
        for _, row in candidates.iterrows():
            if norm(row["hypothesis"]) == hypothesis and norm(row["premise"]) == premise:
                return LabelCheck(split, int(row["label"]))
    return LabelCheck()


def data_facts(data: MnliData, lengths: np.ndarray, cfg: LessonConfig, *,
               percentile: float = 99.0, multiple: int = 8) -> DataFacts:
    """Facts about ``data`` and the training pairs' token ``lengths`` under ``cfg``."""
    lengths = np.asarray(lengths)
    chosen, share = choose_max_length(lengths, percentile, multiple)
    sizes = data.sizes()
    limits = {"train": cfg.train_size, "validation_matched": cfg.eval_size,
              "validation_mismatched": cfg.eval_size}
    used = {s: sizes[s] if n is None else min(n, sizes[s]) for s, n in limits.items()}
    return DataFacts(
        profile=cfg.profile, source=str(data.source), source_kind=source_kind(str(data.source)),
        checkpoint=checkpoint_facts(cfg.model), sizes=sizes, used=used,
        dropped={why: sum(d.get(why, 0) for d in data.dropped.values())
                 for why in ("empty_pair", "no_gold_label")},
        lengths=LengthStats(int(lengths.size), float(lengths.mean()), int(lengths.max())),
        max_length=MaxLengthChoice(
            chosen=chosen, percentile=float(percentile), multiple=multiple,
            truncated_share=share, configured=cfg.max_length,
            configured_truncated_share=float((lengths > cfg.max_length).mean())))


@dataclass(frozen=True)
class ModelFacts(Facts):
    """A model's shape and parameters (``trainable_when_frozen``: those outside
    ``model.base_model``), and one forward pass over a few pairs."""

    profile: str
    checkpoint: str
    model: CheckpointFacts
    model_class: str
    n_layers: int
    hidden_size: int
    n_heads: int
    max_length: int
    id2label: dict[str, str]
    parameters: dict[str, PartCount]
    trainable_when_frozen: int
    tokenizer_keys: tuple[str, ...]
    forward_keys: tuple[str, ...]
    single_shape: tuple[int, ...]
    pair_lengths: tuple[int, ...]
    batch_shape: tuple[int, ...]
    padding_zeros: int
    logits_shape: tuple[int, ...]
    loss: float

    @property
    def total_params(self) -> int:
        return self.parameters["all"].total

    @property
    def parts(self) -> list[str]:
        return [p for p in self.parameters if p != "all"]

    @property
    def head_parts(self) -> list[str]:
        """What reads the ``[CLS]`` vector: the pooler (BERT) and the head's layers."""
        return [p for p in self.parts if p not in ("embeddings", "encoder")]

    @property
    def left_out_keys(self) -> list[str]:
        return [k for k in self.tokenizer_keys if k not in self.forward_keys]


def model_facts(model, tokenizer, cfg: LessonConfig, pairs: pd.DataFrame | None = None
                ) -> ModelFacts:
    """Facts about ``model``: its configuration, parameters, and one forward pass (in eval
    mode, restored after) over ``pairs`` (premise, hypothesis, label; default
    ``EXAMPLE_PAIRS``), encoded and counted by the core's and ``models``' own functions."""
    import torch

    from mnli_lesson.core import forward_inputs, make_collator
    from mnli_lesson.models import parameter_counts
    from mnli_lesson.results import PartCount

    frame = (pd.DataFrame(EXAMPLE_PAIRS, columns=["premise", "hypothesis", "label"])
             if pairs is None else pairs)
    config = model.config
    accepted = forward_inputs(model)
    features = [dict(tokenizer(p, h, truncation=True, max_length=cfg.max_length))
                for p, h in zip(frame["premise"], frame["hypothesis"], strict=True)]
    tokenizer_keys = tuple(features[0])
    used_keys = tuple(k for k in tokenizer_keys if k in accepted)
    batch = make_collator(tokenizer)(
        [{k: f[k] for k in used_keys} | {"labels": int(y)}
         for f, y in zip(features, frame["label"], strict=True)])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout: the loss is repeatable
    try:
        with torch.inference_mode():
            out = model(**{k: v.to(device) for k, v in batch.items()})
    finally:
        model.train(was_training)
    prefix = getattr(model, "base_model_prefix", "")
    outside = sum(p.numel() for n, p in model.named_parameters()
                  if not n.startswith(prefix + "."))
    return ModelFacts(
        profile=cfg.profile, checkpoint=str(cfg.model), model=checkpoint_facts(cfg.model),
        model_class=type(model).__name__, n_layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size), n_heads=int(config.num_attention_heads),
        max_length=int(cfg.max_length),
        id2label={str(k): str(v) for k, v in config.id2label.items()},
        parameters={k: PartCount(**v) for k, v in parameter_counts(model).items()},
        trainable_when_frozen=int(outside), tokenizer_keys=tokenizer_keys,
        forward_keys=used_keys, single_shape=(1, len(features[0]["input_ids"])),
        pair_lengths=tuple(len(f["input_ids"]) for f in features),
        batch_shape=tuple(batch["input_ids"].shape),
        padding_zeros=int((batch["attention_mask"] == 0).sum()),
        logits_shape=tuple(out.logits.shape), loss=float(out.loss))
