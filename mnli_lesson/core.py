"""The lesson core: fine-tuning a pre-trained encoder on MNLI with PyTorch and transformers.

This is the code a student reuses elsewhere, and the code the notebooks teach cell by cell:
clean the pairs, tokenise them once, pad each batch to its longest pair, group pairs of
similar length, build the three model variants, train with one loop, score. It imports
nothing else of ``mnli_lesson``: no caching, files, processes, write-ups or grading. The
course engine (``train.py``, ``experiments.py``) wraps the same loop through ``Callback``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    get_scheduler,
)

# The Kaggle CSV is the Hugging Face `multi_nli` export: 0, 1, 2 in this order.
LABELS = ("entailment", "neutral", "contradiction")
LABEL2ID = {name: i for i, name in enumerate(LABELS)}
NO_GOLD_LABEL = -1  # the test splits' mark for "no gold label": never train or score on it


# --------------------------------------------------------------------------- data


def clean_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Drop pairs with an empty side (nothing to classify) and pairs without a gold label."""
    premise = df["premise"].astype(str).str.strip()
    hypothesis = df["hypothesis"].astype(str).str.strip()
    keep = (premise != "") & (hypothesis != "") & (df["label"] != NO_GOLD_LABEL)
    return df[keep].reset_index(drop=True)


class EncodedPairs(Dataset):
    """A tokenised split as flat int32 arrays (compact even for 392k pairs); ``lengths`` lets
    a sampler group similar lengths without touching the data."""

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

    def restrict_to(self, names: Iterable[str]) -> EncodedPairs:
        """A view keeping only the inputs a model accepts (shares the arrays)."""
        names = set(names)
        view = object.__new__(EncodedPairs)
        view.__dict__.update(self.__dict__)
        view.columns = {k: v for k, v in self.columns.items() if k in names}
        return view


def encode_pairs(tokenizer, df: pd.DataFrame, max_length: int) -> EncodedPairs:
    """Tokenise every pair once as ``[CLS] premise [SEP] hypothesis [SEP]``, truncated.

    Once, not in every batch: tokenising inside ``collate_fn`` repeats the work each epoch.
    ``longest_first`` trims the longer side first, so a long premise cannot push the
    hypothesis out.
    """
    encoded = tokenizer(df["premise"].tolist(), df["hypothesis"].tolist(),
                        truncation="longest_first", max_length=max_length)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return EncodedPairs({k: v for k, v in encoded.items() if k in keys}, df["label"].tolist())


def forward_inputs(model: torch.nn.Module) -> set[str]:
    """Names the model's ``forward`` accepts (DistilBERT takes no ``token_type_ids``)."""
    params = inspect.signature(model.forward).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def make_collator(tokenizer, pad_to_multiple_of: int | None = None) -> DataCollatorWithPadding:
    """Pads each batch to its own longest pair (to a multiple of 8 on GPUs, for tensor cores)."""
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of,
                                   return_tensors="pt")


class LengthGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of similar-length pairs, a new seeded order each epoch.

    Shuffle, cut into mega-batches of 50 batches, sort each by length, cut into batches,
    shuffle the batches. Kept instead of transformers' ``LengthGroupedSampler``, which yields
    indices, not batches, and fixes no per-epoch order that a resumed run could repeat; the
    two pad alike (``tests/test_core.py`` measures both).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0,
                 mega_batches: int = 50):
        self.lengths = np.asarray(lengths)
        # Not `batch_size`: Accelerate's sharding reads that name and then assumes only the
        # last batch may be short, while ours is shuffled into place.
        self.pairs_per_batch = batch_size
        self.seed, self.mega, self.epoch = seed, mega_batches * batch_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches: list[list[int]] = []
        for start in range(0, len(order), self.mega):
            chunk = order[start:start + self.mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.pairs_per_batch].tolist()
                           for i in range(0, len(chunk), self.pairs_per_batch))
        return iter([batches[i] for i in rng.permutation(len(batches))])

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.pairs_per_batch)


def make_loader(dataset: EncodedPairs, tokenizer, batch_size: int, seed: int,
                pad_to_multiple_of: int | None = None, pin_memory: bool = False) -> DataLoader:
    """Training batches: length-grouped, seeded, padded per batch. The loader's own generator
    keeps creating an iterator from drawing on the global RNG (dropout's)."""
    sampler = LengthGroupedBatchSampler(dataset.lengths, batch_size, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler,
                      collate_fn=make_collator(tokenizer, pad_to_multiple_of),
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed))


def padding_efficiency(lengths: Sequence[int], batches: Iterable[Sequence[int]]) -> float:
    """Real tokens / all tokens once each batch is padded to its longest pair."""
    lengths = np.asarray(lengths)
    batches = list(batches)
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return real / padded if padded else 1.0


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Scoring batches, longest first: order does not matter when scoring, so sorting removes
    nearly all padding. Callers put predictions back in place."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


# --------------------------------------------------------------------------- models


def build_model(checkpoint: str, init: str = "pretrained", *, frozen: bool = False,
                seed: int = 42, **kwargs) -> torch.nn.Module:
    """A classifier over ``LABELS``: ``pretrained`` (the checkpoint's encoder, a new head) or
    ``scratch`` (same configuration, every weight random); ``frozen`` trains the head only."""
    labels = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS)),
              "label2id": LABEL2ID}
    torch.manual_seed(seed)  # the random parts (the head; everything for scratch)
    if init == "pretrained":
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint, **labels,
                                                                   **kwargs)
    else:
        config = AutoConfig.from_pretrained(checkpoint, **labels)
        model = AutoModelForSequenceClassification.from_config(config, **kwargs)
    return freeze_encoder(model) if frozen else model


def freeze_encoder(model: torch.nn.Module) -> torch.nn.Module:
    """Fix every weight of the encoder (``model.base_model``); the head stays trainable."""
    for p in model.base_model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------- training


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.01):
    """AdamW over the trainable parameters; biases and LayerNorm weights are not decayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            small = p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
            (no_decay if small else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel updates all tensors in one pass (CPU and CUDA since torch 2.4)
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer, total_steps: int, warmup_ratio: float = 0.1):
    """Linear warm-up from 0 over ``warmup_ratio`` of the steps, then linear decay to 0."""
    return get_scheduler("linear", optimizer, num_warmup_steps=math.ceil(warmup_ratio *
                         total_steps), num_training_steps=total_steps)


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """A mixed-precision context for ``bf16`` or ``fp16``; ``fp32`` means none."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)
    return contextlib.nullcontext()


def training_step(model, batch, optimizer, scheduler, scaler=None, precision="fp32",
                  max_grad_norm=1.0):
    """One optimiser step: forward, loss, backward, clip, step, schedule, zero the gradients."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast_for(device, precision):
        loss = model(**batch).loss                      # forward: the mean cross-entropy
    if scaler is None:  # fp16 needs a scaler, or tiny gradients round to zero
        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    scaler.scale(loss).backward()                       # backward: fill every .grad
    scaler.unscale_(optimizer)                          # clip the true gradients
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)                              # AdamW moves the weights
    scaler.update()
    scheduler.step()                                    # the next step's learning rate
    optimizer.zero_grad(set_to_none=True)               # or the next batch adds to these
    return loss.detach()  # on the device: reading it each step would make a GPU wait


class Callback:
    """What the loop tells the world. The engine records, scores, checkpoints and draws
    progress bars through these; the loop itself stays the lesson's loop."""

    def on_epoch_start(self, epoch: int) -> None: ...

    def on_step(self, step: int, loss: torch.Tensor, lr: float) -> None: ...

    def on_epoch_end(self, epoch: int) -> None: ...


def set_epoch(loader, epoch: int) -> None:
    """A new, seeded batch order for ``epoch`` (on Accelerate's loader and on ours inside)."""
    inner = getattr(loader, "batch_sampler", None)
    for obj in (loader, inner, getattr(inner, "batch_sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def train(model, loader, optimizer, scheduler, *, epochs: int = 3, precision: str = "fp32",
          max_grad_norm: float = 1.0, scaler=None, start_step: int = 0,
          callbacks: Sequence[Callback] = ()) -> list[float]:
    """Train for ``epochs`` passes over ``loader``; return every step's loss.

    ``start_step`` > 0 continues a run from that step: the batches it already took are
    skipped, so with the same seed it sees the batches an uninterrupted run would.
    """
    device = next(model.parameters()).device
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    steps_per_epoch, step, losses = len(loader), start_step, []
    for epoch in range(start_step // steps_per_epoch, epochs):
        set_epoch(loader, epoch)
        for callback in callbacks:
            callback.on_epoch_start(epoch)
        model.train()  # dropout on
        already_done = step - epoch * steps_per_epoch  # > 0 only when resuming mid-epoch
        for batch in islice(loader, already_done, None):
            lr = scheduler.get_last_lr()[0]  # the rate this step uses
            loss = training_step(model, batch, optimizer, scheduler, scaler, precision,
                                 max_grad_norm)
            step += 1
            losses.append(loss)
            for callback in callbacks:
                callback.on_step(step, loss, lr)
        for callback in callbacks:
            callback.on_epoch_end(epoch + 1)
    return torch.stack(losses).float().tolist() if losses else []  # one device sync


# --------------------------------------------------------------------------- scoring


@torch.inference_mode()
def predict(model, dataset: EncodedPairs, collate: Callable, batch_size: int = 128,
            precision: str = "fp32", part: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Class probabilities ``[len(dataset), 3]`` in the dataset's order.

    ``inference_mode`` skips autograd's bookkeeping. ``part=(i, n)`` scores every n-th batch
    from the i-th (process i of n) and leaves the other rows 0, so n processes' sums cover
    every row once.
    """
    was_training = model.training
    model.eval()  # dropout off: scores are repeatable
    device = next(model.parameters()).device
    probs = np.zeros((len(dataset), model.config.num_labels), dtype=np.float32)
    try:
        index, count = part
        for ids in sorted_batches(dataset.lengths, batch_size)[index::count]:
            batch = collate([dataset[i] for i in ids])
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "labels"}
            with autocast_for(device, precision):
                logits = model(**batch).logits
            probs[ids] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    finally:
        model.train(was_training)
    return probs


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each pair's token vectors, padding left out: ``[batch, hidden size]``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [batch, tokens, 1]
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Share of predictions equal to the gold label (0.0 for no pairs)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float((labels == predictions).mean()) if labels.size else 0.0
