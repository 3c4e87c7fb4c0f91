"""Colab in one click: every notebook's badge and first cell follow ``colab.REPO_URL``."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mnli_lesson import colab

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_setup_cell_match_the_repository_setting(path):
    nb = nbformat.read(path, as_version=4)
    assert colab.BADGE_TAG in nb.cells[0].metadata.get("tags", [])
    assert nb.cells[0].source == colab.badge_markdown(path.name)
    setup = [c for c in nb.cells if colab.SETUP_TAG in c.metadata.get("tags", [])]
    assert len(setup) == 1 and setup[0].source == colab.setup_source()
    assert "torch" not in setup[0].source.split("%pip install")[1].splitlines()[0]


def test_a_fork_changes_one_setting_and_resyncs(tmp_path):
    copy = tmp_path / NOTEBOOKS[0].name
    copy.write_bytes(NOTEBOOKS[0].read_bytes())
    assert colab.sync_notebook(copy, "https://github.com/someone/fork") is True
    nb = nbformat.read(copy, as_version=4)
    assert "github/someone/fork/blob/main/notebooks/" + copy.name in nb.cells[0].source
    assert "git clone -q --depth 1 https://github.com/someone/fork" in "".join(
        c.source for c in nb.cells)
    assert colab.sync_notebook(copy, "https://github.com/someone/fork") is False  # idempotent


def test_student_versions_point_at_the_handout_never_the_lesson(tmp_path):
    from mnli_lesson.classroom import student_version

    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    alone = student_version(nb, NOTEBOOKS[0].name)
    text = "".join(c.source for c in alone.cells)
    assert colab.REPO_URL not in text and "git clone" not in text
    assert not any(colab.BADGE_TAG in c.metadata.get("tags", []) for c in alone.cells)
    assert "no mnli-lesson.zip was uploaded; upload" in text
    handout = student_version(nb, NOTEBOOKS[0].name, "https://github.com/course/handout")
    text = "".join(c.source for c in handout.cells)
    assert colab.REPO_URL not in text
    assert "github/course/handout/blob/main/notebooks/" + NOTEBOOKS[0].name in text
    assert "git clone -q --depth 1 https://github.com/course/handout" in text
    solution = "".join(c.source for c in nb.cells)
    assert colab.REPO_URL in solution  # the lesson itself still opens from its repository


def test_setup_cell_stops_with_one_message_when_nothing_can_be_installed():
    source = colab.setup_source()
    message = source.split("raise RuntimeError(")[1]
    assert "could not be cloned; upload" in message and "run this cell again" in message
    assert source.index("raise RuntimeError") < source.index("%pip install")
