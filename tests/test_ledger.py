"""Commands replace only files they wrote: `lesson --out` over the lesson's own notebooks, or
over a student's executed notebook, is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnli_lesson.cli import main
from mnli_lesson.errors import LessonError
from mnli_lesson.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent


def test_ledger_replaces_only_its_own_unchanged_files(tmp_path):
    ledger = Ledger(tmp_path, "lesson")
    (tmp_path / "mine.ipynb").write_text("{}")
    ledger.record("mine.ipynb")
    Ledger(tmp_path, "lesson").check(["mine.ipynb", "new.ipynb"])  # ours, and a new path
    (tmp_path / "theirs.ipynb").write_text("{}")
    with pytest.raises(LessonError, match="was not written by `mnli-lesson lesson`"):
        Ledger(tmp_path, "lesson").check(["theirs.ipynb"])
    (tmp_path / "mine.ipynb").write_text('{"answers": 1}')  # a student worked in the copy
    with pytest.raises(LessonError, match="was edited after `mnli-lesson lesson`"):
        Ledger(tmp_path, "lesson").check(["mine.ipynb"])
    (tmp_path / ".written-by-mnli-lesson").write_text("[not json")
    with pytest.raises(LessonError, match="is damaged"):
        Ledger(tmp_path, "lesson")


def test_lesson_never_writes_over_notebooks_it_did_not_write(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    sources = {p: p.read_bytes() for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert main(["lesson", "--profile", "tiny", "--out", "."]) == 2
    assert "over the lesson's own notebooks" in capsys.readouterr().err
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_data.ipynb").write_text('{"my": "answers"}')
    assert main(["lesson", "--profile", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "01_data.ipynb was not written by `mnli-lesson lesson`" in err and err[-1] == "\n"
    assert (tmp_path / "notebooks" / "01_data.ipynb").read_text() == '{"my": "answers"}'
    assert {p: p.read_bytes() for p in sources} == sources


def test_compare_refuses_an_empty_out_dir(tmp_path, monkeypatch):
    from mnli_lesson import experiments
    from mnli_lesson.config import resolve_config

    monkeypatch.chdir(tmp_path)
    with pytest.raises(LessonError, match="out_dir is empty"):
        experiments.compare("finetune-vs-frozen", resolve_config("tiny"), out_dir="  ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_lesson_ends_in_one_line_and_130(tmp_path, how):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "mnli_lesson", "lesson", "--profile", "tiny",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("notebooks/kernel.log")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)  # inside the first notebook's cells
    if how == "ctrl-c":  # a terminal sends SIGINT to the whole group, the kernel included
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted: run the same command again to resume"
    assert "Traceback" not in err
