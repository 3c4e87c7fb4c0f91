"""Reading and checking one split's CSV: each problem becomes one line that names the line
an editor shows (physical lines, not records), and says what to do.

The label vocabulary comes from the lesson core (``mnli_lesson.core.LABELS``).
"""

from __future__ import annotations

import csv
import difflib
import itertools
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from mnli_lesson.core import LABEL2ID
from mnli_lesson.errors import LessonError

COLUMNS: tuple[str, ...] = ("premise", "hypothesis", "label")
#: Separators people save "CSV" files with (spreadsheet exports in many locales use ';').
SEPARATORS: dict[str, str] = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
SAVE_AS_CSV = "save it as comma-separated CSV with the text in double quotes"
_NEWLINE = re.compile(rb"\r\n|\r|\n")
#: One physical line with its ending; lazily, so a 400 MB file is never copied to find one.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def file_denied(path: Path) -> LessonError:
    """One line for a file we may not read (its folder may be fine)."""
    return LessonError(f"{path} cannot be read: permission denied; give yourself read access "
                       f"(chmod u+r {path}) or copy it to a folder of your own")


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


def _read_bytes(path: Path, size: int = -1) -> bytes:
    """The file's first ``size`` bytes (all of it by default), with one-line errors."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except PermissionError:
        raise file_denied(path) from None
    except OSError as err:
        raise LessonError(
            f"{path} cannot be read ({err.strerror or err}): copy or download it again") from None


def _read_text(path: Path) -> str:
    """The whole file as text (only when a problem needs a line number: pandas reads it)."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        # Physical lines, as an editor numbers them (\r\n, \n and a lone \r all end one).
        line = len(_NEWLINE.findall(raw, 0, err.start)) + 1
        raise LessonError(
            f"{path} is not UTF-8 text (line {line}, byte {err.start}): re-save it as UTF-8 CSV"
        ) from None
    return text.removeprefix("\ufeff")  # Excel's byte-order mark is not part of the header


def _head(path: Path, size: int = 1 << 16) -> str:
    """The first ``size`` bytes as text, enough for the header (decoding all of the real
    train.csv up front would add seconds to every load; pandas reads the rest)."""
    raw = _read_bytes(path, size)
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        if err.reason == "unexpected end of data":  # a character cut at the edge of the read
            return raw[: err.start].decode("utf-8").removeprefix("\ufeff")
        return _read_text(path)  # raises the one line that says where the bad byte is


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record pandas reads (whitespace-only lines skipped) with the physical line it
    starts on: counting records would say line 12 where an editor shows 42 once quoted text
    spans lines, or 6 for 9 after blank lines."""
    last = [""]

    def feed() -> Iterator[str]:
        for match in _LINE.finditer(text):  # lines end at \r\n, \n or \r, as the csv module's do
            last[0] = match.group()
            yield last[0]

    reader = csv.reader(feed())
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            if "field limit" in str(err):
                raise LessonError(
                    f"{path} line {start}: a quoted text there runs on for more than "
                    f"{csv.field_size_limit():,} characters, so its closing quote is probably "
                    "missing: add it, or download the file again") from None
            raise LessonError(
                f"{path} line {start} is not CSV ({err}): {SAVE_AS_CSV}") from None
        one_line = reader.line_num == start
        if not (one_line and not last[0].strip(" \t\r\n")):  # pandas skips blank lines
            yield start, fields
        start = reader.line_num + 1


def _record_at(path: Path, text: str, index: int) -> tuple[int, list[str]]:
    """Record ``index`` (0 = the header) and its starting line."""
    return next(itertools.islice(_records(path, text), index, None))


def _separator(text: str) -> str | None:
    """The separator ``text`` (a header or a row) seems to use instead of commas, if any."""
    counts = {sep: text.count(sep) for sep in SEPARATORS}
    sep = max(counts, key=counts.get)
    return sep if counts[sep] and counts[sep] >= text.count(",") else None


def _shown(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 8 else ", ".join(names[:8]) + ", ..."


def _check_header(path: Path, names: list[str]) -> list[str]:
    """The header's names, stripped and lower-cased, once they are usable; else one line."""
    lowered = [n.strip().lower() for n in names]
    if not set(COLUMNS) <= set(lowered):
        sep = _separator(",".join(names))
        if sep is not None:
            shown = ",".join(names)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise LessonError(f"{path} seems to use {SEPARATORS[sep]} between columns, not "
                              f"commas (its header is {shown!r}): {SAVE_AS_CSV}")
    seen: dict[str, str] = {}
    for name, key in zip(names, lowered, strict=True):
        if not key:  # pandas names blank headers "Unnamed: N", which never collide
            continue
        if key in seen:
            raise LessonError(
                f"{path} has two columns, {seen[key]!r} and {name!r}, that both mean {key!r} "
                "(case and spaces are ignored): keep one of them and delete or rename the other")
        seen[key] = name
    for column in COLUMNS:
        if column not in lowered:
            close = difflib.get_close_matches(column, lowered, n=1, cutoff=0.6)
            hint = f" ({close[0]!r} looks misspelt: rename it to {column!r})" if close else ""
            raise LessonError(
                f"{path.name} has no {column!r} column{hint}; found {_shown(lowered)}; "
                f"an MNLI CSV needs premise, hypothesis, label"
            )
    return lowered


def _fields_error(path: Path, text: str, header: list[str], line: int, fields: list[str],
                  last: bool) -> LessonError:
    """One line for a record with the wrong number of fields."""
    n, k = len(header), len(fields)
    expected = f"expected {n} like the header ({_shown(header)})"
    if k > n:
        return LessonError(
            f"{path} line {line} has {k} fields, {expected}: a comma in text without quotes "
            f"splits it; {SAVE_AS_CSV}")
    if last:
        lines = (m.group() for m in _LINE.finditer(text))
        tail = itertools.islice(lines, line - 1, None)
        try:  # strict: the file ending inside a quoted text is an error, not a short record
            next(csv.reader(tail, strict=True))
        except csv.Error:
            return LessonError(
                f"{path} ends inside the quoted text that starts on line {line}: the file looks "
                "truncated (download it again), or that quote is never closed (close it)")
        return LessonError(f"{path} line {line}, the last, has {k} of {n} fields: the file "
                           "looks truncated: download it again")
    sep = _separator(",".join(fields))
    seems = f"; that line seems to use {SEPARATORS[sep]} between columns" if sep else ""
    word = "field" if k == 1 else "fields"
    return LessonError(f"{path} line {line} has {k} {word}, {expected}{seems}: {SAVE_AS_CSV}")


def _shape_error(path: Path, text: str, header: list[str]) -> LessonError | None:
    """The first record whose field count differs from the header's, as one line; else None."""
    records = _records(path, text)
    for line, fields in records:
        if len(fields) != len(header):
            last = next(records, None) is None
            return _fields_error(path, text, header, line, fields, last)
    return None


def read_checked(path: str | os.PathLike) -> pd.DataFrame:
    """The rows of ``path`` (a regular file) with an integer ``label`` (0-2 or -1), once its
    header, field counts, encoding and labels are all usable; else one line on what is wrong.

    Cleaning (empty sides, -1 labels) is left to the caller.
    """
    path = Path(path)
    first = next(_records(path, _head(path)), None)
    if first is None:
        raise LessonError(f"{path} is empty: download it again")
    header = _check_header(path, first[1])
    try:
        df = pd.read_csv(path, keep_default_na=False, dtype=str, encoding="utf-8")
    except PermissionError:
        raise file_denied(path) from None
    except UnicodeDecodeError:
        _read_text(path)  # raises the one line that says where the bad byte is
        raise LessonError(f"{path} is not UTF-8 text: re-save it as UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise LessonError(f"{path} is empty: download it again") from None
    except (pd.errors.ParserError, csv.Error) as err:
        problem = _shape_error(path, _read_text(path), header)
        if problem is not None:
            raise problem from None
        first_line = str(err).strip().splitlines()[0]
        raise LessonError(
            f"{path} is not a readable CSV ({first_line}): {SAVE_AS_CSV}, or download it again"
        ) from None
    if not isinstance(df.index, pd.RangeIndex):
        # Rows longer than the header: pandas silently took their first field as an index.
        raise _shape_error(path, _read_text(path), header) or LessonError(
            f"{path} has rows with more fields than its header: {SAVE_AS_CSV}")
    df.columns = [str(c).strip().lower() for c in df.columns]
    _check_header(path, list(df.columns))  # pandas read the same header; this guards that
    labels = df["label"].map(_label_id)
    bad = labels.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        last = row == len(df) - 1
        text = _read_text(path)
        line, fields = _record_at(path, text, row + 1)
        if len(fields) <= header.index("label"):  # no label field at all: pandas padded it
            raise _fields_error(path, text, header, line, fields, last)
        value = df["label"].iloc[row]
        truncated = last and str(value).strip() == ""
        hint = (
            "the file looks truncated: download it again"
            if truncated
            else "labels must be 0/1/2/-1 or entailment/neutral/contradiction"
        )
        raise LessonError(
            f"{path.name} line {line}: label {value!r} is not an MNLI label "
            f"({int(bad.sum())} such rows); {hint}"
        )
    return df.assign(label=labels.astype(int))
