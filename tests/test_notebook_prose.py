"""The notebooks' prose: every number typed into Markdown is a cited or committed one, every
section has its Korean summary, and Korean particles agree with the word before them.

Run-dependent statements are rendered by code cells from the run's numbers (and the notebooks
assert them); tests/test_lesson.py checks rendered sentences against a tiny run's results
files, and the notebooks' own asserts run on `offline` under nbval.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mnli_lesson.results import reference
from mnli_lesson.writeups.korean import particle_errors

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0*.ipynb"))
HEADING = re.compile(r"^#{1,2} ", re.M)
HANGUL = re.compile("[\uac00-\ud7a3]")
NUMBER = re.compile(r"\d+(?:\.\d+)?\s?%|\b0\.\d{2,}\b")
#: Words that mark a typed number as a citation, a fixed rule or a committed measurement.
CITED = ("et al.", "when it was set", "percentile", "tests hold", "e.g.", "예:")


def markdown(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_section_has_a_korean_summary(path):
    for cell in markdown(path):
        if HEADING.search(cell.source):
            summary = re.search(r"^> \*\*요약\.\*\* (.+?)(?:\n\n|\Z)", cell.source, re.M | re.S)
            assert summary, (path.stem, cell.get("id"))
            assert len(HANGUL.findall(summary.group(1))) >= 40, (path.stem, cell.get("id"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_korean_particles_agree_with_the_word_before(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if HANGUL.search(cell.source):
            assert not particle_errors(cell.source), (path.stem, cell.get("id"),
                                                      particle_errors(cell.source))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_typed_into_prose_are_cited_or_measured(path):
    """A percentage or decimal in Markdown must sit beside a citation, a fixed rule, or the
    words "when it was set" (a committed measurement, checked below)."""
    for cell in markdown(path):
        for match in NUMBER.finditer(cell.source):
            around = cell.source[max(0, match.start() - 300):match.end() + 80]
            assert any(word in around for word in CITED), (path.stem, cell.get("id"),
                                                           match.group(0))


@pytest.mark.parametrize("name, cell_id, runs", [
    ("03_finetune_vs_frozen", "nb03-claim-md", ("full", "frozen")),
    ("04_pretrained_vs_scratch", "nb04-claim-md", ("pretrained", "scratch")),
])
def test_measurements_quoted_in_prose_are_the_committed_references(name, cell_id, runs):
    """"When it was set, the offline profile gave A % vs B %", and the `cpu` reference run
    gave C % vs D %: both pairs are the committed reference results, to the decimal."""
    comparison = "finetune-vs-frozen" if runs[0] == "full" else "pretrained-vs-scratch"
    (cell,) = [c for c in markdown(NOTEBOOKS[0].parent / f"{name}.ipynb")
               if c.get("id") == cell_id]
    text = " ".join(cell.source.split())
    for profile in ("offline", "cpu"):
        ref = reference(comparison, profile)
        assert ref is not None, profile
        a, b = (100 * ref[r].accuracy("matched") for r in runs)
        assert f"{a:.1f} % vs {b:.1f} %" in text, (profile, a, b)


def test_counts_in_the_prose_are_the_codes():
    """Notebooks 03 and 04 say the first epoch is scored three times and the second rate is
    three times the first: the constants they describe."""
    from mnli_lesson.experiments import COMPARISONS
    from mnli_lesson.train import FIRST_EPOCH_SCORINGS

    assert FIRST_EPOCH_SCORINGS == 3
    (_, faster) = COMPARISONS["scratch-learning-rate"]
    assert faster.lr_scale == 3.0
    text = {p.stem: " ".join(" ".join(c.source for c in markdown(p)).split()) for p in NOTEBOOKS}
    assert "a quarter, half and three quarters of the first epoch" in text["03_finetune_vs_frozen"]
    assert "three times in the first epoch" in text["04_pretrained_vs_scratch"]
    assert "**three times** the learning rate" in text["04_pretrained_vs_scratch"]


@pytest.mark.parametrize("profile", ["offline", "cpu"])
def test_the_readme_tables_are_the_committed_references(profile, capsys):
    """README's reference tables are `reports/summarise.py`'s output, row for row."""
    import importlib.util

    root = NOTEBOOKS[0].parent.parent
    spec = importlib.util.spec_from_file_location("summarise", root / "reports" / "summarise.py")
    summarise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarise)
    summarise.main(profile)
    rows = [r for r in capsys.readouterr().out.splitlines() if "(not run)" not in r]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert len(rows) > 4 and all(row in readme for row in rows), profile
