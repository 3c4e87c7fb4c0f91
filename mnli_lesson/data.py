"""MNLI data: label names, sources (sample, Kaggle, a folder), loading, cleaning, subsets and
length statistics. Reading and checking one CSV file is :mod:`mnli_lesson.csv_files`."""

from __future__ import annotations

import errno
import math
import os
import socket
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mnli_lesson.core import LABELS, clean_pairs
from mnli_lesson.csv_files import file_denied, read_checked
from mnli_lesson.errors import LessonError
from mnli_lesson.label_order import negation_order_error, text_column_error

SPLITS: tuple[str, ...] = ("train", "validation_matched", "validation_mismatched")
KAGGLE_DATASET = "thedevastator/unlocking-language-understanding-with-the-multin"
OFFLINE_REMEDY = (
    "set MNLI_LESSON_DATA to a folder holding train.csv, validation_matched.csv and "
    "validation_mismatched.csv, or use the built-in sample (MNLI_LESSON_DATA=sample or "
    "MNLI_LESSON_PROFILE=offline)"
)


def sample_dir() -> Path:
    """The folder of the built-in sample shipped with the package."""
    return Path(__file__).with_name("sample")


@dataclass
class MnliData:
    """The three labelled splits, plus a record of what cleaning removed."""

    splits: dict[str, pd.DataFrame]
    source: str
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def train(self) -> pd.DataFrame:
        return self.splits["train"]

    @property
    def validation_matched(self) -> pd.DataFrame:
        return self.splits["validation_matched"]

    @property
    def validation_mismatched(self) -> pd.DataFrame:
        return self.splits["validation_mismatched"]

    def sizes(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.splits.items()}


# --------------------------------------------------------------------------- finding the files


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True if a TCP connection to ``host`` opens within ``timeout`` seconds.

    Name resolution is not covered by socket timeouts, so the probe runs in a daemon thread
    that we stop waiting for: an offline machine answers in seconds, never minutes.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        # A malformed host (from a bad HF_ENDPOINT, an over-long label raises UnicodeError,
        # a ValueError) is unreachable too, and must not print a traceback from this thread.
        except (OSError, ValueError, OverflowError):
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _kaggle_cache() -> Path | None:
    """A copy kagglehub downloaded earlier, if any (so a machine that went offline still works)."""
    configured = os.environ.get("KAGGLEHUB_CACHE", "").strip()
    try:
        root = (Path(configured).expanduser() if configured
                else Path.home() / ".cache" / "kagglehub")
    except RuntimeError:  # no home folder to expand (a bare container): so no cache either
        return None
    versions = root / "datasets" / KAGGLE_DATASET / "versions"
    # Only numbered versions: a "latest" folder (or any other name) must not crash int().
    found = [p for p in versions.glob("*/train.csv")
             if p.parent.name.isascii() and p.parent.name.isdigit()]
    found.sort(key=lambda p: int(p.parent.name), reverse=True)
    return found[0].parent if found else None


def download_kaggle(timeout: float = 3.0) -> Path:
    """Download (or reuse) the Kaggle MNLI export and return its folder."""
    cached = _kaggle_cache()
    if not reachable("www.kaggle.com", timeout=timeout):
        if cached is not None:
            return cached
        raise LessonError(f"Kaggle cannot be reached from this machine: {OFFLINE_REMEDY}")
    import kagglehub

    try:
        return Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as err:  # kagglehub raises many types; the user needs one remedy
        if cached is not None:
            return cached
        raise LessonError(
            f"Kaggle download failed ({type(err).__name__}): {OFFLINE_REMEDY}") from None


def _kind(path: Path) -> str:
    """``file``, ``folder``, ``missing``, ``loop`` (symbolic links in a cycle), ``dangling``
    (a link to nothing) or ``other``. PermissionError is left to the caller, which knows whether
    a file or its folder was refused; any other failure is one line."""
    try:
        mode = path.stat().st_mode
    except PermissionError:
        raise
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return "dangling" if path.is_symlink() else "missing"
        raise LessonError(
            f"{path} cannot be used ({err.strerror or err}): check the path") from None
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "other"


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "a path"


def _folder_denied(folder: Path) -> LessonError:
    return LessonError(f"data folder {folder} cannot be read: permission denied; give yourself "
                       f"access (chmod u+rx {folder}) or copy the data to a folder of your own")


def _expand(text: str) -> Path:
    """``text`` with a leading ``~`` or ``~user`` expanded (the shell leaves ``--data=~/x``
    alone, and notebooks and MNLI_LESSON_DATA never expand it)."""
    expanded = os.path.expanduser(text)
    if expanded.startswith("~") and not os.path.exists(expanded):
        home = text.split("/", 1)[0]
        raise LessonError(f"data folder {text}: {home!r} is no home folder on this machine (no "
                          "such user, or HOME is unset): write the folder's full path")
    return Path(expanded)


def resolve_data_dir(source: str | os.PathLike) -> Path:
    """``sample`` -> the built-in sample, ``kaggle`` -> a download, anything else -> a folder."""
    text = str(source).strip()
    if text == "sample":
        return sample_dir()
    if text == "kaggle":
        return download_kaggle()
    folder = _expand(text)
    try:
        kind = _kind(folder)
    except PermissionError:
        raise _folder_denied(folder) from None
    if kind == "missing":
        raise LessonError(f"data folder {folder} does not exist: {OFFLINE_REMEDY}")
    if kind == "loop":
        raise LessonError(f"data folder {folder} is a symbolic link that loops (it leads back to "
                          f"itself): replace it with the real folder, or {OFFLINE_REMEDY}")
    if kind == "dangling":
        raise LessonError(f"data folder {folder} is a symbolic link to {_link_target(folder)}, "
                          f"which does not exist: {OFFLINE_REMEDY}")
    if kind != "folder":
        raise LessonError(f"data source {folder} is a file, not a folder: {OFFLINE_REMEDY}")
    return folder


# --------------------------------------------------------------------------- reading one split


def read_split(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read one split's CSV, check it, and clean it.

    Returns the clean frame (``premise``, ``hypothesis``, integer ``label`` 0-2 and any extra
    columns) and the number of rows dropped for each reason.
    """
    path = Path(path)
    try:
        kind = _kind(path)
    except PermissionError:
        raise file_denied(path) from None
    if kind == "missing":
        raise LessonError(f"{path.name} is missing from {path.parent}: {OFFLINE_REMEDY}")
    if kind == "folder":
        raise LessonError(f"{path} is a folder, not a file: put the {path.name} file itself in "
                          f"{path.parent} instead")
    if kind == "loop":
        raise LessonError(f"{path} is a symbolic link that loops (it leads back to itself): "
                          f"replace it with the {path.name} file itself")
    if kind == "dangling":
        raise LessonError(f"{path} is a symbolic link to {_link_target(path)}, which does not "
                          f"exist: replace it with the {path.name} file itself")
    if kind != "file":
        raise LessonError(f"{path} is not a regular file: replace it with the CSV file itself")
    df = read_checked(path)
    problem = text_column_error(path, df)
    if problem is not None:
        raise problem
    kept, dropped = clean(df)
    problem = negation_order_error(path, kept)
    if problem is not None:
        raise problem
    return kept, dropped


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """``core.clean_pairs``, counting what it drops: pairs with an empty side (rows of only
    empty fields, which spreadsheets leave, among them), and pairs without a gold label among
    the others."""
    kept = clean_pairs(df)
    empty = int(((df["premise"].astype(str).str.strip() == "")
                 | (df["hypothesis"].astype(str).str.strip() == "")).sum())
    return kept, {"empty_pair": empty, "no_gold_label": len(df) - len(kept) - empty}


def load_mnli(source: str | os.PathLike = "sample") -> MnliData:
    """Load train / validation_matched / validation_mismatched from ``source``.

    ``source`` is ``sample`` (built in), ``kaggle`` (downloaded with ``kagglehub``) or a folder
    with the three CSVs (columns ``premise,hypothesis,label``; label 0 = entailment,
    1 = neutral, 2 = contradiction).
    """
    folder = resolve_data_dir(source)
    try:
        kinds = {split: _kind(folder / f"{split}.csv") for split in SPLITS}
    except PermissionError:  # the files cannot even be looked at: the folder refuses us
        raise _folder_denied(folder) from None
    missing = [split for split, kind in kinds.items() if kind == "missing"]
    if missing:
        raise LessonError(
            f"{folder} lacks {', '.join(m + '.csv' for m in missing)}: {OFFLINE_REMEDY}"
        )
    splits, dropped = {}, {}
    for split in SPLITS:
        splits[split], dropped[split] = read_split(folder / f"{split}.csv")
        if splits[split].empty:
            counts = dropped[split]
            raise LessonError(
                f"{folder / (split + '.csv')} has no labelled pairs ({counts['empty_pair']} with "
                f"an empty side, {counts['no_gold_label']} labelled -1): it needs rows of "
                "premise, hypothesis, label 0/1/2; download it again"
            )
    return MnliData(splits=splits, source=str(source), dropped=dropped)


# --------------------------------------------------------------------------- subsets and statistics


def label_counts(df: pd.DataFrame) -> dict[str, int]:
    """Pairs per label name, in LABELS order (zeros included)."""
    counts = df["label"].value_counts()
    return {name: int(counts.get(i, 0)) for i, name in enumerate(LABELS)}


def require_two_labels(frame: pd.DataFrame, what: str, why: str) -> None:
    """Refuse, in one line, pairs that all carry one label (``why`` says what that spoils)."""
    if len(frame) and frame["label"].nunique() < 2:
        only = LABELS[int(frame["label"].iloc[0])]
        raise LessonError(f"{what} holds only {only} pairs ({len(frame)}): {why}; give it "
                          "pairs of at least two labels")


def stratified_subset(df: pd.DataFrame, n: int | None, seed: int = 42) -> pd.DataFrame:
    """``n`` pairs drawn without replacement, keeping the label shares; seeded.

    ``n=None`` or ``n == len(df)`` returns all pairs (shuffled, so order never leaks labels).
    """
    if n is None:
        n = len(df)
    if n <= 0:
        raise LessonError(f"a subset needs at least 1 pair, got {n}")
    if n > len(df):
        raise LessonError(
            f"asked for {n} pairs but the data has only {len(df)}: ask for at most {len(df)}, "
            "or for all of them ('all' / None)"
        )
    rng = np.random.default_rng(seed)
    shares = df["label"].value_counts(normalize=True).sort_index()
    # Largest-remainder rounding: per-label quotas that add up to exactly n.
    raw = shares * n
    quota = np.floor(raw).astype(int)
    for label in (raw - quota).sort_values(ascending=False).index[: n - int(quota.sum())]:
        quota[label] += 1
    picked = [
        rng.choice(np.flatnonzero(df["label"].to_numpy() == label), size=int(k), replace=False)
        for label, k in quota.items()
        if k > 0
    ]
    order = rng.permutation(np.concatenate(picked))
    return df.iloc[order].reset_index(drop=True)


def pair_lengths(tokenizer, df: pd.DataFrame) -> np.ndarray:
    """Token count of each encoded pair ``[CLS] premise [SEP] hypothesis [SEP]``, untruncated."""
    encoded = tokenizer(
        df["premise"].tolist(), df["hypothesis"].tolist(), truncation=False, verbose=False
    )
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def choose_max_length(
    lengths: np.ndarray, percentile: float = 99.0, multiple: int = 8
) -> tuple[int, float]:
    """The ``percentile``-th pair length rounded *up* to a multiple of ``multiple``.

    Returns ``(max_length, share_truncated)`` where the share is of pairs longer than it.
    Multiples of 8 suit tensor cores and vectorised CPU kernels; rounding up never truncates
    more than the percentile promised.
    """
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise LessonError("no pair lengths to choose max_length from")
    if not 0 < percentile <= 100:
        raise LessonError(f"percentile must be in (0, 100], got {percentile}")
    cut = float(np.percentile(lengths, percentile, method="higher"))
    max_length = int(math.ceil(cut / multiple) * multiple)
    return max_length, float((lengths > max_length).mean())


def length_summary(lengths: np.ndarray) -> dict[str, float]:
    """Mean, median, max and the 90/95/99th percentiles of pair lengths."""
    lengths = np.asarray(lengths)
    return {
        "mean": float(lengths.mean()),
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90, method="higher")),
        "p95": float(np.percentile(lengths, 95, method="higher")),
        "p99": float(np.percentile(lengths, 99, method="higher")),
        "max": int(lengths.max()),
    }
