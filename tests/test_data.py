"""Tests for mnli_lesson.data: labels, loading, validation errors, cleaning, subsets, lengths."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnli_lesson import data as data_module
from mnli_lesson.data import (
    KAGGLE_DATASET,
    LABELS,
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


def load_error(folder: Path) -> str:
    with pytest.raises(LessonError) as info:
        load_mnli(folder)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------- labels and the sample


def test_label_order_matches_the_hugging_face_export():
    assert LABELS == ("entailment", "neutral", "contradiction")


def test_sample_sizes(sample):
    assert sample.sizes() == {"train": 216, "validation_matched": 36,
                              "validation_mismatched": 36}


def test_sample_is_exactly_balanced(sample):
    assert label_counts(sample.train) == dict.fromkeys(LABELS, 72)
    assert label_counts(sample.validation_matched) == dict.fromkeys(LABELS, 12)
    assert label_counts(sample.validation_mismatched) == dict.fromkeys(LABELS, 12)


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
        stratified_subset(sample.train, 217)


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
    assert data.sizes() == {"train": 216, "validation_matched": 36, "validation_mismatched": 36}
    assert data.source == "kaggle"


def test_reachable_gives_up_quickly():
    started = time.perf_counter()
    assert reachable("192.0.2.1", timeout=0.5) is False  # TEST-NET-1: never routed
    assert time.perf_counter() - started < 2
