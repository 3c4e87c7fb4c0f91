"""MNLI data: label names, loading, validation, cleaning, subsets, length statistics."""

from __future__ import annotations

import csv
import difflib
import math
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mnli_lesson.errors import LessonError

#: Label ids as the Hugging Face ``multi_nli`` export (and so the Kaggle CSV) uses them.
LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
NO_GOLD_LABEL = -1  # MNLI's test splits (and unresolved pairs) carry -1: never train or score on it

SPLITS: tuple[str, ...] = ("train", "validation_matched", "validation_mismatched")
COLUMNS: tuple[str, ...] = ("premise", "hypothesis", "label")
KAGGLE_DATASET = "thedevastator/unlocking-language-understanding-with-the-multin"
OFFLINE_REMEDY = (
    "set MNLI_LESSON_DATA to a folder holding train.csv, validation_matched.csv and "
    "validation_mismatched.csv, or use the built-in sample (MNLI_LESSON_DATA=sample or "
    "MNLI_LESSON_PROFILE=tiny)"
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
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _kaggle_cache() -> Path | None:
    """A copy kagglehub downloaded earlier, if any (so a machine that went offline still works)."""
    root = Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub"))
    versions = root / "datasets" / KAGGLE_DATASET / "versions"
    found = sorted(versions.glob("*/train.csv"), key=lambda p: int(p.parent.name), reverse=True)
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


def resolve_data_dir(source: str | os.PathLike) -> Path:
    """``sample`` -> the built-in sample, ``kaggle`` -> a download, anything else -> a folder."""
    text = str(source).strip()
    if text == "sample":
        return sample_dir()
    if text == "kaggle":
        return download_kaggle()
    folder = Path(text).expanduser()
    if not folder.exists():
        raise LessonError(f"data folder {folder} does not exist: {OFFLINE_REMEDY}")
    if not folder.is_dir():
        raise LessonError(f"data source {folder} is a file, not a folder: {OFFLINE_REMEDY}")
    return folder


# --------------------------------------------------------------------------- reading and checking


def _label_id(value: object) -> int | None:
    """Map one raw label cell to 0/1/2/-1, or None when it is not a label at all."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in LABEL2ID:
            return LABEL2ID[text]
        try:
            value = float(text)
        except ValueError:
            return None
    is_number = isinstance(value, (int, float, np.integer, np.floating))
    if (is_number and not isinstance(value, bool) and math.isfinite(value)
            and float(value).is_integer() and int(value) in (-1, 0, 1, 2)):
        return int(value)
    return None


def _first_bad_byte(path: Path) -> str:
    """Where the first non-UTF-8 byte is (pandas reports an offset within a buffer)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return f"line {line}, byte {err.start}"
    return "undecodable bytes"


def read_split(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read one split's CSV, check it, and clean it.

    Returns the clean frame (``premise``, ``hypothesis``, integer ``label`` 0-2 and any extra
    columns) and the number of rows dropped for each reason.
    """
    path = Path(path)
    if not path.is_file():
        raise LessonError(f"{path.name} is missing from {path.parent}: {OFFLINE_REMEDY}")
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype=str, encoding="utf-8")
    except UnicodeDecodeError:
        raise LessonError(
            f"{path} is not UTF-8 text ({_first_bad_byte(path)}): re-save it as UTF-8 CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise LessonError(f"{path} is empty: download it again") from None
    except (pd.errors.ParserError, csv.Error) as err:
        first = str(err).strip().splitlines()[0]
        raise LessonError(
            f"{path} is not a readable CSV ({first}); it may be truncated: download it again"
        ) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    for column in COLUMNS:
        if column not in df.columns:
            close = difflib.get_close_matches(column, df.columns, n=1, cutoff=0.6)
            hint = f" ({close[0]!r} looks misspelt: rename it to {column!r})" if close else ""
            raise LessonError(
                f"{path.name} has no {column!r} column{hint}; found {', '.join(df.columns)}; "
                f"an MNLI CSV needs premise, hypothesis, label"
            )
    labels = df["label"].map(_label_id)
    bad = labels.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = df["label"].iloc[row]
        truncated = row == len(df) - 1 and str(value).strip() == ""
        hint = (
            "the file looks truncated: download it again"
            if truncated
            else "labels must be 0/1/2/-1 or entailment/neutral/contradiction"
        )
        raise LessonError(
            f"{path.name} line {row + 2}: label {value!r} is not an MNLI label "
            f"({int(bad.sum())} such rows); {hint}"
        )
    df = df.assign(label=labels.astype(int))
    return clean(df)


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop pairs with an empty side and pairs without a gold label; count both."""
    premise = df["premise"].astype(str).str.strip()
    hypothesis = df["hypothesis"].astype(str).str.strip()
    empty = (premise == "") | (hypothesis == "")
    no_gold = (df["label"] == NO_GOLD_LABEL) & ~empty
    kept = df[~empty & ~no_gold].reset_index(drop=True)
    return kept, {"empty_pair": int(empty.sum()), "no_gold_label": int(no_gold.sum())}


def load_mnli(source: str | os.PathLike = "sample") -> MnliData:
    """Load train / validation_matched / validation_mismatched from ``source``.

    ``source`` is ``sample`` (built in), ``kaggle`` (downloaded with ``kagglehub``) or a folder
    with the three CSVs (columns ``premise,hypothesis,label``; label 0 = entailment,
    1 = neutral, 2 = contradiction).
    """
    folder = resolve_data_dir(source)
    missing = [s for s in SPLITS if not (folder / f"{s}.csv").is_file()]
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
