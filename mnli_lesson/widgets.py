"""A small ipywidgets playground: type a premise and a hypothesis, see what the model predicts.

Widgets only render inside a live Jupyter kernel, so everything also works as plain text:
:func:`show_prediction` prints one line, and :func:`playground` prints it once for its defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython import get_ipython
from IPython.display import display

from mnli_lesson.core import LABELS
from mnli_lesson.plots import plot_probabilities

#: Takes (premise, hypothesis) and returns {label: probability} over LABELS.
Predictor = Callable[[str, str], dict[str, float]]

DEFAULT_PREMISE = "A man is playing a guitar on a stage in front of a large crowd."
DEFAULT_HYPOTHESIS = "A musician is performing for an audience."
#: What a reader says of the default pair: a man playing to a crowd is a musician performing.
DEFAULT_LABEL = "entailment"
EMPTY_MESSAGE = "Type both a premise and a hypothesis, then press Predict."

__all__ = [
    "DEFAULT_HYPOTHESIS",
    "DEFAULT_LABEL",
    "DEFAULT_PREMISE",
    "Predictor",
    "check_probabilities",
    "format_prediction",
    "playground",
    "show_prediction",
]


def check_probabilities(probs: object) -> dict[str, float]:
    """Return ``probs`` as a {label: float} dict in LABELS order, or raise ValueError."""
    if not isinstance(probs, Mapping):
        raise ValueError(f"predict must return a dict of label -> probability, got {type(probs)}")
    if set(probs) != set(LABELS):
        raise ValueError(
            f"predict must return exactly the keys {list(LABELS)}, got {sorted(map(str, probs))}"
        )
    checked = {label: float(probs[label]) for label in LABELS}
    if not all(0 <= value <= 1 for value in checked.values()):
        raise ValueError(f"every probability must lie in [0, 1], got {checked}")
    total = sum(checked.values())
    # Softmax in float32 sums to 1 only up to rounding, hence the tolerance.
    if not math.isclose(total, 1.0, abs_tol=1e-3):
        raise ValueError(
            f"probabilities must sum to 1, got {total:.4f}; did you forget the softmax?"
        )
    return checked


def format_prediction(probs: Mapping[str, float]) -> str:
    """One line such as 'entailment 0.71 | neutral 0.20 | contradiction 0.09 -> entailment'."""
    shares = " | ".join(f"{label} {probs[label]:.2f}" for label in LABELS)
    best = max(LABELS, key=lambda label: probs[label])
    return f"{shares} -> {best}"


def _predict_line(
    predict: Predictor, premise: str, hypothesis: str
) -> tuple[dict[str, float], str]:
    """Run ``predict`` and describe the result; an empty input gives ({}, a hint) instead."""
    if not premise.strip() or not hypothesis.strip():
        return {}, EMPTY_MESSAGE
    probs = check_probabilities(predict(premise, hypothesis))
    return probs, format_prediction(probs)


def show_prediction(predict: Predictor, premise: str, hypothesis: str) -> dict[str, float]:
    """Print the prediction as one line and return the probabilities ({} for empty input)."""
    probs, line = _predict_line(predict, premise, hypothesis)
    print(line)
    return probs


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, the only place an Output widget can capture a figure."""
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _draw(output: widgets.Output, probs: dict[str, float]) -> None:
    """Replace the chart in ``output`` with a bar chart of ``probs`` (cleared when empty)."""
    # Outside a kernel the Output widget captures nothing: the figure's repr and terminal
    # escape codes would leak to stdout, so the text line has to do there.
    if not _in_kernel():
        return
    with output:
        output.clear_output(wait=True)
        if not probs:
            return
        fig, ax = plt.subplots(figsize=(5, 1.8))
        plot_probabilities(probs, ax=ax)
        display(fig)
        # Closed so the inline backend does not show the figure a second time below the cell.
        plt.close(fig)


def playground(
    predict: Predictor,
    *,
    premise: str = DEFAULT_PREMISE,
    hypothesis: str = DEFAULT_HYPOTHESIS,
) -> widgets.VBox:
    """Build the premise/hypothesis playground and return it (display it as a cell's result).

    The defaults are predicted once up front with :func:`show_prediction`, so the cell shows a
    result even where widgets cannot render; a broken ``predict`` raises ValueError right here.
    """
    layout = widgets.Layout(width="100%")
    premise_box = widgets.Textarea(value=premise, description="premise", layout=layout)
    hypothesis_box = widgets.Textarea(value=hypothesis, description="hypothesis", layout=layout)
    button = widgets.Button(description="Predict", button_style="primary", icon="play")
    result = widgets.Label()
    output = widgets.Output()

    def on_click(_button: widgets.Button) -> None:
        try:
            probs, line = _predict_line(predict, premise_box.value, hypothesis_box.value)
        except Exception as error:
            # Exceptions in widget callbacks vanish into the browser console; show them instead.
            result.value = f"Error: {error}"
            _draw(output, {})
            return
        result.value = line
        _draw(output, probs)

    button.on_click(on_click)

    probs = show_prediction(predict, premise, hypothesis)
    result.value = format_prediction(probs) if probs else EMPTY_MESSAGE
    _draw(output, probs)
    return widgets.VBox([premise_box, hypothesis_box, button, result, output])
