"""Tests for mnli_lesson.widgets with a fake predictor (no model, no kernel needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in CI; must happen before pyplot is imported

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mnli_lesson import widgets as playground_module  # noqa: E402
from mnli_lesson.widgets import (  # noqa: E402
    EMPTY_MESSAGE,
    check_probabilities,
    format_prediction,
    playground,
    show_prediction,
)

PROBS = {"entailment": 0.71, "neutral": 0.2, "contradiction": 0.09}
LINE = "entailment 0.71 | neutral 0.20 | contradiction 0.09 -> entailment"


class FakePredictor:
    """Records its calls; says 'contradiction' when the hypothesis contains 'not'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, premise: str, hypothesis: str) -> dict[str, float]:
        self.calls.append((premise, hypothesis))
        if "not" in hypothesis:
            return {"entailment": 0.05, "neutral": 0.15, "contradiction": 0.8}
        return dict(PROBS)


def _parts(box: widgets.VBox):
    """The playground's widgets by type: (text boxes, button, result label, output)."""
    texts = [w for w in box.children if isinstance(w, widgets.Textarea | widgets.Text)]
    (button,) = [w for w in box.children if isinstance(w, widgets.Button)]
    (result,) = [w for w in box.children if isinstance(w, widgets.Label)]
    (output,) = [w for w in box.children if isinstance(w, widgets.Output)]
    return texts, button, result, output


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_show_prediction_prints_line_and_returns_probs(capsys):
    result = show_prediction(FakePredictor(), "A man plays guitar.", "A man makes music.")
    assert capsys.readouterr().out == LINE + "\n"
    assert result == PROBS
    assert list(result) == ["entailment", "neutral", "contradiction"]


def test_show_prediction_empty_input_does_not_predict(capsys):
    predict = FakePredictor()
    assert show_prediction(predict, "   ", "A man makes music.") == {}
    assert show_prediction(predict, "A man plays guitar.", "") == {}
    assert predict.calls == []
    assert capsys.readouterr().out == (EMPTY_MESSAGE + "\n") * 2


def test_format_prediction_picks_argmax():
    probs = {"entailment": 0.1, "neutral": 0.6, "contradiction": 0.3}
    assert (
        format_prediction(probs) == "entailment 0.10 | neutral 0.60 | contradiction 0.30 -> neutral"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"entailment": 0.5, "neutral": 0.5}, "exactly the keys"),
        ({"entailment": 0.5, "neutral": 0.3, "contradiction": 0.1, "other": 0.1}, "exactly"),
        ({"entailment": 0.5, "neutral": 0.5, "contradiction": 0.5}, "sum to 1"),
        ({"entailment": 1.5, "neutral": -0.5, "contradiction": 0.0}, r"\[0, 1\]"),
        ([0.7, 0.2, 0.1], "dict"),
    ],
)
def test_bad_predictor_raises_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        show_prediction(lambda p, h: bad, "premise", "hypothesis")
    with pytest.raises(ValueError, match=message):
        playground(lambda p, h: bad)


def test_check_probabilities_tolerates_rounding():
    checked = check_probabilities({"contradiction": 0.1, "neutral": 0.2, "entailment": 0.7000004})
    assert list(checked) == ["entailment", "neutral", "contradiction"]


def test_playground_layout_and_default_prediction(capsys):
    predict = FakePredictor()
    box = playground(predict)
    assert isinstance(box, widgets.VBox)
    texts, button, result, _ = _parts(box)
    assert len(texts) == 2
    assert all(t.value.strip() for t in texts)  # sensible defaults are filled in
    assert button.description == "Predict"
    # the defaults were predicted once, printed (for nbval / plain Python) and shown
    assert predict.calls == [(texts[0].value, texts[1].value)]
    assert capsys.readouterr().out == LINE + "\n"
    assert result.value == LINE


def test_playground_button_click_predicts_typed_text():
    predict = FakePredictor()
    box = playground(predict, premise="A dog runs.", hypothesis="An animal moves.")
    (premise_box, hypothesis_box), button, result, _ = _parts(box)
    premise_box.value = "A woman is reading a book."
    hypothesis_box.value = "The woman is not reading."
    button.click()
    assert predict.calls[-1] == ("A woman is reading a book.", "The woman is not reading.")
    assert result.value.endswith("-> contradiction")
    assert result.value.startswith("entailment 0.05 | neutral 0.15 | contradiction 0.80")


def test_playground_empty_input_shows_message():
    predict = FakePredictor()
    box = playground(predict)
    (premise_box, _), button, result, _ = _parts(box)
    premise_box.value = ""
    button.click()
    assert result.value == EMPTY_MESSAGE
    assert len(predict.calls) == 1  # only the initial default prediction


def test_playground_click_error_is_shown_not_raised():
    def flaky(premise: str, hypothesis: str) -> dict[str, float]:
        if premise == "break":
            return {"yes": 1.0}
        return dict(PROBS)

    box = playground(flaky)
    (premise_box, _), button, result, _ = _parts(box)
    premise_box.value = "break"
    button.click()
    assert result.value.startswith("Error: predict must return exactly the keys")


def test_playground_draws_chart_in_a_kernel(monkeypatch):
    shown = []
    monkeypatch.setattr(playground_module, "_in_kernel", lambda: True)
    monkeypatch.setattr(playground_module, "display", shown.append)
    box = playground(FakePredictor())
    _, button, _, _ = _parts(box)
    button.click()
    assert len(shown) == 2  # once for the defaults, once for the click
    (ax,) = shown[-1].axes
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.71, 0.2, 0.09])
    assert plt.get_fignums() == []  # closed after display, so it is not shown twice
