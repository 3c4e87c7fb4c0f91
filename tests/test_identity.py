"""One run identity, keyed by content: what retrains, what is reused, what is never overwritten."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from mnli_lesson import experiments
from mnli_lesson.checkpoints import build_tiny_checkpoint
from mnli_lesson.cli import main
from mnli_lesson.config import resolve_config
from mnli_lesson.data import sample_dir
from mnli_lesson.errors import LessonError
from mnli_lesson.label_order import TRUST_VARIABLE

SMALL = ["--train-size", "48", "--eval-size", "12", "--epochs", "1", "--no-progress"]


@pytest.fixture
def trained(record_training) -> list[str]:
    """Labels of the runs that really train (rather than reload) in this test."""
    return record_training()


def compare(out: Path, *extra: str, name: str = "finetune-vs-frozen") -> int:
    return main(["compare", name, "--profile", "tiny", "--out", str(out), *SMALL, *extra])


def test_rewritten_labels_under_the_same_path_train_again(tmp_path, trained, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(sample_dir(), data)
    assert compare(tmp_path / "out", "--data", str(data)) == 0
    assert compare(tmp_path / "out", "--data", str(data)) == 0
    assert len(trained) == 2, "the same content is reused"
    path = data / "validation_matched.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # every validation label rotated: same file name, other content
        row["label"] = str((int(row["label"]) + 1) % 3)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # Rotated labels put the negations under entailment: refused unless the user vouches.
    assert compare(tmp_path / "out", "--data", str(data)) == 2
    monkeypatch.setenv(TRUST_VARIABLE, "1")
    assert compare(tmp_path / "out", "--data", str(data)) == 0
    assert len(trained) == 4, "changed labels must train afresh"


def test_replaced_weights_under_the_same_path_train_again(tmp_path, trained):
    model = tmp_path / "model"
    shutil.copytree(build_tiny_checkpoint(), model)
    assert compare(tmp_path / "out", "--model", str(model)) == 0
    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01
    save_file(weights, model / "model.safetensors")
    assert compare(tmp_path / "out", "--model", str(model)) == 0
    assert len(trained) == 4, "replaced weights must train afresh"


def test_two_comparisons_share_a_run(tmp_path, trained):
    assert compare(tmp_path / "out", name="finetune-vs-frozen") == 0
    assert compare(tmp_path / "out", name="pretrained-vs-scratch") == 0
    assert trained == ["full fine-tuning", "frozen encoder (head only)", "from scratch"]


def test_another_configuration_leaves_the_first_summary_and_figures(tmp_path):
    out = tmp_path / "out"
    assert compare(out) == 0
    folder = out / "finetune-vs-frozen"
    first = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()
             and (p.name.startswith("summary-") or p.suffix == ".png")}
    assert len(first) >= 4
    assert compare(out, "--seed", "7") == 0
    for path, content in first.items():
        assert path.read_bytes() == content, f"{path.name} was overwritten"
    assert len(list(folder.glob("summary-*.json"))) == 2
    assert len(list(folder.glob("figures-*"))) == 2


def test_a_prepared_for_other_settings_is_refused():
    cfg = resolve_config("tiny", environ={}, train_size=48, eval_size=12, epochs=1)
    prepared = experiments.prepare(cfg)
    other = resolve_config("tiny", environ={}, train_size=48, eval_size=12, epochs=2)
    with pytest.raises(LessonError, match="prepared was made for other settings .epochs: 1 vs 2"):
        experiments.compare("finetune-vs-frozen", other, prepared=prepared, out_dir=None)


def test_reports_change_only_on_purpose(tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / ".reference").write_text("reference\n")
    assert compare(out) == 2
    assert "--update-reference" in capsys.readouterr().err


def test_a_config_edited_after_resolution_is_checked_again():
    cfg = resolve_config("tiny", environ={})
    cfg.epochs = 0
    with pytest.raises(LessonError, match="epochs must be a positive number"):
        experiments.compare("finetune-vs-frozen", cfg)
