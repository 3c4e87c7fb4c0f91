"""Tests for mnli_lesson.plots: values, what each figure draws, and the atomic PNG save."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display in CI; must happen before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mnli_lesson.core import LABELS
from mnli_lesson.plots import (  # noqa: E402
    plot_accuracy,
    plot_confusion_matrix,
    plot_data_efficiency,
    plot_epoch_times,
    plot_length_histogram,
    plot_loss_curves,
    plot_probabilities,
    save_figure,
)
from mnli_lesson.results import smooth  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test opened, so pyplot does not pile them up."""
    yield
    plt.close("all")


def _steps(losses: list[float], steps_per_epoch: int = 2) -> list[dict]:
    return [
        {"step": i, "epoch": i / steps_per_epoch, "loss": loss, "lr": 5e-5}
        for i, loss in enumerate(losses, start=1)
    ]


def _epochs(matched: list[float], mismatched: list[float]) -> list[dict]:
    records: list[dict] = [{"epoch": 0, "validation_matched": 0.33, "validation_mismatched": 0.34}]
    for epoch, (m, mm) in enumerate(zip(matched, mismatched, strict=True), start=1):
        records.append(
            {
                "epoch": epoch,
                "train_loss": 0.8,
                "validation_matched": m,
                "validation_mismatched": mm,
                "epoch_time_s": 10.0 * epoch,
            }
        )
    return records


# --- smooth -------------------------------------------------------------------------------


def test_smooth_matches_hand_computed_debiased_ema():
    # alpha 0.5: averages 0.5, 1.25, 2.125 divided by 1 - 0.5**t = 0.5, 0.75, 0.875
    assert smooth([1.0, 2.0, 3.0], alpha=0.5) == pytest.approx([1.0, 5 / 3, 2.125 / 0.875])


def test_smooth_first_value_and_constants_are_unchanged():
    assert smooth([4.0, 0.0], alpha=0.9)[0] == pytest.approx(4.0)
    assert smooth([2.0] * 5, alpha=0.9) == pytest.approx([2.0] * 5)


def test_smooth_alpha_zero_is_identity_and_empty_is_empty():
    assert smooth([3.0, 1.0, 2.0], alpha=0.0) == [3.0, 1.0, 2.0]
    assert smooth([]) == []


@pytest.mark.parametrize("alpha", [1.0, -0.1, 1.5])
def test_smooth_rejects_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        smooth([1.0], alpha=alpha)


# --- loss curves --------------------------------------------------------------------------


def test_loss_curves_draw_raw_smoothed_and_chance_line():
    runs = {"pretrained": _steps([1.1, 0.9, 0.7, 0.6]), "scratch": _steps([1.1, 1.1, 1.0])}
    ax = plot_loss_curves(runs, alpha=0.5)
    lines = ax.get_lines()
    assert len(lines) == 2 * 2 + 1
    chance = lines[-1]
    assert list(chance.get_ydata()) == pytest.approx([math.log(3)] * 2)
    assert chance.get_linestyle() == "--"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["pretrained", "scratch", "uniform guess (ln 3 ≈ 1.10)"]
    # raw then smoothed per run, same colour, smoothed thicker
    raw, smoothed = lines[0], lines[1]
    assert raw.get_color() == smoothed.get_color()
    assert smoothed.get_linewidth() > raw.get_linewidth()
    assert list(smoothed.get_ydata()) == pytest.approx(smooth([1.1, 0.9, 0.7, 0.6], 0.5))
    assert lines[0].get_color() != lines[2].get_color()


def test_loss_curves_options_and_epoch_axis():
    runs = {"a": _steps([1.0, 0.5])}
    ax = plot_loss_curves(runs, show_raw=False, chance_loss=False, x="epoch")
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [0.5, 1.0]
    assert ax.get_xlabel() == "epoch"


def test_loss_curves_single_step_run_is_visible():
    ax = plot_loss_curves({"one": _steps([1.2])})
    smoothed = ax.get_lines()[1]
    assert list(smoothed.get_ydata()) == [1.2]
    assert smoothed.get_marker() == "o"


def test_loss_curves_rejects_unknown_x():
    with pytest.raises(ValueError, match="step"):
        plot_loss_curves({"a": _steps([1.0])}, x="time")


# --- accuracy -----------------------------------------------------------------------------


def test_accuracy_lines_styles_and_limits():
    runs = {
        "pretrained": _epochs([0.7, 0.8], [0.71, 0.79]),
        "scratch": _epochs([0.5, 0.55], [0.5, 0.56]),
    }
    ax = plot_accuracy(runs)
    lines = ax.get_lines()
    assert len(lines) == 2 * 2 + 1
    matched, mismatched = lines[0], lines[1]
    assert matched.get_linestyle() == "-"
    assert mismatched.get_linestyle() == "--"
    assert matched.get_color() == mismatched.get_color() != lines[2].get_color()
    assert matched.get_marker() == "o"
    assert list(matched.get_xdata()) == [0, 1, 2]  # epoch 0 (before training) included
    assert list(mismatched.get_ydata()) == [0.34, 0.71, 0.79]
    assert list(lines[-1].get_ydata()) == pytest.approx([1 / 3] * 2)
    assert ax.get_ylim() == (0, 1)
    assert all(float(tick).is_integer() for tick in ax.get_xticks())


# --- confusion matrix ---------------------------------------------------------------------

MATRIX = [[50, 3, 2], [7, 40, 8], [1, 4, 45]]


def test_confusion_matrix_writes_counts_and_labels():
    ax = plot_confusion_matrix(MATRIX, title="matched")
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(v) for row in MATRIX for v in row]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(LABELS)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(LABELS)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted", "true", "matched")
    # contrast: the darkest cell (50) gets white text, the lightest (1) black
    assert ax.texts[0].get_color() == "white"
    assert ax.texts[6].get_color() == "black"


def test_confusion_matrix_normalized_rows():
    ax = plot_confusion_matrix(MATRIX, normalize=True)
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["0.91", "0.05", "0.04"]  # 50/55, 3/55, 2/55
    assert texts[3:6] == ["0.13", "0.73", "0.15"]  # 7/55, 40/55, 8/55


def test_confusion_matrix_zero_row_does_not_crash():
    ax = plot_confusion_matrix([[0, 0, 0], [1, 1, 0], [0, 0, 2]], normalize=True)
    assert [t.get_text() for t in ax.texts][:3] == ["0.00"] * 3


def test_confusion_matrix_rejects_wrong_shape():
    with pytest.raises(ValueError, match="3x3"):
        plot_confusion_matrix([[1, 2], [3, 4]])


# --- length histogram ---------------------------------------------------------------------


def test_length_histogram_reports_truncated_share():
    lengths = list(range(1, 1001))  # 8 of 1000 pairs are longer than 992
    ax = plot_length_histogram(lengths, max_length=992, percentile=50)
    assert len(ax.patches) > 0
    assert sum(p.get_height() for p in ax.patches) == len(lengths)
    cut, median = ax.get_lines()
    assert list(cut.get_xdata()) == [992, 992]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "max_length = 992 (0.8 % truncated)"
    assert legend[1] == "50 % of pairs ≤ 501"  # 501 is the smallest length with half at or below


def test_length_histogram_without_markers_and_bad_input():
    ax = plot_length_histogram([5, 6, 7])
    assert ax.get_lines() == [] and ax.get_legend() is None
    with pytest.raises(ValueError):
        plot_length_histogram([])
    with pytest.raises(ValueError, match="percentile"):
        plot_length_histogram([1, 2], percentile=120)


# --- data efficiency ----------------------------------------------------------------------


def test_data_efficiency_log_axis_and_plain_ticks():
    points = {
        "pretrained": [(10000, 0.75), (1000, 0.6), (100, 0.45)],
        "scratch": [(100, 0.34), (1000, 0.4), (10000, 0.5)],
    }
    ax = plot_data_efficiency(points)
    ax.figure.canvas.draw()  # tick labels are only formatted at draw time
    assert ax.get_xscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 3
    assert list(lines[0].get_xdata()) == [100, 1000, 10000]  # sorted by size
    assert lines[0].get_marker() == "o"
    assert list(ax.get_xticks()) == [100, 1000, 10000]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1000", "10000"]
    assert list(lines[-1].get_ydata()) == pytest.approx([1 / 3] * 2)


# --- probabilities ------------------------------------------------------------------------


def test_probabilities_bars_values_and_highlight():
    probs = {"contradiction": 0.09, "neutral": 0.2, "entailment": 0.71}
    ax = plot_probabilities(probs)
    bars = ax.patches
    assert [b.get_width() for b in bars] == pytest.approx([0.71, 0.2, 0.09])  # LABELS order
    assert [t.get_text() for t in ax.texts] == ["0.71", "0.20", "0.09"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(LABELS)
    assert ax.get_xlim() == (0, 1)
    colours = [b.get_facecolor() for b in bars]
    assert colours[1] == colours[2] != colours[0]


def test_probabilities_missing_label():
    with pytest.raises(ValueError, match="neutral"):
        plot_probabilities({"entailment": 0.5, "contradiction": 0.5})


# --- epoch times --------------------------------------------------------------------------


def test_epoch_times_grouped_bars():
    runs = {"fp32": _epochs([0.7, 0.8], [0.7, 0.8]), "fp16": _epochs([0.7, 0.8], [0.7, 0.8])}
    runs["fp16"] = [dict(r, epoch_time_s=r["epoch_time_s"] / 2) for r in runs["fp16"] if r["epoch"]]
    ax = plot_epoch_times(runs)
    bars = ax.patches
    assert len(bars) == 2 * 2  # the epoch-0 record has no time and is skipped
    assert [b.get_height() for b in bars] == [10.0, 20.0, 5.0, 10.0]
    # bars of one epoch sit side by side around the epoch number
    first, second = bars[0], bars[2]
    assert first.get_x() + first.get_width() == pytest.approx(second.get_x())
    assert first.get_x() < 1 < second.get_x() + second.get_width()
    assert first.get_facecolor() != second.get_facecolor()
    assert list(ax.get_xticks()) == [1, 2]


# --- save_figure --------------------------------------------------------------------------


def test_save_figure_writes_png_without_leftovers(tmp_path):
    fig, ax = plt.subplots()
    plot_probabilities({"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}, ax=ax)
    target = tmp_path / "figures" / "nested" / "probs.png"
    result = save_figure(fig, target)
    assert result == target
    assert target.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in target.parent.iterdir()] == ["probs.png"]


def test_save_figure_failure_leaves_nothing(tmp_path, monkeypatch):
    fig, _ = plt.subplots()

    def broken_savefig(name, **kwargs):
        with open(name, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_loss_curves_draw_validation_loss_dashed_in_the_run_colour():
    from mnli_lesson.results import ValidationPoint

    runs = {"pretrained": _steps([1.1, 0.9, 0.7, 0.6])}
    checked = {"pretrained": [ValidationPoint(0, 0.0, 1.10, 0.33),
                              ValidationPoint(4, 1.0, 0.80, 0.60)]}
    ax = plot_loss_curves(runs, validation=checked)
    raw, smoothed, validation, _chance = ax.get_lines()
    assert list(validation.get_xdata()) == [0, 4]
    assert list(validation.get_ydata()) == pytest.approx([1.10, 0.80])
    assert validation.get_linestyle() == "--" and validation.get_color() == smoothed.get_color()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["pretrained (training)", "pretrained (validation)"]
    assert ax.get_ylabel() == "loss (cross-entropy)"
