"""What makes two runs "the same run": settings that change training, plus content.

A run is named by a fingerprint of (a) the configuration fields that change what it trains,
(b) a digest of the training and validation pairs it actually uses, (c) a digest of the
model's configuration, weights and tokenizer files, and (d) ``RESULTS_VERSION``. Rewriting the
labels in a CSV, or replacing the weights under the same path, therefore trains afresh; two
comparisons that train the same thing share one result.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pandas as pd

from mnli_lesson.config import LessonConfig
from mnli_lesson.csv_files import COLUMNS
from mnli_lesson.known_checkpoints import weights_digest
from mnli_lesson.store import digest

#: Bump when a change to the package changes what a run with the same settings computes.
RESULTS_VERSION = 1
#: Fields that do not change what a single run trains or how it is scored.
NOT_TRAINING = frozenset({"out_dir", "sweep_sizes", "sweep_min_steps", "profile", "data",
                          "model", "eval_batch_size", "head_lr"})
#: Files of a checkpoint folder that decide what the model computes.
_MODEL_FILES = ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
                "special_tokens_map.json")


def training_settings(cfg: LessonConfig) -> dict[str, object]:
    """The configuration fields that change what a run trains (data and model by content)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in NOT_TRAINING}


def frame_digest(frame: pd.DataFrame) -> str:
    """Digest of the pairs and labels of ``frame``, in order (hashes every row's content)."""
    hashed = pd.util.hash_pandas_object(frame[list(COLUMNS)], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def model_digest(folder: str | Path) -> str:
    """Digest of a checkpoint folder's weights (cached by size and time) and its small files."""
    folder = Path(folder)
    if not folder.is_dir():  # a Hub id that is not downloaded yet: its name is all we have
        return digest("hub", str(folder))
    small = {name: (folder / name).read_bytes().hex() if (folder / name).is_file() else None
             for name in _MODEL_FILES}
    return digest(weights_digest(folder), digest(small))


def config_diff(a: LessonConfig, b: LessonConfig) -> str | None:
    """The first training field where ``a`` and ``b`` differ, as ``name: x vs y``; else None."""
    for f in dataclasses.fields(a):
        if f.name in ("out_dir", "sweep_sizes", "sweep_min_steps"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            return f"{f.name}: {x!r} vs {y!r}"
    return None


def run_fingerprint(cfg: LessonConfig, *, init: str, frozen: bool, train_size: int,
                    epochs: int, train_digest: str, eval_digest: str, model: str,
                    processes: int = 1) -> str:
    """Twelve hex digits naming one run by its settings and content.

    ``processes``: how many processes trained it; N processes take steps of N batches, so
    their run is another run (a single process's fingerprint leaves it out).
    """
    parts = [RESULTS_VERSION, training_settings(cfg), init, frozen, train_size, epochs,
             train_digest, eval_digest, model]
    if processes > 1:
        parts.append({"processes": processes})
    return digest(*parts)[:12]
