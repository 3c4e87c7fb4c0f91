"""Bad input, round three (issue 22), the data files: long texts, binary and compressed files,
Excel's blank rows, an empty output folder, and integer labels in another order than a text
label column of the same file says."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from test_data import cli_error  # tests/ is on sys.path under pytest

from mnli_lesson.config import LessonConfig, check_config, resolve_config
from mnli_lesson.csv_files import read_checked
from mnli_lesson.data import SPLITS, load_mnli, sample_dir
from mnli_lesson.errors import LessonError

HEADER = "premise,hypothesis,label\n"
ROWS = "A man sleeps.,A person rests.,0\nA dog runs.,A cat sits.,1\nA boy reads.,Nobody reads.,2\n"
LONG = "x" * 200_000  # a legitimate text longer than the csv module's default field limit


def make_folder(root: Path, train: str | bytes | None = None) -> Path:
    """A data folder with the built-in sample's validation splits and ``train`` as train.csv."""
    folder = root / "mnli"
    folder.mkdir()
    for split in SPLITS:
        target = folder / f"{split}.csv"
        if split != "train" or train is None:
            shutil.copy(sample_dir() / f"{split}.csv", target)
        elif isinstance(train, bytes):
            target.write_bytes(train)
        else:
            target.write_text(train, encoding="utf-8")
    return folder


def load_error(folder: Path) -> str:
    """The one line load_mnli refuses ``folder`` with: short, and no raw control bytes."""
    with pytest.raises(LessonError) as info:
        load_mnli(folder)
    message = str(info.value)
    assert "\n" not in message and "\x00" not in message, repr(message[:300])
    assert message.isprintable(), repr(message[:300])
    assert len(message) < 500, message[:600]
    return message


def compare_error(capsys, out: Path, data: Path) -> str:
    return cli_error(capsys, ["compare", "finetune-vs-frozen", "--profile", "tiny", "--epochs",
                              "1", "--out", str(out), "--no-progress", "--data", str(data)])


# --------------------------------------------------------------------------- 1. long texts


def test_bad_label_after_a_long_quoted_text_names_its_line(tmp_path):
    text = HEADER + ROWS + f'"{LONG}",B.,0\nC.,D.,maybe\n'
    message = load_error(make_folder(tmp_path, text))
    assert message.startswith("train.csv line 6: label 'maybe' is not an MNLI label"), message
    assert "closing quote" not in message


def test_bad_label_in_the_row_of_a_long_unquoted_text(tmp_path):
    text = HEADER + ROWS + f"{LONG},B.,7\nC.,D.,1\n"
    message = load_error(make_folder(tmp_path, text))
    assert message.startswith("train.csv line 5: label '7' is not an MNLI label"), message


def test_a_long_bad_label_is_shown_short(tmp_path):
    text = HEADER + ROWS + f'C.,D.,"{LONG}"\nE.,F.,1\n'
    message = load_error(make_folder(tmp_path, text))
    assert message.startswith("train.csv line 5: label 'xxxxxxxx"), message
    assert "...'" in message or "'..." in message
    assert len(message) < 300


def test_a_short_last_row_after_a_long_text_is_truncation(tmp_path):
    text = HEADER + ROWS + f'"{LONG}",B.'
    message = load_error(make_folder(tmp_path, text))
    assert "line 5, the last, has 2 of 3 fields: the file looks truncated" in message, message


def test_an_unclosed_quote_is_still_found(tmp_path):
    text = HEADER + ROWS + f'"{LONG},B.,0\nC.,D.,1\n'
    message = load_error(make_folder(tmp_path, text))
    assert "ends inside the quoted text that starts on line 5" in message, message


def test_the_csv_field_limit_is_left_as_it_was(tmp_path):
    import csv

    before = csv.field_size_limit()
    load_error(make_folder(tmp_path, HEADER + ROWS + f'"{LONG}",B.,0\nC.,D.,maybe\n'))
    assert csv.field_size_limit() == before


# --------------------------------------------------------------------------- 2. binary files


def test_a_file_of_nul_bytes_is_binary_and_refused_early(tmp_path):
    path = tmp_path / "mnli"
    folder = make_folder(tmp_path)
    (folder / "train.csv").write_bytes(b"\x00" * (8 << 20))
    started = time.perf_counter()
    tracemalloc.start()
    message = load_error(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < (4 << 20)  # it stopped reading: the whole 8 MB was never held
    assert message == (f"{folder / 'train.csv'} is not a text CSV file (it holds binary data: "
                       "NUL bytes from byte 0): replace it with the CSV file itself, or download "
                       "it again")


def test_nul_bytes_after_good_rows_name_their_line(tmp_path):
    good = (HEADER + ROWS).encode()
    message = load_error(make_folder(tmp_path, good + b"\x00" * (3 << 20)))
    assert f"train.csv line 5 holds NUL bytes (from byte {len(good)})" in message, message
    assert "download it again" in message


def test_a_nul_byte_far_into_the_file_is_found(tmp_path):
    rows = "".join(f"Premise {i}.,Hypothesis {i}.,{i % 3}\r\n" for i in range(40_000))
    content = (HEADER + rows).encode() + b"A \x00 here.,B.,0\n"
    message = load_error(make_folder(tmp_path, content))
    assert "train.csv line 40002 holds NUL bytes" in message, message


def test_utf16_is_named_as_utf16(tmp_path):
    for content in ((HEADER + ROWS).encode("utf-16"), (HEADER + ROWS).encode("utf-16-le")):
        folder = make_folder(tmp_path, content)
        message = load_error(folder)
        assert message == (f"{folder / 'train.csv'} is UTF-16 text, not UTF-8: re-save it as "
                           "UTF-8 CSV (in Excel: Save As, CSV UTF-8)"), message
        shutil.rmtree(folder)


def test_a_control_byte_in_the_header_is_shown_escaped(tmp_path):
    message = load_error(make_folder(tmp_path, "prem\x07ise,hypothesis,label\nA.,B.,0\n"))
    assert "found 'prem\\x07ise', hypothesis, label" in message, message


def test_nul_file_through_the_cli(tmp_path, capsys, clean_env):
    folder = make_folder(tmp_path, b"\x00" * (1 << 20))
    line = compare_error(capsys, tmp_path / "out", folder)
    assert line.startswith(f"error: {folder / 'train.csv'} is not a text CSV file"), line


# --------------------------------------------------------------------------- 3. archives


def _zip(names: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in names.items():
            archive.writestr(name, text)
    return buffer.getvalue()


CSV = (HEADER + ROWS).encode()


@pytest.mark.parametrize(("content", "kind", "tool"), [
    (gzip.compress(CSV), "a gzip", "gunzip"),
    (bz2.compress(CSV), "a bzip2", "bunzip2"),
    (lzma.compress(CSV), "an xz", "unxz"),
    (_zip({"train.csv": CSV.decode()}), "a zip", "unzip"),
    # A zstd frame: the magic number, then a frame header (the test needs no zstd package).
    (b"\x28\xb5\x2f\xfd\x24\x00\x01\x00\x00" + CSV, "a zstd", "unzstd"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "a 7-Zip", "7z x"),
], ids=["gzip", "bzip2", "xz", "zip", "zstd", "7z"])
def test_a_compressed_file_says_decompress_it(tmp_path, content, kind, tool):
    folder = make_folder(tmp_path, content)
    message = load_error(folder)
    assert message == (f"{folder / 'train.csv'} is {kind} archive, not a text CSV file: "
                       f"decompress it first ({tool}) and put the train.csv it holds in its "
                       "place"), message


def test_an_excel_workbook_says_save_as_csv(tmp_path):
    xlsx = _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})
    xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    for content, kind in ((xlsx, ".xlsx"), (xls, ".xls")):
        folder = make_folder(tmp_path, content)
        assert load_error(folder) == (
            f"{folder / 'train.csv'} is an Excel workbook ({kind}), not a CSV file: open it in "
            "Excel and save it as CSV UTF-8 (comma-separated)")
        shutil.rmtree(folder)


def test_a_tar_archive_is_named(tmp_path):
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("train.csv")
        info.size = len(CSV)
        archive.addfile(info, io.BytesIO(CSV))
    message = load_error(make_folder(tmp_path, buffer.getvalue()))
    assert "is a tar archive, not a text CSV file: decompress it first (tar -xf)" in message


def test_a_csv_that_merely_looks_like_an_archive_is_read(tmp_path):
    text = "BZh1,premise,hypothesis,label\nx,A.,B.,0\n"
    assert read_checked(make_folder(tmp_path, text) / "train.csv")["label"].tolist() == [0]
    premise = "p" * (257 - len(HEADER)) + "ustard is yellow."  # "ustar" where tar has its mark
    path = tmp_path / "mustard.csv"
    path.write_text(HEADER + f"{premise},It is a sauce.,1\n", encoding="utf-8")
    assert read_checked(path)["label"].tolist() == [1]


def test_gzip_through_the_cli(tmp_path, capsys, clean_env):
    folder = make_folder(tmp_path, gzip.compress(CSV))
    line = compare_error(capsys, tmp_path / "out", folder)
    assert line.endswith("is a gzip archive, not a text CSV file: decompress it first (gunzip) "
                         "and put the train.csv it holds in its place"), line


# --------------------------------------------------------------------------- 4. blank rows


@pytest.mark.parametrize("tail", [",,\n,,\n,,\n", ",,\r\n,,\r\n,,\r\n", ",,\n,,\n,,", ' , ,""\n'
                                  ',,\n,,\n'])
def test_excel_trailing_blank_rows_are_skipped_and_counted(tmp_path, tail):
    data = load_mnli(make_folder(tmp_path, HEADER + ROWS + tail))
    assert data.train["label"].tolist() == [0, 1, 2]
    assert data.dropped["train"] == {"empty_pair": 3, "no_gold_label": 0}


def test_blank_rows_in_the_middle_are_skipped(tmp_path):
    text = "premise,hypothesis,label,genre\nA.,B.,0,fiction\n,,,\nC.,D.,1,travel\n,,,\n"
    data = load_mnli(make_folder(tmp_path, text))
    assert data.train["premise"].tolist() == ["A.", "C."]
    assert data.dropped["train"]["empty_pair"] == 2


def test_a_row_with_text_and_no_label_is_still_refused(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + ROWS + "E.,F.,\n,,\n,,\n"))
    assert message.startswith("train.csv line 5: label '' is not an MNLI label (1 such rows)"), \
        message


def test_a_row_with_only_a_genre_is_not_blank(tmp_path):
    text = "premise,hypothesis,label,genre\nA.,B.,0,fiction\n,,,travel\n,,,\n"
    assert "line 3: label ''" in load_error(make_folder(tmp_path, text))


def test_a_file_of_only_blank_rows_has_no_pairs(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + ",,\n,,\n"))
    assert "has no labelled pairs (2 with an empty side, 0 labelled -1)" in message


def test_a_blank_row_with_more_separators_than_the_header(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + ROWS + ",,,,\nE.,F.,1\n"))
    assert "line 5 holds only separators (5 empty fields, the header has 3): delete that row" \
        in message, message


# --------------------------------------------------------------------------- 5. empty out_dir


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_out_dir_is_refused_however_it_is_given(value):
    expected = "out_dir is empty, which would write into the current folder"
    with pytest.raises(LessonError, match=expected):
        LessonConfig(out_dir=value)
    with pytest.raises(LessonError, match=expected):
        resolve_config("tiny", environ={}, out_dir=value)
    cfg = resolve_config("tiny", environ={})
    cfg.out_dir = value  # edited after resolution, as a notebook cell may
    with pytest.raises(LessonError, match=expected):
        check_config(cfg)


def test_an_empty_out_dir_variable_through_the_cli(tmp_path, capsys, clean_env):
    clean_env.setenv("MNLI_LESSON_OUT_DIR", "")
    line = cli_error(capsys, ["compare", "finetune-vs-frozen", "--profile", "tiny"])
    assert line == "error: MNLI_LESSON_OUT_DIR is empty: unset it or give a value"


# --------------------------------------------------------------------------- 6. label order


PERMUTED = ("premise,hypothesis,label,gold_label\n"
            "A.,B.,0,contradiction\nC.,D.,1,neutral\nE.,F.,2,entailment\nG.,H.,0,contradiction\n")


def test_integer_labels_that_contradict_gold_label_are_refused(tmp_path):
    folder = make_folder(tmp_path, PERMUTED)
    assert load_error(folder) == (
        f"{folder / 'train.csv'} numbers its labels in another order than the lesson: label 0 "
        "is 'contradiction' in column gold_label (2 of 2 rows), label 2 is 'entailment' (1 of "
        "1); the lesson reads 0 = entailment, 1 = neutral, 2 = contradiction: renumber the "
        "label column in that order (or correct gold_label if it is the wrong one)")


def test_a_label_text_column_is_checked_too(tmp_path):
    text = ("premise,label,hypothesis,label_text\n"
            "A.,1,B.,Entailment\nC.,0,D.,neutral\nE.,2,F.,contradiction\n")
    message = load_error(make_folder(tmp_path, text))
    assert "label 0 is 'neutral' in column label_text (1 of 1 rows), label 1 is 'entailment'" \
        in message, message


def test_agreeing_columns_load(tmp_path):
    text = ("premise,hypothesis,label,gold_label,label1\n"
            "A.,B.,0,entailment,entailment\nC.,D.,1,neutral,contradiction\n"
            "E.,F.,2,contradiction,contradiction\nG.,H.,-1,-,neutral\nI.,J.,1,neutral,neutral\n")
    data = load_mnli(make_folder(tmp_path, text))  # annotators may disagree on some rows
    assert data.train["label"].tolist() == [0, 1, 2, 1]


def test_word_labels_need_no_check(tmp_path):
    text = ("premise,hypothesis,label,gold_label\n"
            "A.,B.,entailment,entailment\nC.,D.,2,contradiction\n")
    assert load_mnli(make_folder(tmp_path, text)).train["label"].tolist() == [0, 2]


def test_permuted_labels_through_the_cli(tmp_path, capsys, clean_env):
    folder = make_folder(tmp_path, PERMUTED)
    line = compare_error(capsys, tmp_path / "out", folder)
    assert "numbers its labels in another order than the lesson: label 0 is 'contradiction'" \
        in line, line


def test_the_real_files_pass_every_check(shared_paths):
    for split in SPLITS:
        started = time.perf_counter()
        frame = read_checked(shared_paths["data"] / f"{split}.csv")
        assert len(frame) >= 1000 and time.perf_counter() - started < 5.0
