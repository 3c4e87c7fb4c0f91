"""`mnli-lesson lesson`: every setting reaches the notebooks, errors are one line, paths hold.

These run the four notebooks headless on the tiny profile (a minute or two), so they check
the command's plumbing, not the lesson's claims (the notebook tests do that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnli_lesson.cli import _notebook_env, build_parser, main
from mnli_lesson.results import RunResult


def lesson(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m mnli_lesson lesson ...`` in a fresh process, as a user runs it (and apart
    from pytest's plugins, which share this process's Jupyter machinery)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNLI_LESSON_")}
    env.update(HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "mnli_lesson", "lesson", *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def one_epoch_lesson(tmp_path_factory):
    """The whole lesson, tiny, with --epochs 1 and a small sweep."""
    out = tmp_path_factory.mktemp("lesson")
    done = lesson("--profile", "tiny", "--epochs", "1", "--seed", "7", "--sweep-sizes",
                  "36,72", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return done.returncode, out


def test_the_lesson_runs_to_the_end(one_epoch_lesson):
    rc, out = one_epoch_lesson
    assert rc == 0
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == [
        "01_data.ipynb", "02_model_io.ipynb", "03_finetune_vs_frozen.ipynb",
        "04_pretrained_vs_scratch.ipynb"]


def test_every_setting_reaches_the_notebooks(one_epoch_lesson):
    _, out = one_epoch_lesson
    runs = {p.parent.name + "/" + p.stem: RunResult.load(p)
            for p in out.glob("*/*-*.json") if not p.name.startswith("summary")}
    main_runs = {k: r for k, r in runs.items() if "data-efficiency" not in k}
    assert {k.split("/")[0] for k in main_runs} == {"finetune-vs-frozen",
                                                   "pretrained-vs-scratch",
                                                   "scratch-learning-rate"}
    for name, run in main_runs.items():
        assert run.epochs_planned == 1, name
        assert run.seed == 7, name
        assert len(run.history) == -(-run.train_size // run.batch_size), name
    sweep = [r for k, r in runs.items() if "data-efficiency" in k]
    assert sorted({r.train_size for r in sweep}) == [36, 72]


def markdown_outputs(notebook: Path, cell_id: str) -> str:
    """What the cell ``cell_id`` of an executed notebook displayed as Markdown."""
    import nbformat

    (cell,) = [c for c in nbformat.read(notebook, as_version=4).cells if c.get("id") == cell_id]
    return "\n".join(o["data"]["text/markdown"] for o in cell.get("outputs", [])
                     if "text/markdown" in o.get("data", {}))


def test_rendered_claims_match_the_results_files(one_epoch_lesson):
    """Sentences the notebooks rendered on this run say what its results files hold: each
    run's validation loss per epoch, the error analysis's accuracy, the scratch learning-rate
    comparison's better rate."""
    _, out = one_epoch_lesson
    notebooks = out / "notebooks"
    for name, cell, runs in (("03_finetune_vs_frozen", "nb03-36", "finetune-vs-frozen"),
                             ("04_pretrained_vs_scratch", "nb04-12", "pretrained-vs-scratch")):
        text = markdown_outputs(notebooks / f"{name}.ipynb", cell)
        for path in (out / runs).glob("*-*.json"):
            if path.name.startswith("summary"):
                continue
            run = RunResult.load(path)
            losses = " → ".join(f"{loss:.3f}" for _, loss in run.validation_loss_per_epoch())
            assert f"**{run.label}**: validation loss {losses}" in text, (name, run.label)
    full = RunResult.load(next((out / "finetune-vs-frozen").glob("full-*.json")))
    text = "\n".join(o.get("text", "") for c in __import__("nbformat").read(
        notebooks / "03_finetune_vs_frozen.ipynb", as_version=4).cells
        if c.get("id") == "nb03-errors-score" for o in c.get("outputs", []))
    accuracy = f"{full.accuracy('matched'):.1%}"
    assert f"(accuracy {accuracy}; the run recorded {accuracy})" in text  # a CPU: equal
    rates = [RunResult.load(p) for p in (out / "scratch-learning-rate").glob("scratch*-*.json")]
    top = max(r.accuracy("matched") for r in rates)  # a tie (tiny: both at chance) names either
    text = markdown_outputs(notebooks / "04_pretrained_vs_scratch.ipynb", "nb04-lr")
    assert any(f"The better scratch rate is **{r.lr:g}**" in text
               for r in rates if r.accuracy("matched") == top)


def test_results_hold_no_absolute_paths(one_epoch_lesson):
    _, out = one_epoch_lesson
    for path in out.glob("*/*.json"):
        text = path.read_text(encoding="utf-8")
        assert str(out) not in text and str(Path.home()) not in text, path


def test_relative_paths_mean_the_callers_folder(tmp_path, monkeypatch):
    """--data ./x given in the caller's folder reaches notebooks/ (where kernels run) intact."""
    from mnli_lesson.cli import NOTEBOOKS_DIR, _resolve

    (tmp_path / "mnli").mkdir()
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["lesson", "--profile", "tiny", "--data", "mnli",
                                      "--train-size", "all", "--out", "o"])
    env = _notebook_env(args, _resolve(args), tmp_path / "o")
    assert (NOTEBOOKS_DIR / env["MNLI_LESSON_DATA"]).resolve() == (tmp_path / "mnli").resolve()
    assert not os.path.isabs(env["MNLI_LESSON_DATA"])
    assert env["MNLI_LESSON_TRAIN_SIZE"] == "all"


def test_a_data_error_in_a_notebook_is_one_line(tmp_path):
    done = lesson("--profile", "offline", "--data", str(tmp_path / "nowhere"),
                  "--out", str(tmp_path / "out"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "nowhere" in lines[0] and "Traceback" not in done.stderr


def test_lesson_needs_the_notebook_extra(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_nbclient(name, *args, **kwargs):
        if name == "nbclient":
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nbclient)
    assert main(["lesson", "--profile", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mnli-lesson[notebooks]" in err
    assert json.dumps(err).count("\\n") == 1  # one line
