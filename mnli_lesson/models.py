"""The three model variants of the lesson, and where their parameters live.

- ``pretrained``: the checkpoint's encoder weights plus a new, randomly initialised head.
- ``scratch``: the same architecture and configuration, every weight random.
- ``frozen=True`` (with either): the encoder's weights are fixed; only the head trains.
  That is feature extraction, not fine-tuning, and notebook 03 names it so.

A "pretrained" model is checked after loading: every encoder weight must come from the
checkpoint, or the build is refused. transformers only logs such problems, and ``quiet()``
hides its logs, so the check here does not rely on them.
"""

from __future__ import annotations

import csv
import pickle
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from mnli_lesson.checkpoints import check_vocabulary, quiet, resolve_checkpoint
from mnli_lesson.core import LABEL2ID, LABELS, freeze_encoder
from mnli_lesson.data import sample_dir
from mnli_lesson.errors import LessonError

if TYPE_CHECKING:
    from mnli_lesson.config import LessonConfig

__all__ = ["Init", "build_model", "check_tokenizer_fits", "check_unknown_share", "load_tokenizer",
           "parameter_counts", "quiet"]

Init = Literal["pretrained", "scratch"]
SINGLE_LABEL = "single_label_classification"
_LOAD_ERRORS = (OSError, ValueError, AttributeError, KeyError, TypeError, RuntimeError)
# Head notices already printed: a comparison builds the same checkpoint once per run, and
# one line says it all.
_NOTED: set[tuple[str, tuple[str, ...]]] = set()
#: Embedding rows a checkpoint may have beyond its tokenizer's tokens: matrices are padded for
#: fast kernels (to a multiple of 64 or 128; deberta-v3 has 128,100 rows for 128,001 tokens).
#: A larger gap means the tokenizer is another vocabulary.
_SPARE_ROWS = 128
#: Most [UNK] a tokenizer may make of sample text (a share of its word pieces). Measured on
#: ../shared/data/mnli-sample/train.csv (20,000 real pairs): 0.001 % with all-MiniLM-L6-v2's
#: own tokenizer (0.01 % on the first 512 pairs), at most 0.2 % with the tiny checkpoint's
#: 1,500-token vocabulary; 10.9 % with MiniLM's tokenizer when lower-casing is switched off
#: (9.0-12.1 % per file, the built-in sample included). 2 % sits between: 10x above the worst
#: right tokenizer, 4x below the wrong one.
MAX_UNK_SHARE = 0.02
_UNK_SAMPLE_PAIRS = 500  # 1,000 sentences, ~25,000 word pieces: enough, and milliseconds
_USE_OWN = "use the tokenizer saved with this checkpoint (same folder or Hub id)"
# Attention names that give a weights file's architecture away, whatever config.json says.
_FAMILIES = (("attention.self.query.", "a BERT-style encoder"),
             ("attention.q_lin.", "a DistilBERT encoder"), ("attn.c_attn.", "a GPT-2 decoder"),
             ("self_attn.q_proj.", "a BART- or LLaMA-style model"),
             ("SelfAttention.q.", "a T5 model"))


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The tokenizer that belongs to ``model`` (a Hub id, a folder, or ``tiny``), refused in
    one line when its vocabulary is not the one known to belong to the weights."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint(model))
    check_vocabulary(model, tokenizer.get_vocab())
    return tokenizer


def build_model(
    model: str,
    init: Init = "pretrained",
    *,
    frozen: bool = False,
    seed: int = 42,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """A sequence classifier over ``LABELS`` from ``model`` (Hub id, folder, ``tiny`` or
    ``offline-minilm``).

    ``seed`` fixes the random parts (the head, and everything for ``scratch``), so two
    variants built with one seed differ only where they are meant to.
    ``attn_implementation`` picks the attention kernel (the lesson's runs pass ``"eager"`` on
    a CPU; see ``experiments.attention_for``).
    A checkpoint whose own classification head has other labels than ``LABELS`` keeps its
    encoder and gets a new head (one printed line says so); labels are never mapped by
    position.
    """
    if init not in ("pretrained", "scratch"):
        raise LessonError(f"unknown init {init!r}: use 'pretrained' or 'scratch'")
    source = resolve_checkpoint(model)
    # problem_type too: a regression or multi-label checkpoint would otherwise pick another
    # loss, and fail at the first step on integer class labels.
    labels = dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                  label2id=dict(LABEL2ID), problem_type=SINGLE_LABEL)
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
            return _load_pretrained(source, labels, extra, model)
        config = AutoConfig.from_pretrained(source, **labels)
        return AutoModelForSequenceClassification.from_config(config, **extra)
    except (pickle.UnpicklingError, *_LOAD_ERRORS) as err:
        if not _from_unpickling(err):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LessonError(f"could not load model {model!r}: {first}") from None
        raise LessonError(
            f"model {model!r}: its pytorch_model.bin holds more than plain tensors (a pickle "
            "that could run code), so it was not loaded: use a model.safetensors copy of the "
            "checkpoint from a source you trust"
        ) from None


def _from_unpickling(err: BaseException | None) -> bool:
    """Whether ``err`` is, or was raised while handling, a refused pickle (transformers 4.57
    wraps torch's UnpicklingError in an OSError; 5.x lets it through)."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, pickle.UnpicklingError):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _load_pretrained(source: str, labels: dict, extra: dict, model: str) -> PreTrainedModel:
    """Encoder weights from the checkpoint, checked; a head for ``LABELS``."""
    theirs = AutoConfig.from_pretrained(source)  # the checkpoint's own labels, before ours
    # Mismatched shapes (a 2-label head) are re-initialised instead of raising; mismatches
    # inside the encoder are then refused by _check_encoder_loaded.
    net, info = AutoModelForSequenceClassification.from_pretrained(
        source, **labels, **extra, output_loading_info=True, ignore_mismatched_sizes=True,
        dtype=torch.float32,  # transformers 5 keeps a half-precision file's dtype otherwise
    )
    _check_encoder_loaded(net, info, model, theirs)
    their_labels = _head_labels(theirs)
    if _had_head(net, info) and their_labels != list(LABELS):
        net = _new_head(net, source, labels, extra)
        _note_once(source, their_labels,
                   f"note: {model!r} has a {len(their_labels)}-label classification head "
                   f"({', '.join(their_labels)}), not MNLI's ({', '.join(LABELS)}): its "
                   f"encoder is kept and a new {len(LABELS)}-label head is initialised")
    return net


def _note_once(source: str, their_labels: list[str], line: str) -> None:
    """Print ``line`` (to stderr) unless this process already did for this checkpoint."""
    if (source, tuple(their_labels)) not in _NOTED:
        _NOTED.add((source, tuple(their_labels)))
        print(line, file=sys.stderr)


def _head_labels(config) -> list[str]:
    """The label names of a config, in id order."""
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(config.num_labels)]


def _base_prefix(net: PreTrainedModel) -> str:
    return getattr(net, "base_model_prefix", "") or ""


def _is_encoder_key(key: str, prefix: str) -> bool:
    """A weight of the pre-trained encoder (not of the head, not of an optional pooler)."""
    return key.startswith(prefix + ".") and not key.startswith(prefix + ".pooler.")


def _mismatched_names(info: dict) -> list[str]:
    # transformers reports (name, shape in file, shape in model)
    return [m[0] if isinstance(m, (tuple, list)) else str(m) for m in info["mismatched_keys"]]


def _had_head(net: PreTrainedModel, info: dict) -> bool:
    """Whether the checkpoint itself held weights for the classification head."""
    prefix = _base_prefix(net)
    head = [k for k in net.state_dict() if not k.startswith(prefix + ".")]
    missing = set(info["missing_keys"])
    return any(k not in missing for k in head)


def _new_head(net: PreTrainedModel, source: str, labels: dict, extra: dict) -> PreTrainedModel:
    """The same encoder weights under a freshly initialised head for ``labels``."""
    fresh = AutoModelForSequenceClassification.from_config(
        AutoConfig.from_pretrained(source, **labels), **extra
    )
    fresh.base_model.load_state_dict(net.base_model.state_dict())
    return fresh.to(dtype=net.dtype)


def _wrapper_prefix(key: str, expected: set[str], prefix: str) -> str | None:
    """The leading part of ``key`` (e.g. ``module.``) without which it names a model weight."""
    parts = key.split(".")
    for i in range(1, len(parts)):
        rest = ".".join(parts[i:])
        if rest in expected or f"{prefix}.{rest}" in expected:
            return ".".join(parts[:i]) + "."
    return None


def _encoder_like(key: str, net: PreTrainedModel) -> bool:
    """An unexpected weight that would belong in the encoder (not a pre-training head such as
    BERT's ``cls.*`` or DistilBERT's ``vocab_projector``, which are dropped by design)."""
    prefix = _base_prefix(net)
    parts = {name for name, _ in net.base_model.named_children()} - {"pooler"}
    return _is_encoder_key(key, prefix) or key.split(".")[0] in parts


def _weights_family(keys) -> tuple[str, str] | None:
    """What architecture weight names belong to, and one name that shows it, or None."""
    for part, family in _FAMILIES:
        key = next((k for k in sorted(keys) if part in k), None)
        if key is not None:
            return family, key
    return None


def _check_encoder_loaded(net: PreTrainedModel, info: dict, model: str, config) -> None:
    """Refuse, in one line, a checkpoint whose encoder did not load completely."""
    model_type = config.model_type
    prefix = _base_prefix(net)
    expected = set(net.state_dict())
    encoder = [k for k in expected if _is_encoder_key(k, prefix)]
    shapes = {m[0]: m[1:] for m in info["mismatched_keys"] if isinstance(m, (tuple, list))}
    mismatched = sorted(k for k in _mismatched_names(info) if _is_encoder_key(k, prefix))
    not_loaded = sorted({k for k in info["missing_keys"] if _is_encoder_key(k, prefix)}
                        | set(mismatched))
    unexpected = sorted(info["unexpected_keys"])
    wrapped = {k: p for k in unexpected if (p := _wrapper_prefix(k, expected, prefix))}
    stray = [k for k in unexpected if k not in wrapped and _encoder_like(k, net)]
    if not (not_loaded or wrapped or stray):
        return
    # Weights of another architecture than config.json names: say which, not "partial save".
    theirs, ours = _weights_family(unexpected), _weights_family(expected)
    clash = None
    if theirs and not wrapped and not mismatched and theirs[0] != (ours or ("",))[0]:
        arch = ", ".join(config.architectures or []) or type(net).__name__
        clash = (f"config.json names the {model_type!r} architecture ({arch}) but the weights "
                 f"are {theirs[0]} (e.g. {theirs[1]!r}); use the config.json saved with these "
                 "weights")
    if not_loaded:
        what = (f"{len(not_loaded)} of {len(encoder)} encoder weights did not load from "
                f"{model!r} (e.g. {not_loaded[0]!r})")
    else:
        bad = sorted(wrapped) + stray
        what = f"{len(bad)} weights in {model!r} fit no part of the model (e.g. {bad[0]!r})"
    raise LessonError(f"{what}, so it would not be pre-trained: "
                      f"{clash or _likely_cause(wrapped, mismatched, shapes, stray, model_type)}")


def _likely_cause(wrapped: dict[str, str], mismatched: list[str], shapes: dict,
                  stray: list[str], model_type: str | None) -> str:
    """Why the encoder did not load, and what to do, for the message."""
    if wrapped:
        p = Counter(wrapped.values()).most_common(1)[0][0]
        return (f"the file's weight names start with {p!r} (as a DDP- or wrapper-saved state "
                f"dict has them); save the unwrapped model with save_pretrained, or strip "
                f"{p!r} from the names")
    if mismatched:
        k = mismatched[0]
        found, wanted = (tuple(s) for s in shapes.get(k, ((), ())))
        return (f"config.json does not match the weights ({k!r} is {found} in the file but "
                f"{wanted} by config.json); use the config.json saved with these weights")
    if stray:
        return (f"the weights are not those of the {model_type!r} architecture config.json "
                "names; use the config.json saved with these weights")
    return "the weights file lacks them (a partial save?); copy or download the checkpoint again"


def check_tokenizer_fits(tokenizer, model: PreTrainedModel,
                         texts: Sequence[str] | None = None) -> None:
    """Refuse, in one line, a tokenizer that does not belong to the model's weights.

    More tokens than embeddings would stop training with an IndexError mid-run; fewer than
    config.json's vocab_size, special tokens at other ids than config.json names, or many
    [UNK] on ``texts`` (default: the built-in sample, see ``check_unknown_share``) would train
    quietly on ids that name the wrong embeddings.
    """
    size = len(tokenizer)
    rows = model.get_input_embeddings().num_embeddings
    if size > rows:
        raise LessonError(f"the tokenizer has {size} tokens but the model has embeddings for "
                          f"only {rows}: {_USE_OWN}")
    trained = getattr(model.config, "vocab_size", None) or rows
    if size < trained - max(_SPARE_ROWS, trained // 100):
        raise LessonError(f"the tokenizer has {size} tokens but the weights were trained with "
                          f"{trained} (config.json vocab_size), so it is another vocabulary: "
                          f"{_USE_OWN}")
    for name in ("pad", "unk", "cls", "sep", "bos", "eos", "mask"):
        ours, theirs = (getattr(o, f"{name}_token_id", None) for o in (tokenizer, model.config))
        if not isinstance(ours, int):
            continue
        if not 0 <= ours < rows or (isinstance(theirs, int) and ours != theirs):
            said = (f"config.json's {name}_token_id is {theirs}" if isinstance(theirs, int)
                    else f"the model has {rows} embeddings")
            token = getattr(tokenizer, f"{name}_token", None)
            raise LessonError(f"the tokenizer's {name} token {token!r} has id {ours} but "
                              f"{said}, so its ids are not the weights' ids: {_USE_OWN}")
    check_unknown_share(tokenizer, texts)


def _sample_texts() -> list[str]:
    with (sample_dir() / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for _, r in zip(range(_UNK_SAMPLE_PAIRS), csv.DictReader(f), strict=False)]
    return [r[c] for r in rows for c in ("premise", "hypothesis")]


def check_unknown_share(tokenizer, texts: Sequence[str] | None = None) -> None:
    """Refuse a tokenizer that turns more than ``MAX_UNK_SHARE`` of ``texts`` (premises and
    hypotheses, e.g. of the training pairs; default: the built-in sample) into [UNK]: the
    model would train on text it cannot see. The first ``_UNK_SAMPLE_PAIRS`` pairs suffice."""
    unk = tokenizer.unk_token_id
    if not isinstance(unk, int):  # byte-level tokenizers have no [UNK]: nothing to count
        return
    sample = [str(t) for t in (_sample_texts() if texts is None else texts)]
    sample = sample[:2 * _UNK_SAMPLE_PAIRS]
    ids = tokenizer(sample, add_special_tokens=False)["input_ids"] if sample else []
    pieces = sum(len(i) for i in ids)
    share = sum(i.count(unk) for i in ids) / pieces if pieces else 0.0
    if share <= MAX_UNK_SHARE:
        return
    unk_word = tokenizer.tokenize("The") == [tokenizer.unk_token]
    cause = ("it keeps capitals but its vocabulary is uncased: switch lower-casing back on "
             "(do_lower_case true in tokenizer_config.json), or " if unk_word and
             tokenizer.tokenize("the") != [tokenizer.unk_token] else
             "it does not fit this text or these weights: ")
    raise LessonError(f"the tokenizer turns {share:.1%} of the word pieces of {len(sample)} "
                      f"sentences into {tokenizer.unk_token} (more than {MAX_UNK_SHARE:.0%}): "
                      f"{cause}{_USE_OWN}")


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


def check_max_length(cfg: LessonConfig, source: str) -> None:
    """Refuse a max_length longer than the model has position embeddings for (it would fail
    with a shape error at the first long pair, mid-training)."""
    try:
        limit = AutoConfig.from_pretrained(source).max_position_embeddings
    except (OSError, ValueError, AttributeError):  # unknown: let the model itself decide
        return
    if isinstance(limit, int) and cfg.max_length > limit:
        raise LessonError(f"max_length {cfg.max_length} is more than {cfg.model!r} can read "
                          f"({limit} tokens): use --max-length {limit} or less")
