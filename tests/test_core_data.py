"""The lesson core's data side: pair encoding, truncation, padding, length-grouped batches."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from mnli_lesson.checkpoints import build_tiny_checkpoint
from mnli_lesson.core import (
    EncodedPairs,
    LengthGroupedBatchSampler,
    encode_pairs,
    forward_inputs,
    make_collator,
    padding_efficiency,
    sorted_batches,
)
from mnli_lesson.data import load_mnli
from mnli_lesson.models import build_model, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


@pytest.fixture(scope="module")
def train_df():
    return load_mnli("sample").train


#: The tiny tokenizer makes most sample pairs longer than 64 tokens (few longer than 128):
#: cut at 64 they would nearly all be one length, leaving length grouping nothing to group.
MAX_LENGTH = 128
#: Text whose decoding is exact: the tokenizer spaces out apostrophes and other marks.
PLAIN_WORDS = re.compile(r"[A-Za-z ,.]+")


@pytest.fixture(scope="module")
def encoded(tokenizer, train_df) -> EncodedPairs:
    return encode_pairs(tokenizer, train_df, max_length=MAX_LENGTH)


def test_pair_decodes_to_cls_premise_sep_hypothesis_sep(tokenizer):
    df = pd.DataFrame({"premise": ["A man is playing a guitar."],
                       "hypothesis": ["Someone makes music."], "label": [0]})
    ids = encode_pairs(tokenizer, df, max_length=64)[0]["input_ids"]
    text = tokenizer.decode(ids)
    assert text == "[CLS] a man is playing a guitar. [SEP] someone makes music. [SEP]"


def test_tiny_tokenizer_file_says_its_pair_template_and_decoder():
    """Transformers 5.6+ would supply both itself; 4.57 (Colab's) reads them from the file
    only: without them it added no [CLS]/[SEP] and decoded "##" pieces unjoined (measured)."""
    saved = json.loads((build_tiny_checkpoint() / "tokenizer.json").read_text())
    assert saved["decoder"]["type"] == "WordPiece"
    pair = [part.get("SpecialToken", part.get("Sequence", {})).get("id")
            for part in saved["post_processor"]["pair"]]
    assert pair == ["[CLS]", "A", "[SEP]", "B", "[SEP]"]


def test_sample_pair_round_trips(tokenizer, train_df, encoded):
    i = next(i for i, row in enumerate(train_df.itertuples())
             if PLAIN_WORDS.fullmatch(row.premise) and PLAIN_WORDS.fullmatch(row.hypothesis))
    row = train_df.iloc[i]
    expected = f"[CLS] {row.premise.lower()} [SEP] {row.hypothesis.lower()} [SEP]"
    assert tokenizer.decode(encoded[i]["input_ids"]) == expected


def test_item_carries_the_label(train_df, encoded):
    assert [encoded[i]["labels"] for i in range(5)] == train_df["label"].head(5).tolist()
    assert len(encoded) == len(train_df)


def test_lengths_match_items(encoded):
    assert all(encoded.lengths[i] == len(encoded[i]["input_ids"]) for i in range(20))
    assert all(len(encoded[i]["attention_mask"]) == encoded.lengths[i] for i in range(20))


def test_truncation_respects_max_length_and_keeps_both_segments(tokenizer, train_df):
    full = encode_pairs(tokenizer, train_df, max_length=128)
    assert full.lengths.max() > 16  # so max_length=16 really truncates
    short = encode_pairs(tokenizer, train_df, max_length=16)
    assert short.lengths.max() <= 16
    sep = tokenizer.sep_token_id
    for i in np.flatnonzero(full.lengths > 16)[:20]:
        ids = short[int(i)]["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == sep
        first_sep = ids.index(sep)
        assert first_sep > 1, "premise was dropped entirely"
        assert first_sep < len(ids) - 2, "hypothesis was dropped entirely"


def test_restrict_to_drops_keys(encoded):
    view = encoded.restrict_to({"input_ids", "labels"})
    assert view.keys == ["input_ids"]
    assert set(view[0]) == {"input_ids", "labels"}
    assert "attention_mask" in encoded.keys  # the original is untouched
    assert view[3]["input_ids"] == encoded[3]["input_ids"]


def test_restrict_to_forward_inputs_of_distilbert(encoded):
    accepted = forward_inputs(build_model("tiny"))
    assert "token_type_ids" not in accepted
    assert set(encoded.restrict_to(accepted).keys) <= accepted


def test_collator_pads_to_the_longest_in_the_batch(tokenizer, encoded):
    # the shortest pair, a middle one and the longest
    idx = [int(i) for i in np.argsort(encoded.lengths)[[0, len(encoded) // 2, -1]]]
    batch = make_collator(tokenizer)([encoded[i] for i in idx])
    longest = int(encoded.lengths[idx].max())
    assert tuple(batch["input_ids"].shape) == (3, longest)
    assert batch["attention_mask"].sum(dim=1).tolist() == encoded.lengths[idx].tolist()
    padding = batch["input_ids"] == tokenizer.pad_token_id
    assert ((batch["attention_mask"] == 0) == padding).all()
    assert batch["labels"].tolist() == encoded.labels[idx].tolist()


def test_collator_pads_to_a_multiple(tokenizer, encoded):
    batch = make_collator(tokenizer, pad_to_multiple_of=8)([encoded[i] for i in range(5)])
    assert batch["input_ids"].shape[1] % 8 == 0


def test_length_grouped_sampler_covers_every_index_once(encoded):
    sampler = LengthGroupedBatchSampler(encoded.lengths, batch_size=16, seed=0, mega_batches=4)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 126  # 2,004 sample pairs in batches of 16
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(len(encoded)))
        assert all(len(b) <= 16 for b in batches)


def test_length_grouped_sampler_is_reproducible(encoded):
    a = LengthGroupedBatchSampler(encoded.lengths, 16, seed=3, mega_batches=4)
    b = LengthGroupedBatchSampler(encoded.lengths, 16, seed=3, mega_batches=4)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)


def test_length_grouped_sampler_changes_with_epoch_and_seed(encoded):
    sampler = LengthGroupedBatchSampler(encoded.lengths, 16, seed=3, mega_batches=4)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    other_seed = LengthGroupedBatchSampler(encoded.lengths, 16, seed=4, mega_batches=4)
    assert list(other_seed) != first


def test_length_grouping_pads_less_than_sequential_batches(encoded):
    sampler = LengthGroupedBatchSampler(encoded.lengths, 16, seed=0)
    sequential = [list(range(i, min(i + 16, len(encoded)))) for i in range(0, len(encoded), 16)]
    grouped = padding_efficiency(encoded.lengths, sampler)
    plain = padding_efficiency(encoded.lengths, sequential)
    assert grouped > plain + 0.1
    assert grouped <= 1.0


def test_our_sampler_pads_as_little_as_transformers_own(encoded):
    """The measurement behind keeping our sampler (see core.LengthGroupedBatchSampler):
    transformers' LengthGroupedSampler, cut into batches of the same size, pads no less."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    ours = padding_efficiency(encoded.lengths,
                              LengthGroupedBatchSampler(encoded.lengths, 16, seed=0))
    order = list(LengthGroupedSampler(16, lengths=encoded.lengths.tolist(),
                                      generator=torch.Generator().manual_seed(0)))
    theirs = padding_efficiency(encoded.lengths,
                                [order[i:i + 16] for i in range(0, len(order), 16)])
    assert ours > 0.9 and theirs > 0.9
    assert abs(ours - theirs) < 0.03


def test_padding_efficiency_by_hand():
    pairs = EncodedPairs({"input_ids": [[1] * 2, [1] * 4, [1] * 4]}, [0, 1, 2])
    assert padding_efficiency(pairs.lengths, [[0, 1], [2]]) == pytest.approx((2 + 4 + 4) / (8 + 4))


def test_sorted_batches_cover_all_longest_first():
    lengths = [5, 9, 1, 7, 7, 3, 8]
    batches = sorted_batches(lengths, 3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert [len(b) for b in batches] == [3, 3, 1]
