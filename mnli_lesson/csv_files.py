"""Reading and checking one split's CSV: each problem becomes one line that names the line
an editor shows (physical lines, not records), and says what to do.

The label vocabulary comes from the lesson core (``mnli_lesson.core.LABELS``).
"""

from __future__ import annotations

import codecs
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

from mnli_lesson.core import LABEL2ID, NO_GOLD_LABEL
from mnli_lesson.errors import LessonError

COLUMNS: tuple[str, ...] = ("premise", "hypothesis", "label")
#: Separators people save "CSV" files with (spreadsheet exports in many locales use ';').
SEPARATORS: dict[str, str] = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
SAVE_AS_CSV = "save it as comma-separated CSV with the text in double quotes"
_NEWLINE = re.compile(rb"\r\n|\r|\n")
#: One physical line with its ending; lazily, so a 400 MB file is never copied to find one.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
#: The csv module's field limit while we read a text already in memory (a C long everywhere).
_MAX_FIELD = 2**31 - 1
#: Compressed files by their first bytes (what to call them, the tool that unpacks them).
_ARCHIVES: tuple[tuple[re.Pattern[bytes], str, str], ...] = (
    (re.compile(rb"\x1f\x8b"), "a gzip", "gunzip"),
    (re.compile(rb"PK(?:\x03\x04|\x05\x06|\x07\x08)"), "a zip", "unzip"),
    (re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)"), "a bzip2", "bunzip2"),
    (re.compile(rb"\xfd7zXZ\x00"), "an xz", "unxz"),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "a zstd", "unzstd"),
    (re.compile(rb"7z\xbc\xaf\x27\x1c"), "a 7-Zip", "7z x"),
    (re.compile(rb"Rar!\x1a\x07"), "a RAR", "unrar x"),
    (re.compile(rb"\x04\x22\x4d\x18"), "an lz4", "unlz4"),
    (re.compile(rb".{257}ustar(?:\x00|  \x00)", re.DOTALL), "a tar", "tar -xf"),  # POSIX, GNU
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Excel 97-2003 workbook (.xls)


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


def _excerpt(text: str, width: int = 40) -> str:
    """``text`` quoted and escaped, cut to ``width`` characters: never raw bytes, never pages."""
    return repr(text) if len(text) <= width else repr(text[:width]) + "..."


def shown_name(name: str) -> str:
    """A column name as a message shows it: plain when it is short, printable text."""
    return name if name.isprintable() and len(name) <= 40 else _excerpt(name)


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


def _head(path: Path, raw: bytes) -> str:
    """The file's first bytes ``raw`` as text, enough for the header (decoding all of the real
    train.csv up front would add seconds to every load; pandas reads the rest)."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        if err.reason == "unexpected end of data":  # a character cut at the edge of the read
            return raw[: err.start].decode("utf-8").removeprefix("\ufeff")
        return _read_text(path)  # raises the one line that says where the bad byte is


def _first_nul(path: Path, size: int = 1 << 20) -> tuple[int, int] | None:
    """The byte offset and physical line of the first NUL byte, if any, read ``size`` bytes at
    a time: a gigabyte of NULs is refused after one read, not after pandas held all of it."""
    offset, line, after_cr = 0, 1, False
    try:
        with path.open("rb") as handle:
            while (chunk := handle.read(size)) and (nul := chunk.find(b"\0")) < 0:
                offset += len(chunk)  # a bare search first: a good file costs one fast pass
            if not chunk:
                return None
            offset += nul
            handle.seek(0)
            for start in range(0, offset, size):  # lines only once there is a NUL to place
                part = handle.read(min(size, offset - start))
                # \r\n, \n and a lone \r each end a line, as in _NEWLINE, also across reads
                line += part.count(b"\n") + part.count(b"\r") - part.count(b"\r\n")
                line -= after_cr and part.startswith(b"\n")
                after_cr = part.endswith(b"\r")
    except PermissionError:
        raise file_denied(path) from None
    except OSError as err:
        raise LessonError(
            f"{path} cannot be read ({err.strerror or err}): copy or download it again") from None
    return offset, line


def _wide_text(head: bytes) -> str | None:
    """``UTF-16`` or ``UTF-32`` when ``head`` is text in one of them (their NUL bytes are no
    binary data): by byte-order mark, or by every other byte being NUL."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's: longer
        return "UTF-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    sample = head[:4096]
    half = len(sample) // 2
    zeros = sorted((sample[0::2].count(0), sample[1::2].count(0)))
    return "UTF-16" if half >= 8 and zeros[0] <= half // 10 and zeros[1] >= half * 9 // 10 \
        else None


def _refuse_binary(path: Path, head: bytes) -> None:
    """One line for a file that holds no CSV text at all (a workbook, an archive, UTF-16, NUL
    bytes), from its first bytes ``head`` and one scan for NULs; else nothing."""
    if head.startswith(_OLE2) or (head.startswith(b"PK\x03\x04")
                                  and (b"[Content_Types].xml" in head or b"xl/" in head)):
        kind = ".xls" if head.startswith(_OLE2) else ".xlsx"
        raise LessonError(f"{path} is an Excel workbook ({kind}), not a CSV file: open it in "
                          "Excel and save it as CSV UTF-8 (comma-separated)")
    for magic, kind, tool in _ARCHIVES:
        if magic.match(head):
            raise LessonError(f"{path} is {kind} archive, not a text CSV file: decompress it "
                              f"first ({tool}) and put the {path.name} it holds in its place")
    if wide := _wide_text(head):
        raise LessonError(f"{path} is {wide} text, not UTF-8: re-save it as UTF-8 CSV (in "
                          "Excel: Save As, CSV UTF-8)")
    found = _first_nul(path)
    if found is None:
        return
    offset, line = found
    try:  # text, then NULs: a damaged copy; NULs among non-text bytes: some other file
        head[:offset].decode("utf-8")
        text_before = line > 1
    except UnicodeDecodeError as err:
        text_before = line > 1 and err.reason == "unexpected end of data"
    if not text_before:
        raise LessonError(f"{path} is not a text CSV file (it holds binary data: NUL bytes from "
                          f"byte {offset:,}): replace it with the CSV file itself, or download "
                          "it again")
    raise LessonError(f"{path} line {line} holds NUL bytes (from byte {offset:,}), which no text "
                      "CSV has: the copy looks damaged or cut short; download it again")


def _next_record(reader: Iterator[list[str]], text: str) -> list[str]:
    """``next(reader)`` with the csv module's field limit raised to the length of ``text`` for
    that call only: a legitimate 200,000-character premise is no missing quote (its default
    limit is 131,072), and an unclosed quote still shows, as a record running to the end."""
    old = csv.field_size_limit(min(len(text) + 1, _MAX_FIELD))
    try:
        return next(reader)
    finally:
        csv.field_size_limit(old)


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
            fields = _next_record(reader, text)
        except StopIteration:
            return
        except csv.Error as err:
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
    shown = [shown_name(n) for n in names[:8]]
    return ", ".join(shown) if len(names) <= 8 else ", ".join(shown) + ", ..."


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
                f"{path} has two columns, {_excerpt(seen[key])} and {_excerpt(name)}, that "
                f"both mean {_excerpt(key)} "
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
    if k > n and not "".join(fields).strip():
        return LessonError(
            f"{path} line {line} holds only separators ({k} empty fields, the header has {n}): "
            "delete that row (spreadsheets can leave such rows at the end)")
    if k > n:
        return LessonError(
            f"{path} line {line} has {k} fields, {expected}: a comma in text without quotes "
            f"splits it; {SAVE_AS_CSV}")
    if last:
        lines = (m.group() for m in _LINE.finditer(text))
        tail = itertools.islice(lines, line - 1, None)
        try:  # strict: the file ending inside a quoted text is an error, not a short record
            _next_record(csv.reader(tail, strict=True), text)
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
    bytes, header, field counts, encoding and labels are all usable; else one line on what is
    wrong.

    Cleaning (empty sides, -1 labels) is left to the caller. Rows of only empty fields (a
    spreadsheet leaves them at the end) come back labelled -1 with empty sides, for it to drop.
    """
    path = Path(path)
    raw = _read_bytes(path, 1 << 16)
    _refuse_binary(path, raw)
    first = next(_records(path, _head(path, raw)), None)
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
    if bad.any():  # only rows without a label can be blank: never scan all of a big file
        blank = df[bad].apply(lambda column: column.str.strip() == "").all(axis=1)
        labels[blank[blank].index] = NO_GOLD_LABEL
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
            f"{path.name} line {line}: label {_excerpt(str(value))} is not an MNLI label "
            f"({int(bad.sum())} such rows); {hint}"
        )
    return df.assign(label=labels.astype(int))
