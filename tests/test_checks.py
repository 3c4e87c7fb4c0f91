"""mnli_lesson.checks: one printed line per check, and no expected value in any message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnli_lesson import checks
from mnli_lesson.checks import CheckFailed, close, digest_of, hashed, same
from mnli_lesson.errors import LessonError


@pytest.fixture(autouse=True)
def fresh_registry():
    checks.reset()


@pytest.mark.parametrize("answer", [0.3142, np.float32(0.3142), torch.tensor(0.3142), 0.31415])
def test_close_right_prints_one_line(answer, capsys):
    assert close("share", answer, expected=0.31415, tol=0.0005) is True
    assert capsys.readouterr().out == "✓ share: right\n"
    assert checks.results() == {"share": "right"}


@pytest.mark.parametrize("placeholder", [None, ...])
def test_placeholder_is_not_answered_and_does_not_raise(placeholder, capsys):
    for check in (lambda: close("n", placeholder, 3), lambda: same("w", placeholder, "x"),
                  lambda: hashed("h", placeholder, digest_of("x"))):
        assert check() is False
    assert capsys.readouterr().out.splitlines() == [
        "… n: not answered yet", "… w: not answered yet", "… h: not answered yet"]
    assert set(checks.results().values()) == {"not answered yet"}


@pytest.mark.parametrize("answer, hint", [
    (0.5, "recompute it"),
    (31.415, "percentage"),
    (-0.31415, "sign is wrong"),
    ("0.31415", "give one number, not a str"),
    ([0.31415], "give one number, not a list"),
    (True, "give one number, not a bool"),
    (float("nan"), "not a usable number"),
])
def test_close_wrong_says_why_without_the_value(answer, hint, capsys):
    with pytest.raises(CheckFailed, match=hint) as err:
        close("share", answer, expected=0.31415, tol=0.0005)
    assert str(err.value).startswith("share: not right yet — ")
    assert "0.314" not in str(err.value).replace(str(answer), "")
    assert isinstance(err.value, AssertionError)
    assert capsys.readouterr().out == ""
    assert checks.results() == {"share": "not right yet"}


def test_close_default_tolerance_and_custom_hint():
    assert close("n", 1 / 3, expected=0.3333333333)
    with pytest.raises(CheckFailed, match="count the pairs in train"):
        close("n", 215, expected=216, hint="count the pairs in train")


def test_close_refuses_an_unusable_expected_value():
    with pytest.raises(LessonError, match="expected value is not a finite number"):
        close("n", 1.0, expected=float("nan"))


def test_same_normalises_strings_and_lists(capsys):
    assert same("label", "  Contradiction. ", "contradiction")
    assert same("labels", ["Entailment", "neutral"], ("entailment", "NEUTRAL"))
    assert same("set", {"b", "a"}, {"A", "B"})
    assert same("id", np.int64(2), 2.0)
    assert capsys.readouterr().out.count("✓") == 4


def test_same_wrong_lists_choices_not_the_answer():
    with pytest.raises(CheckFailed) as err:
        same("label", "neutral", "contradiction")
    assert "contradiction" not in str(err.value)
    with pytest.raises(CheckFailed, match="answer one of: entailment, neutral, contradiction"):
        same("label", "maybe", "contradiction",
             choices=["entailment", "neutral", "contradiction"])


def test_hashed_compares_a_digest():
    digest = digest_of("Neutral")
    assert digest == digest_of(" neutral ") and len(digest) == 64
    assert digest_of([1, 2]) != digest_of([2, 1]) and digest_of({1, 2}) == digest_of({2, 1})
    assert hashed("which", "NEUTRAL", digest)
    with pytest.raises(CheckFailed) as err:
        hashed("which", "entailment", digest)
    assert "neutral" not in str(err.value) and digest not in str(err.value)
