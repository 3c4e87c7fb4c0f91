"""The facts the write-ups quote, computed from typed inputs; no prose and no verdicts here.

Every function is pure (it reads data, a model or results and changes none of them) and
returns a frozen dataclass; ``as_dict()`` gives a JSON-ready copy for tables. The published
figures quoted next to a run's own numbers are kept here as data, in one place. Facts about
finished runs live in :mod:`mnli_lesson.run_facts` and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mnli_lesson.data import COLUMNS, LABELS, choose_max_length, label_counts, length_summary
from mnli_lesson.errors import LessonError
from mnli_lesson.run_facts import (
    LOSS_SMOOTHING,
    AccuracyFacts,
    Crossover,
    Facts,
    LossFacts,
    PairFacts,
    RecipeFacts,
    SweepFacts,
    accuracy_facts,
    loss_crossover,
    loss_facts,
    pair_facts,
    recipe_facts,
    sweep_facts,
)
from mnli_lesson.wording import CHANCE_LOSS, CHANCE_MARGIN, is_smoke_test

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
MNLI_PUBLISHED_SIZES: dict[str, int] = {
    "train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832,
}
FULL_TRAIN_PAIRS = MNLI_PUBLISHED_SIZES["train"]
#: DistilBERT against BERT-base (Sanh et al., 2019): share of parameters saved, share of
#: inference time saved, share of BERT's GLUE score kept.
DISTILBERT_PUBLISHED: dict[str, float] = {"smaller": 0.40, "faster": 0.60, "glue_kept": 0.97}
#: MultiNLI's genres: training and validation_matched share the first five; mismatched the rest.
MATCHED_GENRES = ("fiction", "government reports", "Slate magazine", "telephone speech",
                  "travel guides")
MISMATCHED_GENRES = ("the 9/11 Commission report", "face-to-face speech", "letters",
                     "Oxford University Press non-fiction", "Verbatim magazine")
#: Published MNLI accuracies (%) and where they come from.
PUBLISHED: dict[str, tuple[float, str]] = {
    "distilbert_matched_dev": (82.2, "Sanh et al., 2019"),
    "bert_base_matched_test": (84.6, "Devlin et al., 2019"),
    "bert_base_mismatched_test": (83.4, "Devlin et al., 2019"),
    "transformer_no_pretraining": (75.7, "Radford et al., 2018, Table 5"),
}
#: What pre-training was worth with all of MNLI, in points (different architectures: roughly).
PUBLISHED_GAP = round(PUBLISHED["distilbert_matched_dev"][0]
                      - PUBLISHED["transformer_no_pretraining"][0], 1)
#: Negation cues in a hypothesis (Gururangan et al., 2018): whole words, plus the "n't" ending.
NEGATION_PATTERN = (
    r"\b(?:no|not|never|nobody|nothing|none|nowhere|neither|nor|cannot)\b|n['\u2019]t\b"
)
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

# --------------------------------------------------------------------------- data (Q1)


@dataclass(frozen=True)
class CheckpointFacts(Facts):
    """Which checkpoint a setting names, and what a reader must know about it."""

    setting: str
    name: str
    caveat: str | None
    reference: bool
    """It is ``distilbert-base-uncased``, the lesson's own choice."""
    random: bool
    """It is the tiny random stand-in: every comparison on it is a smoke test."""


def checkpoint_facts(model: str) -> CheckpointFacts:
    """Name and caveat from ``checkpoints.checkpoint_info`` (data, not guessed from a path)."""
    from mnli_lesson import checkpoints

    lookup = getattr(checkpoints, "checkpoint_info", None)  # absent in older versions
    info = None
    if lookup is not None:
        try:
            info = lookup(model)
        except (LessonError, OSError):
            info = None
    name = getattr(info, "name", None) or str(model).rstrip("/").rsplit("/", 1)[-1]
    return CheckpointFacts(setting=str(model), name=str(name),
                           caveat=getattr(info, "caveat", None) or None,
                           reference=str(model) == REFERENCE_MODEL, random=is_smoke_test(model))


def source_kind(source: str) -> str:
    """``sample``, ``kaggle`` or ``folder``."""
    return source if source in ("sample", "kaggle") else "folder"


@dataclass(frozen=True)
class LengthStats(Facts):
    n_pairs: int
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
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
    """Where the cream-skimming pair is in the data, and its label."""

    found: bool
    split: str | None = None
    label: int | None = None
    label_name: str | None = None

    @property
    def status(self) -> str:
        """``absent``, ``neutral`` (the label order is the expected one) or ``differs``."""
        if not self.found:
            return "absent"
        return "neutral" if self.label_name == "neutral" else "differs"


@dataclass(frozen=True)
class DataFacts(Facts):
    """The loaded data and the profile's use of it (Q1 and the closing summary)."""

    profile: str
    source: str
    source_kind: str
    tokenizer: str
    checkpoint: CheckpointFacts
    sizes: dict[str, int]
    used: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    dropped: dict[str, dict[str, int]]
    genres: dict[str, dict[str, int]] | None
    lengths: LengthStats
    max_length: MaxLengthChoice
    negation_share: dict[str, float | None]
    label_check: LabelCheck

    @property
    def dropped_total(self) -> dict[str, int]:
        return {reason: sum(d.get(reason, 0) for d in self.dropped.values())
                for reason in ("empty_pair", "no_gold_label")}

    @property
    def train_shares(self) -> dict[str, float]:
        total = sum(self.label_counts["train"].values()) or 1
        return {name: n / total for name, n in self.label_counts["train"].items()}

    @property
    def uses_all_train(self) -> bool:
        return self.used["train"] == self.sizes["train"]


def negation_shares(df: pd.DataFrame) -> dict[str, float | None]:
    """Per label, the share of hypotheses with a negation word (None for an absent label)."""
    has = df["hypothesis"].astype(str).str.contains(NEGATION_PATTERN, case=False, regex=True)
    shares = has.groupby(df["label"].to_numpy()).mean()
    return {name: (float(shares[i]) if i in shares.index else None)
            for i, name in enumerate(LABELS)}


def find_label_check_pair(data: MnliData) -> LabelCheck:
    """Where the "cream skimming" pair is in ``data`` and its label (``found`` False if not)."""

    def norm(text: object) -> str:
        return " ".join(str(text).lower().split())

    premise, hypothesis = (norm(t) for t in LABEL_CHECK_PAIR)
    for split, df in data.splits.items():
        candidates = df[df["hypothesis"].astype(str).str.contains("cream skimming", case=False)]
        for _, row in candidates.iterrows():
            if norm(row["hypothesis"]) == hypothesis and norm(row["premise"]) == premise:
                label = int(row["label"])
                return LabelCheck(True, split, label, LABELS[label])
    return LabelCheck(False)


def data_facts(data: MnliData, lengths: np.ndarray, cfg: LessonConfig, *,
               percentile: float = 99.0, multiple: int = 8) -> DataFacts:
    lengths = np.asarray(lengths)
    chosen, share = choose_max_length(lengths, percentile, multiple)
    sizes = data.sizes()
    used = {"train": sizes["train"] if cfg.train_size is None
            else min(cfg.train_size, sizes["train"])}
    for split in ("validation_matched", "validation_mismatched"):
        used[split] = sizes[split] if cfg.eval_size is None else min(cfg.eval_size, sizes[split])
    genres = None
    if all("genre" in df.columns for df in data.splits.values()):
        genres = {s: {str(g): int(n) for g, n in df["genre"].value_counts().items()}
                  for s, df in data.splits.items()}
    return DataFacts(
        profile=cfg.profile, source=str(data.source), source_kind=source_kind(str(data.source)),
        tokenizer=str(cfg.model), checkpoint=checkpoint_facts(cfg.model), sizes=sizes,
        used=used, label_counts={s: label_counts(df) for s, df in data.splits.items()},
        dropped={s: dict(d) for s, d in data.dropped.items()}, genres=genres,
        lengths=LengthStats(n_pairs=int(lengths.size), **length_summary(lengths)),
        max_length=MaxLengthChoice(
            chosen=chosen, percentile=float(percentile), multiple=multiple,
            truncated_share=share, configured=cfg.max_length,
            configured_truncated_share=float((lengths > cfg.max_length).mean())),
        negation_share=negation_shares(data.train), label_check=find_label_check_pair(data))


# --------------------------------------------------------------------------- model (Q2)


@dataclass(frozen=True)
class ModelFacts(Facts):
    """A model's shape and parameters, and one forward pass over a few pairs."""

    profile: str
    checkpoint: str
    model: CheckpointFacts
    model_class: str
    model_type: str
    n_layers: int
    hidden_size: int
    n_heads: int
    ffn_size: int
    vocab_size: int
    max_positions: int
    max_length: int
    id2label: dict[str, str]
    parameters: dict[str, PartCount]
    trainable_when_frozen: int
    """Parameters outside ``model.base_model``: what trains when the encoder is frozen."""
    tokenizer_keys: tuple[str, ...]
    forward_keys: tuple[str, ...]
    single_shape: tuple[int, ...]
    pair_lengths: tuple[int, ...]
    batch_shape: tuple[int, ...]
    padding_zeros: int
    logits_shape: tuple[int, ...]
    loss: float
    chance_loss: float

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
    ``EXAMPLE_PAIRS``)."""
    import torch

    from mnli_lesson.encoding import forward_inputs, make_collator
    from mnli_lesson.models import parameter_counts
    from mnli_lesson.results import PartCount

    frame = pd.DataFrame(EXAMPLE_PAIRS, columns=list(COLUMNS)) if pairs is None else pairs
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
        model_class=type(model).__name__, model_type=str(config.model_type),
        n_layers=int(config.num_hidden_layers), hidden_size=int(config.hidden_size),
        n_heads=int(config.num_attention_heads),
        ffn_size=int(getattr(config, "intermediate_size", None)
                     or getattr(config, "hidden_dim", 0)),
        vocab_size=int(config.vocab_size), max_positions=int(config.max_position_embeddings),
        max_length=int(cfg.max_length),
        id2label={str(k): str(v) for k, v in config.id2label.items()},
        parameters={k: PartCount(**v) for k, v in parameter_counts(model).items()},
        trainable_when_frozen=int(outside), tokenizer_keys=tokenizer_keys,
        forward_keys=used_keys, single_shape=(1, len(features[0]["input_ids"])),
        pair_lengths=tuple(len(f["input_ids"]) for f in features),
        batch_shape=tuple(batch["input_ids"].shape),
        padding_zeros=int((batch["attention_mask"] == 0).sum()),
        logits_shape=tuple(out.logits.shape), loss=float(out.loss), chance_loss=CHANCE_LOSS)


__all__ = [
    "CHANCE_MARGIN", "DISTILBERT_PUBLISHED", "EXAMPLE_PAIRS", "FULL_TRAIN_PAIRS",
    "LABEL_CHECK_PAIR", "LOSS_SMOOTHING", "MATCHED_GENRES", "MISMATCHED_GENRES",
    "MNLI_PUBLISHED_SIZES", "NEGATION_PATTERN", "PUBLISHED", "PUBLISHED_GAP", "QUESTIONS",
    "REFERENCE_MODEL", "AccuracyFacts", "CheckpointFacts", "Crossover", "DataFacts", "Facts",
    "LabelCheck", "LengthStats", "LossFacts", "MaxLengthChoice", "ModelFacts", "PairFacts",
    "RecipeFacts", "SweepFacts", "accuracy_facts", "checkpoint_facts", "data_facts",
    "find_label_check_pair", "loss_crossover", "loss_facts", "model_facts", "negation_shares",
    "pair_facts", "recipe_facts", "source_kind", "sweep_facts",
]
