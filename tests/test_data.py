"""Tests for mnli_lesson.data: labels, loading, validation errors, cleaning, subsets, lengths."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnli_lesson import data as data_module
from mnli_lesson.cli import main
from mnli_lesson.core import LABELS
from mnli_lesson.data import (
    KAGGLE_DATASET,
    SPLITS,
    choose_max_length,
    download_kaggle,
    label_counts,
    load_mnli,
    reachable,
    sample_dir,
    stratified_subset,
)
from mnli_lesson.errors import LessonError

HEADER = "premise,hypothesis,label\n"
#: Pairs per split of the built-in sample, an equal third of them per label.
SAMPLE_SIZES = {"train": 2004, "validation_matched": 501, "validation_mismatched": 501}


@pytest.fixture(scope="module")
def sample():
    return load_mnli("sample")


def make_folder(root: Path, train: str | bytes | None = None, **others: str) -> Path:
    """A data folder whose splits copy the built-in sample unless given as text or bytes."""
    folder = root / "mnli"
    folder.mkdir()
    given = {"train": train, **others}
    for split in SPLITS:
        content = given.get(split)
        target = folder / f"{split}.csv"
        if content is None:
            shutil.copy(sample_dir() / f"{split}.csv", target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return folder


def load_error(folder: Path | str) -> str:
    with pytest.raises(LessonError) as info:
        load_mnli(folder)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def cli_error(capsys, argv: list[str]) -> str:
    """The CLI's one ``error: ...`` line (exit status 2, no traceback)."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def compare_error(capsys, out: Path, data: Path | str | None) -> str:
    """``compare finetune-vs-frozen`` on the tiny profile: a data problem stops it at once."""
    argv = ["compare", "finetune-vs-frozen", "--profile", "tiny", "--epochs", "1",
            "--out", str(out), "--no-progress"]
    return cli_error(capsys, argv + (["--data", str(data)] if data is not None else []))


# --------------------------------------------------------------------------- labels and the sample


def test_label_order_matches_the_hugging_face_export():
    assert LABELS == ("entailment", "neutral", "contradiction")


def test_sample_sizes(sample):
    assert sample.sizes() == SAMPLE_SIZES


def test_sample_is_exactly_balanced(sample):
    assert label_counts(sample.train) == dict.fromkeys(LABELS, 668)
    assert label_counts(sample.validation_matched) == dict.fromkeys(LABELS, 167)
    assert label_counts(sample.validation_mismatched) == dict.fromkeys(LABELS, 167)
    for split, size in SAMPLE_SIZES.items():
        assert label_counts(sample.splits[split]) == dict.fromkeys(LABELS, size // 3)


def test_sample_keeps_its_genre_column(sample):
    assert "genre" in sample.train.columns
    assert (sample.train["genre"].str.strip() != "").all()


def test_sample_labels_are_integers(sample):
    assert sample.train["label"].dtype.kind == "i"
    assert set(sample.train["label"]) == {0, 1, 2}


# --------------------------------------------------------------------------- bad inputs


def test_missing_folder(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert "does not exist" in message and "MNLI_LESSON_DATA" in message


def test_folder_lacking_a_split(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "validation_mismatched.csv").unlink()
    message = load_error(folder)
    assert "validation_mismatched.csv" in message
    assert "train.csv" not in message.split(":")[0]  # only the missing one is named


def test_a_file_instead_of_a_folder(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(HEADER, encoding="utf-8")
    assert "not a folder" in load_error(path)


def test_csv_missing_hypothesis_column(tmp_path):
    message = load_error(make_folder(tmp_path, "premise,label\nA man sleeps.,0\n"))
    assert "'hypothesis'" in message and "train.csv" in message


def test_misspelled_column_gets_a_suggestion(tmp_path):
    message = load_error(make_folder(tmp_path, "premise,hypotesis,label\nA.,B.,0\n"))
    assert "'hypotesis'" in message
    assert "rename it to 'hypothesis'" in message


def test_label_out_of_range(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,0\nC.,D.,7\n"))
    assert "'7'" in message and "line 3" in message and "label" in message


def test_label_word_that_is_not_a_label(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,maybe\n"))
    assert "'maybe'" in message and "entailment" in message


def test_string_labels_are_mapped(tmp_path):
    text = HEADER + "A.,B.,entailment\nC.,D.,neutral\nE.,F., Contradiction\nG.,H.,2.0\n"
    data = load_mnli(make_folder(tmp_path, text))
    assert data.train["label"].tolist() == [0, 1, 2, 2]


def test_non_utf8_bytes(tmp_path):
    latin1 = (HEADER + "Un caf\u00e9 noir.,A coffee.,0\n").encode("latin-1")
    message = load_error(make_folder(tmp_path, latin1))
    assert "UTF-8" in message and "train.csv" in message


def test_truncated_csv(tmp_path):
    text = (sample_dir() / "train.csv").read_text(encoding="utf-8")
    cut = text.index('\n"', len(text) // 2) + 12  # inside a quoted premise
    message = load_error(make_folder(tmp_path, text[:cut]))
    assert "truncated" in message and "train.csv" in message


def test_truncated_after_last_comma(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,0\nC.,D.,"))
    assert "truncated" in message


def test_empty_file(tmp_path):
    message = load_error(make_folder(tmp_path, validation_matched=""))
    assert "empty" in message and "validation_matched.csv" in message


def test_split_with_no_labelled_pairs_left(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,-1\n"))
    assert "no labelled pairs" in message


# --------------------------------------------------------------------------- bad input, round two


SEMICOLONS = "premise;hypothesis;label\nA man, asleep;A person rests;0\n"


def test_semicolon_separated_file_says_so(tmp_path):
    folder = make_folder(tmp_path, SEMICOLONS)
    assert load_error(folder) == (
        f"{folder / 'train.csv'} seems to use semicolons between columns, not commas (its header "
        "is 'premise;hypothesis;label'): save it as comma-separated CSV with the text in double "
        "quotes")


def test_tab_separated_file_says_so(tmp_path):
    message = load_error(make_folder(tmp_path, "premise\thypothesis\tlabel\nA.\tB.\t0\n"))
    assert "seems to use tabs between columns, not commas" in message
    assert "comma-separated CSV" in message and "truncated" not in message


def test_semicolon_file_through_the_cli(tmp_path, capsys, clean_env):
    folder = make_folder(tmp_path, SEMICOLONS)
    line = compare_error(capsys, tmp_path / "out", folder)
    assert line.startswith(f"error: {folder / 'train.csv'} seems to use semicolons")
    assert line.endswith("save it as comma-separated CSV with the text in double quotes")


def test_unquoted_comma_names_the_line_and_the_field_counts(tmp_path):
    text = HEADER + '"A man\nsleeps.",A person rests.,0\nA man, tired, sleeps.,He rests.,0\n'
    folder = make_folder(tmp_path, text)
    assert load_error(folder) == (
        f"{folder / 'train.csv'} line 4 has 5 fields, expected 3 like the header (premise, "
        "hypothesis, label): a comma in text without quotes splits it; save it as "
        "comma-separated CSV with the text in double quotes")


def test_unquoted_comma_in_the_first_row(tmp_path):
    # pandas would quietly take the first field of such rows as an index
    message = load_error(make_folder(tmp_path, HEADER + "A man, tired,B.,0\nC.,D.,1\n"))
    assert "train.csv line 2 has 4 fields, expected 3" in message


def test_unquoted_comma_in_the_sample_through_the_cli(tmp_path, capsys, clean_env):
    folder = make_folder(tmp_path)
    train = folder / "train.csv"
    text = train.read_text(encoding="utf-8")
    lines = text.count("\n")  # the sample's records never span lines
    train.write_text(text + "A man, tired, sleeps.,He rests.,0,fiction\r\n", encoding="utf-8")
    line = compare_error(capsys, tmp_path / "out", folder)
    assert f"train.csv line {lines + 1} has 6 fields, expected 4 like the header (premise, " \
        "hypothesis, label, genre)" in line


def test_row_with_too_few_fields_names_its_separator(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,0\nC.;D.;1\nE.,F.,2\n"))
    assert "train.csv line 3 has 1 field, expected 3 like the header" in message
    assert "that line seems to use semicolons between columns" in message


def test_short_last_row_is_truncation(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + "A.,B.,0\nC.,D."))
    assert message.endswith("train.csv line 3, the last, has 2 of 3 fields: the file looks "
                            "truncated: download it again")


def test_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    message = load_error(make_folder(tmp_path, HEADER + 'A.,B.,0\n"C.,D.,1\nE.,F.,2\n'))
    assert "ends inside the quoted text that starts on line 3" in message
    assert "truncated" in message and "download it again" in message


def test_line_numbers_count_quoted_newlines(tmp_path):
    rows = "".join(f'"Line one of {i}.\nTwo.\nThree.\nFour.",H{i}.,0\n' for i in range(10))
    message = load_error(make_folder(tmp_path, HEADER + rows + "A.,B.,7\n"))
    # 1 header line + 10 records of 4 lines each: counting records would say line 12
    assert message.startswith("train.csv line 42: label '7' is not an MNLI label")


def test_line_numbers_count_blank_lines(tmp_path):
    text = HEADER + "A.,B.,0\nC.,D.,1\nE.,F.,2\nG.,H.,0\n\n  \n\nI.,J.,7\n"
    message = load_error(make_folder(tmp_path, text))
    assert message.startswith("train.csv line 9: label '7'")  # counting records says 6


def test_line_numbers_with_windows_line_endings(tmp_path):
    text = (HEADER + '"A\nB.",C.,0\n\nD.,E.,5\n').replace("\n", "\r\n")
    assert load_error(make_folder(tmp_path, text)).startswith("train.csv line 5: label '5'")


def test_non_utf8_byte_on_a_physical_line(tmp_path):
    text = (HEADER + '"A\nB.",C.,0\nCaf\u00e9.,D.,1\n').encode("latin-1")
    assert "not UTF-8 text (line 4," in load_error(make_folder(tmp_path, text))


def _refuse(monkeypatch, name: str, refused) -> None:
    """Make ``Path.<name>`` raise PermissionError for paths where ``refused(path)`` holds."""
    real = getattr(Path, name)

    def method(self, *args, **kwargs):
        if refused(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, name, method)


def test_unreadable_train_csv(tmp_path, monkeypatch):
    folder = make_folder(tmp_path)
    target = folder / "train.csv"
    _refuse(monkeypatch, "open", lambda path: path == target)  # as root, chmod stops nothing
    assert load_error(folder) == (
        f"{target} cannot be read: permission denied; give yourself read access (chmod u+r "
        f"{target}) or copy it to a folder of your own")


def test_unreadable_train_csv_when_pandas_opens_it(tmp_path, monkeypatch):
    folder = make_folder(tmp_path)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(data_module.pd, "read_csv", refuse)
    message = load_error(folder)
    assert message.startswith(f"{folder / 'train.csv'} cannot be read: permission denied")


def test_unreadable_data_folder(tmp_path, monkeypatch):
    folder = make_folder(tmp_path)
    _refuse(monkeypatch, "stat", lambda path: path.parent == folder)
    assert load_error(folder) == (
        f"data folder {folder} cannot be read: permission denied; give yourself access "
        f"(chmod u+rx {folder}) or copy the data to a folder of your own")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads anything (the monkeypatched tests cover this)")
def test_unreadable_for_real(tmp_path):
    folder = make_folder(tmp_path)
    train = folder / "train.csv"
    train.chmod(0)
    try:
        assert load_error(folder).startswith(f"{train} cannot be read: permission denied")
    finally:
        train.chmod(0o644)
    folder.chmod(0)
    try:
        assert load_error(folder).startswith(f"data folder {folder} cannot be read: permission "
                                             "denied")
    finally:
        folder.chmod(0o755)


def test_columns_that_differ_only_in_case(tmp_path):
    folder = make_folder(tmp_path, "premise,hypothesis,label,Label\nA.,B.,0,1\n")
    assert load_error(folder) == (
        f"{folder / 'train.csv'} has two columns, 'label' and 'Label', that both mean 'label' "
        "(case and spaces are ignored): keep one of them and delete or rename the other")


def test_train_csv_that_is_a_folder(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "train.csv").unlink()
    (folder / "train.csv").mkdir()
    assert load_error(folder) == (
        f"{folder / 'train.csv'} is a folder, not a file: put the train.csv file itself in "
        f"{folder} instead")


@pytest.mark.parametrize("links", [["train.csv"], ["other.csv", "train.csv"]],
                         ids=["to-itself", "through-another"])
def test_train_csv_that_is_a_symlink_loop(tmp_path, links):
    folder = make_folder(tmp_path)
    (folder / "train.csv").unlink()
    for name, target in zip(links, links[1:] + links[:1], strict=True):
        (folder / name).symlink_to(target)
    assert load_error(folder) == (
        f"{folder / 'train.csv'} is a symbolic link that loops (it leads back to itself): "
        "replace it with the train.csv file itself")


def test_train_csv_that_is_a_dangling_symlink(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "train.csv").unlink()
    (folder / "train.csv").symlink_to("gone.csv")
    message = load_error(folder)
    assert "is a symbolic link to gone.csv, which does not exist" in message
    assert "lacks" not in message


def test_data_folder_that_is_a_symlink_loop(tmp_path):
    (tmp_path / "mnli").symlink_to("mnli")
    message = load_error(tmp_path / "mnli")
    assert "data folder" in message and "is a symbolic link that loops" in message


def test_tilde_in_the_data_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_folder(tmp_path)
    assert load_mnli("~/mnli").sizes() == SAMPLE_SIZES


def test_tilde_from_the_environment_through_the_cli(tmp_path, monkeypatch, capsys, clean_env):
    # MNLI_LESSON_DATA (like a notebook's setting) reaches load_mnli with its ~ unexpanded
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MNLI_LESSON_DATA", "~/mnli")
    folder = make_folder(tmp_path, SEMICOLONS)
    line = compare_error(capsys, tmp_path / "out", None)
    assert line.startswith(f"error: {folder / 'train.csv'} seems to use semicolons")


def test_tilde_of_an_unknown_user(tmp_path):
    assert load_error("~no-such-user-mnli/mnli") == (
        "data folder ~no-such-user-mnli/mnli: '~no-such-user-mnli' is no home folder on this "
        "machine (no such user, or HOME is unset): write the folder's full path")


@pytest.fixture
def thread_errors(monkeypatch) -> list:
    """Exceptions that escape a thread (each prints a traceback outside pytest)."""
    caught: list = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    return caught


def test_reachable_survives_a_malformed_host(thread_errors):
    # An over-long label (from a bad HF_ENDPOINT) makes socket raise UnicodeError, not OSError.
    assert reachable("a" * 70 + ".example", timeout=0.5) is False
    assert reachable("", timeout=0.5) is False
    assert not thread_errors


def test_malformed_hf_endpoint_does_not_crash_the_cli(monkeypatch, capsys, clean_env,
                                                      thread_errors):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # so the Hub probe really runs
    monkeypatch.setenv("HF_ENDPOINT", "https://" + "a" * 70 + ".example")
    real = socket.create_connection

    def no_kaggle(address, *args, **kwargs):  # no network in tests; the bad host fails alone
        if address[0] == "www.kaggle.com":
            raise OSError("no network in tests")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", no_kaggle)
    assert main(["config", "--profile", "auto"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and not thread_errors
    assert "profile auto -> offline" in captured.out


# --------------------------------------------------------------------------- cleaning


def test_empty_pairs_and_no_gold_labels_are_dropped_and_counted(tmp_path):
    text = (HEADER + "A man sleeps.,A person rests.,0\n"
            ",Nobody is there.,1\n"
            "\"   \",Blank premise.,2\n"
            "A dog runs.,,2\n"
            "A cat sits.,An animal sits.,-1\n"
            "A boy reads.,A child reads.,1\n")
    data = load_mnli(make_folder(tmp_path, text))
    assert data.train["premise"].tolist() == ["A man sleeps.", "A boy reads."]
    assert data.dropped["train"] == {"empty_pair": 3, "no_gold_label": 1}
    assert data.dropped["validation_matched"] == {"empty_pair": 0, "no_gold_label": 0}


def test_extra_columns_are_kept(tmp_path):
    text = "genre,premise,hypothesis,label,pairID\nfiction,A.,B.,0,7e\ntravel,C.,D.,1,8n\n"
    data = load_mnli(make_folder(tmp_path, text))
    assert data.train["genre"].tolist() == ["fiction", "travel"]
    assert data.train["pairid"].tolist() == ["7e", "8n"]  # names are lowercased


def test_column_names_are_normalised(tmp_path):
    data = load_mnli(make_folder(tmp_path, " Premise ,HYPOTHESIS,Label\nA.,B.,0\n"))
    assert list(data.train.columns[:3]) == ["premise", "hypothesis", "label"]


# --------------------------------------------------------------------------- subsets


def test_stratified_subset_size_and_balance(sample):
    sub = stratified_subset(sample.train, 50, seed=1)
    assert len(sub) == 50
    counts = list(label_counts(sub).values())
    assert max(counts) - min(counts) <= 1


def test_stratified_subset_keeps_unbalanced_shares():
    df = pd.DataFrame({"premise": ["p"] * 100, "hypothesis": ["h"] * 100,
                       "label": [0] * 60 + [1] * 30 + [2] * 10})
    assert label_counts(stratified_subset(df, 10, seed=0)) == {
        "entailment": 6, "neutral": 3, "contradiction": 1}


def test_stratified_subset_draws_without_replacement(sample):
    sub = stratified_subset(sample.train, 100, seed=3)
    assert not sub.duplicated(["premise", "hypothesis"]).any()


def test_stratified_subset_is_seeded(sample):
    a = stratified_subset(sample.train, 40, seed=7)
    b = stratified_subset(sample.train, 40, seed=7)
    pd.testing.assert_frame_equal(a, b)


def test_stratified_subset_seeds_differ(sample):
    a = stratified_subset(sample.train, 40, seed=7)
    b = stratified_subset(sample.train, 40, seed=8)
    assert a["premise"].tolist() != b["premise"].tolist()


def test_stratified_subset_none_is_everything(sample):
    sub = stratified_subset(sample.train, None)
    assert len(sub) == len(sample.train)
    assert set(sub["premise"]) == set(sample.train["premise"])


def test_stratified_subset_too_large(sample):
    with pytest.raises(LessonError, match="only"):
        stratified_subset(sample.train, len(sample.train) + 1)


def test_stratified_subset_zero(sample):
    with pytest.raises(LessonError):
        stratified_subset(sample.train, 0)


# --------------------------------------------------------------------------- max_length


def test_choose_max_length_rounds_up_to_a_multiple_of_8():
    lengths = np.array([50] * 99 + [103])
    assert choose_max_length(lengths, percentile=99) == (104, 0.0)


def test_choose_max_length_keeps_an_exact_multiple():
    assert choose_max_length(np.array([10, 20, 64]), percentile=100)[0] == 64


def test_choose_max_length_reports_the_truncated_share():
    lengths = np.array([50] * 98 + [103, 150])
    max_length, share = choose_max_length(lengths, percentile=98)
    assert max_length == 104
    assert share == pytest.approx(0.01)


def test_choose_max_length_rejects_nothing():
    with pytest.raises(LessonError):
        choose_max_length(np.array([]))


# --------------------------------------------------------------------------- Kaggle


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty kagglehub cache, whatever this machine has."""
    monkeypatch.setattr(data_module, "reachable", lambda *args, **kwargs: False)
    cache = tmp_path / "kagglehub"
    cache.mkdir()
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    return cache


def test_download_kaggle_offline_fails_fast(offline):
    started = time.perf_counter()
    with pytest.raises(LessonError) as info:
        download_kaggle()
    assert time.perf_counter() - started < 5
    assert "MNLI_LESSON_DATA" in str(info.value)
    assert "\n" not in str(info.value)


def test_load_kaggle_offline_fails_fast(offline):
    started = time.perf_counter()
    with pytest.raises(LessonError, match="MNLI_LESSON_DATA"):
        load_mnli("kaggle")
    assert time.perf_counter() - started < 5


def test_kaggle_cache_is_used_when_offline(offline):
    versions = offline / "datasets" / KAGGLE_DATASET / "versions"
    for version in ("1", "2"):
        (versions / version).mkdir(parents=True)
        for split in SPLITS:
            shutil.copy(sample_dir() / f"{split}.csv", versions / version / f"{split}.csv")
    assert download_kaggle() == versions / "2"  # the newest version
    data = load_mnli("kaggle")
    assert data.sizes() == SAMPLE_SIZES
    assert data.source == "kaggle"


def test_reachable_gives_up_quickly():
    started = time.perf_counter()
    assert reachable("192.0.2.1", timeout=0.5) is False  # TEST-NET-1: never routed
    assert time.perf_counter() - started < 2


def test_kaggle_cache_ignores_version_folders_that_are_not_numbers(offline):
    versions = offline / "datasets" / KAGGLE_DATASET / "versions"
    for version in ("2", "10", "latest", "\u00b2"):  # "²" passes str.isdigit, not int()
        (versions / version).mkdir(parents=True)
        for split in SPLITS:
            shutil.copy(sample_dir() / f"{split}.csv", versions / version / f"{split}.csv")
    assert download_kaggle() == versions / "10"  # the newest by number, not by name


def test_kaggle_cache_with_only_a_non_numeric_version(offline):
    (offline / "datasets" / KAGGLE_DATASET / "versions" / "latest").mkdir(parents=True)
    shutil.copy(sample_dir() / "train.csv",
                offline / "datasets" / KAGGLE_DATASET / "versions" / "latest" / "train.csv")
    with pytest.raises(LessonError, match="Kaggle cannot be reached"):
        download_kaggle()


@pytest.mark.parametrize("split, label, expected", [
    # An untrained model would score 1.0 (or 0.0) on it: the comparison stops at once.
    ("validation_matched", 0, "validation_matched holds only entailment pairs (36)"),
    # A model learns nothing from one label, yet it would train and report a run.
    ("train", 2, "the training split holds only contradiction pairs (80)"),
])
def test_a_split_of_one_label_is_refused(tmp_path, capsys, split, label, expected):
    count = 80 if split == "train" else 40
    rows = "".join(f"Premise {i} here.,Hypothesis {i} there.,{label}\n" for i in range(count))
    folder = make_folder(tmp_path, **{split: HEADER + rows})
    message = compare_error(capsys, tmp_path / "out", folder)
    assert expected in message
    assert "at least two labels" in message
