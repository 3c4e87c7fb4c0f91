"""Answer checks that a notebook's check cells call.

Each check prints one line and the grader (``mnli_lesson.grading``) reads that line:

* ``✓ <name>: right``: the answer matches;
* ``… <name>: not answered yet``: the answer is still a placeholder (``None`` or ``...``).
  This does not raise, so a student notebook runs top to bottom, but it is not a pass;
* a wrong answer raises ``CheckFailed("<name>: not right yet — <hint>")``. The hint never
  contains the expected value, only what kind of answer is wanted.

* ``behaves`` checks code by what it does: the student's function and the reference are run
  on the same inputs (``trial``) and must give the same results, so the check shows no code.

Expected values are computed by the notebook from its own run (a profile changes them), never
typed in: ``close("baseline", baseline, expected=shares.max(), tol=0.5 / n_pairs)``. For
answers that do not depend on the run and should not be readable from the check cell, use
``hashed`` with a digest made by ``digest_of``.

Every result is also kept in a registry (``results()``), in the kernel that ran the check.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mnli_lesson.errors import LessonError

if TYPE_CHECKING:
    from mnli_lesson.exercises import Want

RIGHT, UNANSWERED, WRONG = "right", "not answered yet", "not right yet"
RECORDED = "recorded for the grader"  # a graded run: the key is outside the student's box
PASS_MARK, UNANSWERED_MARK = "✓", "…"

_RESULTS: dict[str, str] = {}


class CheckFailed(AssertionError):
    """A wrong answer. An AssertionError, so nbval and pytest report it as a failed check."""


def results() -> dict[str, str]:
    """Each check's latest outcome in this kernel: name -> right / not answered yet / ..."""
    return dict(_RESULTS)


def reset() -> None:
    """Forget every recorded outcome (tests use this)."""
    _RESULTS.clear()


def passed(name: str) -> bool:
    """Whether check ``name`` passed in this kernel (notebooks use the student's code then)."""
    return _RESULTS.get(name) == RIGHT


def yours_or(name: str, yours: Any, reference: Callable) -> Callable:
    """The student's function once check ``name`` has passed, else the lesson's reference (one
    line says so), so that the cells after an unsolved exercise still run."""
    if passed(name):
        return yours
    print(f"(using the lesson's reference until your code passes the check {name!r})")
    return reference


def is_placeholder(answer: Any) -> bool:
    """``None`` and ``...`` stand for "not answered yet" in a student notebook."""
    return answer is None or answer is Ellipsis


def _right(name: str) -> bool:
    _RESULTS[name] = RIGHT
    print(f"{PASS_MARK} {name}: {RIGHT}")
    return True


def _unanswered(name: str) -> bool:
    _RESULTS[name] = UNANSWERED
    print(f"{UNANSWERED_MARK} {name}: {UNANSWERED}")
    return False


def _wrong(name: str, hint: str) -> CheckFailed:
    _RESULTS[name] = WRONG
    return CheckFailed(f"{name}: {WRONG} — {hint}")


def _number(value: Any) -> float | None:
    """``value`` as a float (numpy and 0-d torch scalars included), or None if it is not one."""
    if isinstance(value, (bool, str, bytes)):  # True == 1 and "0.5" parse, but are not answers
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a torch tensor of many items
        return None


def close(name: str, answer: Any, expected: Any, tol: float | None = None, *,
          hint: str | None = None) -> bool:
    """Check a number: right when ``|answer - expected| <= tol``.

    ``tol`` should come from the run, e.g. half a step of the quantity (``0.5 / n_pairs`` for
    a share of ``n_pairs``); by default it is a relative 1e-6, for values the student
    recomputes exactly. ``hint`` says what is asked for, without the value.
    """
    if is_placeholder(answer):
        return _unanswered(name)
    want = _number(expected)
    if want is None or not math.isfinite(want):
        raise LessonError(f"check {name!r}: the expected value is not a finite number; "
                          "fix the notebook cell that computes it")
    tol = 1e-9 + 1e-6 * abs(want) if tol is None else float(tol)
    got = _number(answer)
    if got is None:
        raise _wrong(name, f"give one number, not a {type(answer).__name__}")
    if not math.isfinite(got):
        raise _wrong(name, f"{got} is not a usable number; {hint or 'check the computation'}")
    if abs(got - want) <= tol:
        return _right(name)
    # Common slips get their own hint; none of them says what the value is.
    if want != 0 and abs(got - 100 * want) <= 100 * tol:
        raise _wrong(name, "this looks like a percentage; give a fraction between 0 and 1")
    if want != 0 and abs(got + want) <= tol:
        raise _wrong(name, "the sign is wrong")
    raise _wrong(name, hint or "recompute it from the cells above")


def normalise(value: Any) -> Any:
    """Strings case- and space-insensitive; lists and tuples elementwise; sets orderless."""
    if isinstance(value, str):
        return " ".join(value.split()).casefold().strip(" .'\"")
    if isinstance(value, (list, tuple)):
        return tuple(normalise(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(normalise(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2.0 and 2 are the same choice
    item = getattr(value, "item", None)  # numpy / torch scalars become Python numbers
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return normalise(item())
    return value


def same(name: str, answer: Any, expected: Any, *, choices: Iterable[Any] | None = None,
         hint: str | None = None) -> bool:
    """Check a word, label, choice or short list, compared after ``normalise``.

    ``choices`` (if given) are the allowed answers; an answer outside them gets a hint that
    lists them, which tells nothing about which one is right.
    """
    if is_placeholder(answer):
        return _unanswered(name)
    got = normalise(answer)
    if got == normalise(expected):
        return _right(name)
    if choices is not None:
        allowed = [normalise(c) for c in choices]
        if got not in allowed:
            raise _wrong(name, "answer one of: " + ", ".join(map(str, allowed)))
    raise _wrong(name, hint or "not this one; read the cells above again")


def _canonical(value: Any) -> str:
    norm = normalise(value)
    if isinstance(norm, str):
        return norm
    if isinstance(norm, frozenset):
        return json.dumps(sorted(_canonical(v) for v in norm))
    if isinstance(norm, tuple):
        return json.dumps([_canonical(v) for v in norm])
    return json.dumps(norm)


def digest_of(value: Any) -> str:
    """The sha256 that ``hashed`` compares with; run it once, offline, to write a check."""
    return hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()


def hashed(name: str, answer: Any, digest: str, *, hint: str | None = None) -> bool:
    """Check an answer against ``digest_of(right answer)``, so the check cell hides it."""
    if is_placeholder(answer):
        return _unanswered(name)
    if digest_of(answer) == digest.strip().lower():
        return _right(name)
    raise _wrong(name, hint or "not this one; read the cells above again")


def _agree(got: Any, want: Any, tol: float) -> bool:
    """Numbers (and arrays, tensors, lists of them) within ``tol``; anything else equal."""
    try:
        a = np.asarray(got, dtype=np.float64)
        b = np.asarray(want, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        return normalise(got) == normalise(want)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol + tol * np.abs(b)))


def behaves(name: str, answer: Any, expected: Callable, trial: Callable[[Callable], Any], *,
            tol: float = 1e-5, hint: str | None = None) -> bool:
    """Check a function by behaviour: ``trial(answer)`` must give what ``trial(expected)``
    gives (numbers within a relative and absolute ``tol``), so the check reveals no code."""
    if is_placeholder(answer):
        return _unanswered(name)
    if not callable(answer):
        raise _wrong(name, f"define a function, not a {type(answer).__name__}")
    want = trial(expected)
    try:
        got = trial(answer)
    except Exception as err:  # the student's code: say what it raised, in one line
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise _wrong(name, f"your function raised {type(err).__name__}: {first}") from None
    if _agree(got, want, tol):
        return _right(name)
    raise _wrong(name, hint or "it runs, but gives other results than the reference")


# --------------------------------------------------------------------------- exercises


def verdict(want: Want, observed: Any) -> tuple[str, str]:
    """``(RIGHT | UNANSWERED | WRONG, hint)`` of an observed answer, printing nothing: the
    grader's judgement, and the self-check's, by the same comparisons as ``close``/``same``."""
    if is_placeholder(observed):
        return UNANSWERED, ""
    with contextlib.redirect_stdout(io.StringIO()):  # close/same print their line
        try:
            if want.kind == "number":
                close("answer", observed, want.value, want.tol, hint=want.hint)
            elif want.kind == "choice":
                right = [want.value, *want.accepted]
                chosen = next((r for r in right if normalise(r) == normalise(observed)),
                              want.value)
                same("answer", observed, chosen, choices=want.choices or None, hint=want.hint)
            elif not _agree(observed, want.value, want.tol or 0.0):
                return WRONG, want.hint or "it runs, but gives other results than the reference"
        except CheckFailed as err:
            return WRONG, str(err).split(" — ", 1)[-1]
    return RIGHT, ""


def check(exercise: str, answer: Any) -> bool:
    """The self-check of an exercise: its answer against the answer key, computed here from
    the lesson's own objects. In a graded run the key is not here: the grader checks it."""
    from mnli_lesson.exercises import NotPlain, current_context, observe

    try:
        from mnli_lesson.answer_key import LessonKey
    except ImportError:  # a graded run: the grader collects the answer after this cell
        _RESULTS[exercise] = RECORDED
        print(f"{UNANSWERED_MARK} {exercise}: {RECORDED}")
        return False
    if is_placeholder(answer):
        return _unanswered(exercise)
    ctx = current_context()
    want = LessonKey(ctx).expect(exercise) if ctx is not None else None
    if want is None:  # an exercise of another assignment: its grader has the key
        _RESULTS[exercise] = RECORDED
        print(f"{UNANSWERED_MARK} {exercise}: {RECORDED}")
        return False
    try:
        observed = observe(exercise, answer, ctx)
    except NotPlain as err:
        raise _wrong(exercise, f"give a number, a word or a short list, not {err}") from None
    except Exception as err:  # the student's function: say what it raised, in one line
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise _wrong(exercise, f"your function raised {type(err).__name__}: {first}") from None
    status, hint = verdict(want, observed)
    if status == RIGHT:
        return _right(exercise)
    raise _wrong(exercise, hint)
