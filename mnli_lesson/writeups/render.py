"""Rendering ``templates/*.md.j2`` to Markdown: the Jinja environment, where a missing variable
is an error, and the filters through which templates format every number."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mnli_lesson.core import LABELS
from mnli_lesson.results import CHANCE_LOSS
from mnli_lesson.writeups import facts, korean
from mnli_lesson.writeups.run_facts import CHANCE_MARGIN, OVERFIT_MARGIN

TEMPLATES = Path(__file__).with_name("templates")


#: How templates format numbers: shares as percentages (``pct_sig``: two significant digits,
#: for shares of any size), differences in points (``points`` signed, ``pp`` not), shapes as
#: PyTorch lists them, ratios as ``113×`` / ``0.5×``; ``n/a`` where a number is missing.
#: ``josa`` adds the Korean particle that agrees with what it follows: ``x|pct|josa("로")``.
FILTERS: dict[str, Callable[..., str]] = {
    "pct": lambda share, digits=1: "n/a" if share is None else f"{100 * share:.{digits}f}%",
    "pct_sig": lambda share: f"{100 * share:.2g}%",
    "points": lambda diff: f"{100 * diff:+.1f}",
    "pp": lambda diff: f"{100 * diff:.1f}",
    "thousands": lambda n: "n/a" if n is None else f"{n:,}",
    "dec": lambda x, digits=3: "n/a" if x is None else f"{x:.{digits}f}",
    "g": lambda x: f"{x:g}",
    "shape": lambda dims: "[" + ", ".join(str(int(d)) for d in dims) + "]",
    "codes": lambda names, sep=", ": sep.join(f"`{n}`" for n in names),
    "times": lambda ratio: f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×",
    "josa": lambda word, particle: korean.josa(str(word), particle),
}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    env.globals.update({k: getattr(facts, k) for k in (
        "QUESTIONS", "LABEL_CHECK_PAIR", "REFERENCE_MODEL", "MNLI_PUBLISHED_SIZES",
        "FULL_TRAIN_PAIRS", "PUBLISHED", "PUBLISHED_GAP")})
    env.globals.update(LABELS=LABELS, CHANCE_LOSS=CHANCE_LOSS, CHANCE_MARGIN=CHANCE_MARGIN,
                       OVERFIT_MARGIN=OVERFIT_MARGIN)
    return env


def tidy(text: str) -> str:
    """Markdown with one line per paragraph: templates wrap their lines freely, and a wrapped
    line that began with "1." or "+ " would otherwise turn into a list."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines:
            keep = lines[0].startswith(("|", "- ", "* ", "```", "#"))
            paragraphs.append(re.sub(r"(?<=\S) {2,}", " ", ("\n" if keep else " ").join(lines)))
    return "\n\n".join(paragraphs) + "\n"


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context`` and tidy the Markdown."""
    return tidy(environment().get_template(template).render(**context))


def question_block(key: str) -> str:
    """The question as Markdown: Korean first, then the English translation as a quote."""
    return str(environment().get_template("_macros.md.j2").module.question(key))
