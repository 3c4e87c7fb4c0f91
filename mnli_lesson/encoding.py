"""Turning pairs into model inputs: tokenise once, pad per batch, batch by length.

Tokenising inside ``collate_fn`` (as many tutorials do) repeats the same work every epoch,
and padding random batches to their longest pair wastes about half of every matrix multiply
on MNLI. Here each dataset is tokenised once, and training batches are drawn from
length-sorted "mega-batches" so that pairs in a batch have similar lengths.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from mnli_lesson.checkpoints import resolve_checkpoint


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The tokenizer that belongs to ``model`` (a Hub id, a folder, or ``tiny``)."""
    return AutoTokenizer.from_pretrained(resolve_checkpoint(model))


def forward_inputs(model: torch.nn.Module) -> set[str]:
    """Names the model's ``forward`` accepts (DistilBERT has no ``token_type_ids``, BERT has)."""
    params = inspect.signature(model.forward).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


class EncodedPairs(Dataset):
    """A tokenised split, stored as flat int32 arrays (compact even for 392k pairs).

    Each item is a dict of token lists plus ``labels``; ``lengths`` holds every pair's length
    so samplers can group similar lengths without touching the data.
    """

    def __init__(self, columns: dict[str, list[list[int]]], labels: Sequence[int]):
        first = next(iter(columns.values()))
        self.lengths = np.fromiter((len(x) for x in first), dtype=np.int64, count=len(first))
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.columns = {k: np.fromiter((t for row in v for t in row), dtype=np.int32)
                        for k, v in columns.items()}
        self.labels = np.asarray(labels, dtype=np.int64)

    @property
    def keys(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, object]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        item: dict[str, object] = {k: v[lo:hi].tolist() for k, v in self.columns.items()}
        item["labels"] = int(self.labels[i])
        return item

    def restrict_to(self, names: Collection[str]) -> EncodedPairs:
        """A view keeping only the inputs a model accepts (shares the arrays)."""
        view = object.__new__(EncodedPairs)
        view.__dict__.update(self.__dict__)
        view.columns = {k: v for k, v in self.columns.items() if k in names}
        return view

    def padding_efficiency(self, batches: Sequence[Sequence[int]]) -> float:
        """Real tokens / (real + padding) tokens over the given batches."""
        real = sum(int(self.lengths[b].sum()) for b in batches)
        padded = sum(int(self.lengths[b].max()) * len(b) for b in batches)
        return real / padded if padded else 1.0


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase, df: pd.DataFrame, max_length: int
) -> EncodedPairs:
    """Tokenise every pair once as ``[CLS] premise [SEP] hypothesis [SEP]``, truncated.

    ``truncation="longest_first"`` trims the longer side first, so a long premise cannot push
    the hypothesis out entirely.
    """
    encoded = tokenizer(
        df["premise"].tolist(),
        df["hypothesis"].tolist(),
        truncation="longest_first",
        max_length=max_length,
    )
    columns = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask",
                                                           "token_type_ids")}
    return EncodedPairs(columns, df["label"].tolist())


def make_collator(
    tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
) -> DataCollatorWithPadding:
    """Pads each batch to its own longest pair (and to a multiple of 8 on GPUs)."""
    return DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of similar-length pairs.

    Each epoch: shuffle all indices, cut them into mega-batches of ``mega_batches`` batches,
    sort each mega-batch by length, cut it into batches, then shuffle the batch order. The
    result is as random as plain shuffling at the scale of a mega-batch, but each batch pads
    to almost nothing. Same seed and epoch -> same batches, so runs are reproducible and a
    resumed run sees the batches it would have seen.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0,
                 mega_batches: int = 50):
        self.lengths = np.asarray(lengths)
        # Not called `batch_size`: Accelerate's sharding (several processes) reads that name
        # and then assumes only the last batch may be short; ours is shuffled into place, so
        # it must treat batches as lists of any length, which it does without the attribute.
        self.pairs_per_batch = batch_size
        self.seed = seed
        self.mega = mega_batches * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        out: list[list[int]] = []
        for start in range(0, len(order), self.mega):
            chunk = order[start:start + self.mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            out.extend(chunk[i:i + self.pairs_per_batch].tolist()
                       for i in range(0, len(chunk), self.pairs_per_batch))
        return [out[i] for i in rng.permutation(len(out))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.pairs_per_batch)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches in order of length (longest first): order does not matter when
    scoring, so sorting removes nearly all padding. Callers put predictions back in place."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
