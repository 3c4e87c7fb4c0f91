"""Figures for the lesson: loss and accuracy curves, confusion matrices, lengths, probabilities.

Every plotting function draws on the ``ax`` it is given (or on a new figure) and returns the Axes,
so notebooks can compose figures and tests can inspect what was drawn.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from mnli_lesson.core import LABELS
from mnli_lesson.results import CHANCE_LOSS, smooth
from mnli_lesson.store import atomic_write

__all__ = [
    "plot_accuracy",
    "plot_confusion_matrix",
    "plot_data_efficiency",
    "plot_epoch_times",
    "plot_length_histogram",
    "plot_loss_curves",
    "plot_probabilities",
    "save_figure",
]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    """Return ``ax``, or the Axes of a fresh figure when none was given."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _colour(index: int) -> str:
    """The index-th colour of the current style's cycle (so every run keeps one colour)."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return colours[index % len(colours)]


def _get(record: object, key: str) -> object:
    """A field of a record: typed (``results.Step``, ``EpochRecord``) or a plain dict.
    ``validation_matched`` is the typed records' ``matched``."""
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key.removeprefix("validation_"), None)


def _is_number(value: object) -> bool:
    """True for a real, non-NaN number (epoch 0 records may carry NaN train_loss)."""
    return isinstance(value, numbers.Real) and not math.isnan(value)


def plot_loss_curves(
    runs: Mapping[str, Sequence[dict]],
    *,
    alpha: float = 0.9,
    show_raw: bool = True,
    chance_loss: bool = True,
    x: str = "step",
    validation: Mapping[str, Sequence[object]] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Training loss per run: raw values thin and translucent, the smoothed curve thick;
    with ``validation`` (run label -> ``results.ValidationPoint`` list), each run's
    validation loss as dashed lines with markers, in the run's colour."""
    if x not in ("step", "epoch"):
        raise ValueError(f'x must be "step" or "epoch", got {x!r}')
    ax = _new_axes(ax)
    for index, (name, records) in enumerate(runs.items()):
        points = [(_get(r, x), _get(r, "loss")) for r in records if _is_number(_get(r, "loss"))]
        if not points:
            continue
        xs, losses = zip(*points, strict=True)
        colour = _colour(index)
        # A lone point draws no line segment; a marker keeps one-step runs visible.
        marker = "o" if len(points) == 1 else None
        if show_raw:
            ax.plot(xs, losses, color=colour, linewidth=0.8, alpha=0.3, marker=marker)
        checked = [(_get(v, x), _get(v, "loss")) for v in (validation or {}).get(name, ())]
        ax.plot(xs, smooth(losses, alpha), color=colour, linewidth=2, marker=marker,
                label=f"{name} (training)" if checked else name)
        if checked:
            ax.plot(*zip(*checked, strict=True), color=colour, linestyle="--", marker="o",
                    markersize=4, label=f"{name} (validation)")
    if chance_loss:
        ax.axhline(
            CHANCE_LOSS,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"uniform guess (ln 3 ≈ {CHANCE_LOSS:.2f})",
        )
    ax.set_xlabel("optimiser step" if x == "step" else "epoch")
    any_checked = any((validation or {}).get(name) for name in runs)
    ax.set_ylabel("loss (cross-entropy)" if any_checked else "training loss (cross-entropy)")
    ax.legend()
    return ax


def _split_label(split: str) -> str:
    """'validation_matched' -> 'matched' for shorter legend entries."""
    return split.removeprefix("validation_")


def plot_accuracy(
    runs: Mapping[str, Sequence[dict]],
    *,
    splits: Sequence[str] = ("validation_matched", "validation_mismatched"),
    chance: float = 1 / 3,
    ax: Axes | None = None,
) -> Axes:
    """Validation accuracy per epoch: one colour per run, solid matched, dashed mismatched."""
    ax = _new_axes(ax)
    for index, (name, records) in enumerate(runs.items()):
        for split in splits:
            points = [(_get(r, "epoch"), _get(r, split)) for r in records
                      if _is_number(_get(r, split))]
            if not points:
                continue
            epochs, accuracies = zip(*points, strict=True)
            style = "--" if "mismatched" in split else "-"
            ax.plot(
                epochs,
                accuracies,
                color=_colour(index),
                linestyle=style,
                marker="o",
                label=f"{name} ({_split_label(split)})",
            )
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance ({chance:.2f})")
    ax.set_ylim(0, 1)
    # Epochs are whole numbers; fractional ticks like 1.5 would suggest a measurement there.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.legend()
    return ax


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]],
    *,
    labels: Sequence[str] = LABELS,
    normalize: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Confusion matrix (rows = true label, columns = predicted) with a number in every cell.

    With ``normalize=True`` each row is divided by its total, so a cell reads as
    "share of pairs with this true label that got this prediction".
    """
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(
            f"matrix must be {n}x{n} to match labels {tuple(labels)}, got {counts.shape}"
        )
    values = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        # A label absent from the data has a zero row; show zeros rather than NaN.
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    ax = _new_axes(ax, figsize=(4.5, 4))
    top = float(values.max())
    # vmax > 0 even for an all-zero matrix, which would otherwise give a degenerate colour scale.
    ax.imshow(values, cmap="Blues", vmin=0, vmax=max(top, 1e-9))
    threshold = top / 2
    for row in range(n):
        for col in range(n):
            value = values[row, col]
            text = f"{value:.2f}" if normalize else f"{int(counts[row, col])}"
            # White on dark cells, black on light ones, so every number stays readable.
            colour = "white" if value > threshold else "black"
            ax.text(col, row, text, ha="center", va="center", color=colour)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_length_histogram(
    lengths: Sequence[int],
    *,
    max_length: int | None = None,
    percentile: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of token lengths, optionally marking a max_length cut-off and a percentile."""
    if len(lengths) == 0:
        raise ValueError("lengths is empty: nothing to plot")
    if percentile is not None and not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    values = np.asarray(lengths)
    ax = _new_axes(ax)
    # Whole-token bins (at most about 50): bins of unequal integer counts would draw a comb.
    low, high = int(values.min()), int(values.max())
    width = max(1, math.ceil((high - low + 1) / 50))
    ax.hist(values, bins=np.arange(low, high + width + 1, width), color="tab:blue")
    if max_length is not None:
        share = float(np.mean(values > max_length))
        ax.axvline(
            max_length,
            color="tab:red",
            linestyle="--",
            label=f"max_length = {max_length} ({100 * share:.1f} % truncated)",
        )
    if percentile is not None:
        # "higher" picks a length that occurs, so "p % of pairs ≤ cut" is literally true.
        cut = int(np.percentile(values, percentile, method="higher"))
        ax.axvline(
            cut,
            color="tab:green",
            linestyle=":",
            label=f"{percentile:g} % of pairs ≤ {cut}",
        )
    ax.set_xlabel("tokens per pair (premise + hypothesis)")
    ax.set_ylabel("pairs")
    if max_length is not None or percentile is not None:
        ax.legend()
    return ax


def plot_data_efficiency(
    points: Mapping[str, Sequence[tuple[int, float]]],
    *,
    chance: float = 1 / 3,
    ax: Axes | None = None,
) -> Axes:
    """Accuracy against the number of training pairs (log x), one line per model."""
    ax = _new_axes(ax)
    ax.set_xscale("log")  # before the ticks: changing the scale resets the tick locators
    sizes: set[int] = set()
    for index, (name, series) in enumerate(points.items()):
        ordered = sorted(series)
        if not ordered:
            continue
        xs, accuracies = zip(*ordered, strict=True)
        sizes.update(int(size) for size in xs)
        ax.plot(xs, accuracies, color=_colour(index), marker="o", label=name)
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance ({chance:.2f})")
    # Ticks exactly at the measured sizes, written 1000 rather than 10^3.
    ax.xaxis.set_major_locator(FixedLocator(sorted(sizes)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, 1)
    ax.set_xlabel("training pairs")
    ax.set_ylabel("accuracy")
    ax.legend()
    return ax


def plot_probabilities(probs: Mapping[str, float], *, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the label probabilities in LABELS order; the winner is highlighted."""
    missing = [label for label in LABELS if label not in probs]
    if missing:
        raise ValueError(f"probs lacks labels {missing}; expected keys {LABELS}")
    values = [float(probs[label]) for label in LABELS]
    best = max(range(len(values)), key=values.__getitem__)
    colours = ["tab:blue" if i == best else "lightgrey" for i in range(len(values))]
    ax = _new_axes(ax, figsize=(5, 1.8))
    ax.barh(range(len(LABELS)), values, color=colours)
    for i, value in enumerate(values):
        ax.text(value + 0.01, i, f"{value:.2f}", va="center")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.invert_yaxis()  # first label on top, reading order
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    return ax


def plot_epoch_times(runs: Mapping[str, Sequence[dict]], *, ax: Axes | None = None) -> Axes:
    """Grouped bars: seconds per epoch, one bar per run inside each epoch's group."""
    ax = _new_axes(ax)
    timed = {
        name: {_get(r, "epoch"): _get(r, "epoch_time_s") for r in records
               if _is_number(_get(r, "epoch_time_s"))}
        for name, records in runs.items()
    }
    epochs = sorted({epoch for times in timed.values() for epoch in times})
    width = 0.8 / max(len(timed), 1)
    for index, (name, times) in enumerate(timed.items()):
        # Centre the group on the epoch number: offsets run from -0.4 + width/2 upwards.
        offset = (index - (len(timed) - 1) / 2) * width
        shown = [epoch for epoch in epochs if epoch in times]
        ax.bar(
            [epoch + offset for epoch in shown],
            [times[epoch] for epoch in shown],
            width=width,
            color=_colour(index),
            label=name,
        )
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds")
    if timed:
        ax.legend()
    return ax


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically and return the Path.

    The PNG goes to a temporary file in the same folder first and is then renamed into place,
    so an interrupted save never leaves a truncated image behind.
    """
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120,
                                                      bbox_inches="tight"))
