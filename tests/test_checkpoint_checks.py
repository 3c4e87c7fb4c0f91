"""Bad model folders: each is refused in one line, or loaded with one line saying what changed.

Every folder starts from a copy of the tiny checkpoint (or a small model saved here), so the
whole file runs offline in seconds. CLI cases run ``mnli_lesson.cli.main`` in-process and
check stderr; the rest call ``build_model`` directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertForSequenceClassification,
)

from mnli_lesson.checkpoints import quiet
from mnli_lesson.cli import main
from mnli_lesson.core import LABEL2ID, LABELS
from mnli_lesson.errors import LessonError
from mnli_lesson.models import build_model, check_tokenizer_fits

ENCODER_KEY = "distilbert.transformer.layer.0.attention.q_lin.weight"


@pytest.fixture(autouse=True)
def _no_lesson_settings(clean_env):
    """No MNLI_LESSON_* settings leak in from the session (conftest sets some)."""
    return clean_env


def run_cli(model: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    argv = ["compare", "finetune-vs-frozen", "--profile", "tiny", "--model", str(model),
            "--epochs", "1", "--train-size", "48", "--eval-size", "12",
            "--out", str(tmp_path / "out"), "--no-progress"]
    code = main(argv)
    return code, capsys.readouterr().err


def one_error_line(code: int, err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def build_error(model: Path, **kwargs) -> str:
    with pytest.raises(LessonError) as info:
        build_model(str(model), **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def save_with_head(folder: Path, num_labels: int, **config) -> DistilBertForSequenceClassification:
    """Overwrite ``folder``'s weights with a model that has its own classification head."""
    cfg = AutoConfig.from_pretrained(str(folder), num_labels=num_labels, **config)
    torch.manual_seed(123)
    model = DistilBertForSequenceClassification(cfg)
    with quiet():
        model.save_pretrained(folder)
    return model


def rename_weights(folder: Path, rename) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    save_file({rename(k): v for k, v in weights.items()}, str(folder / "model.safetensors"))


# --------------------------------------------------------------------------- through the CLI


@pytest.mark.parametrize("content, kind", [("[]", "a list"), ("null", "null"),
                                           ('"distilbert"', "a string")])
def test_config_that_is_not_an_object(folder, tmp_path, capsys, content, kind):
    (folder / "config.json").write_text(content, encoding="utf-8")
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert f"holds {kind}, not an object" in line and "copy or download" in line


def test_tokenizer_json_cut_in_half(folder, tmp_path, capsys):
    text = (folder / "tokenizer.json").read_text(encoding="utf-8")
    (folder / "tokenizer.json").write_text(text[: len(text) // 2], encoding="utf-8")
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert "tokenizer.json is damaged" in line and "save_pretrained" in line


@pytest.mark.parametrize("keep_tokenizer_json", [False, True])
def test_empty_vocab_txt(folder, tmp_path, capsys, keep_tokenizer_json):
    if not keep_tokenizer_json:
        (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").write_text("", encoding="utf-8")
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert "vocab.txt is empty" in line


def test_pickle_payload_is_refused_without_running_it(folder, tmp_path, capsys):
    sentinel = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(sentinel),))

    (folder / "model.safetensors").unlink()
    torch.save({"weight": Payload()}, folder / "pytorch_model.bin")
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert "pickle" in line and "model.safetensors" in line
    assert not sentinel.exists()


def test_truncated_safetensors(folder, tmp_path, capsys):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert "model.safetensors is damaged" in line


def test_ddp_prefix_is_refused(folder, tmp_path, capsys):
    rename_weights(folder, lambda k: "module." + k)
    line = one_error_line(*run_cli(folder, tmp_path, capsys))
    assert "36 of 36 encoder weights did not load" in line and "'module.'" in line


@pytest.mark.parametrize("num_labels, config", [(2, {}), (5, {}),
                                                (1, {"problem_type": "regression"})])
def test_foreign_head_is_replaced_with_one_notice(folder, tmp_path, capsys, num_labels, config):
    save_with_head(folder, num_labels, **config)
    code, err = run_cli(folder, tmp_path, capsys)
    assert code == 0 and "Traceback" not in err and "error" not in err, err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, err  # two runs build the model; the notice is printed once
    assert f"{num_labels}-label classification head" in notes[0]
    assert "new 3-label head" in notes[0]


# --------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("prefix", ["module.", "model.", "model.distilbert."])
def test_wrapper_prefixes_name_the_prefix(folder, prefix):
    rename_weights(folder, lambda k: prefix + k)
    message = build_error(folder)
    cause = prefix.split(".")[0] + "."
    assert "36 of 36 encoder weights did not load" in message
    assert f"start with {cause!r}" in message and "save_pretrained" in message


def test_quiet_does_not_hide_the_refusal(folder):
    rename_weights(folder, lambda k: "module." + k)
    with quiet():
        assert "did not load" in build_error(folder)


def test_partial_weights_are_refused(folder):
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if ".layer.1." not in k},
              str(folder / "model.safetensors"))
    message = build_error(folder)
    assert "16 of 36 encoder weights did not load" in message
    assert "'distilbert.transformer.layer.1." in message and "copy or download" in message


def test_extra_layers_in_the_file_are_refused(folder):
    weights = load_file(str(folder / "model.safetensors"))
    weights.update({k.replace(".layer.1.", ".layer.2."): v.clone()
                    for k, v in weights.items() if ".layer.1." in k})
    save_file(weights, str(folder / "model.safetensors"))
    message = build_error(folder)
    assert "16 weights" in message and "fit no part of the model" in message


def test_config_naming_another_architecture(folder):
    bert = BertModel(BertConfig(vocab_size=1500, hidden_size=64, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=128,
                                max_position_embeddings=128))
    save_file({k: v.contiguous() for k, v in bert.state_dict().items()},
              str(folder / "model.safetensors"))
    message = build_error(folder)
    assert "encoder weights did not load" in message and "'distilbert' architecture" in message


def test_config_that_does_not_match_the_weights(folder):
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] += 500
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    message = build_error(folder)
    assert "1 of 36 encoder weights did not load" in message
    assert "word_embeddings" in message and "does not match the weights" in message


def test_a_head_with_exactly_our_labels_is_kept(folder, capsys):
    saved = save_with_head(folder, len(LABELS), id2label=dict(enumerate(LABELS)),
                           label2id=dict(LABEL2ID))
    model = build_model(str(folder), seed=7)
    assert torch.equal(model.state_dict()["classifier.weight"], saved.classifier.weight)
    assert "note:" not in capsys.readouterr().err


def test_a_head_with_other_label_names_is_not_renamed(folder, capsys):
    reordered = ("contradiction", "entailment", "neutral")
    saved = save_with_head(folder, 3, id2label=dict(enumerate(reordered)),
                           label2id={n: i for i, n in enumerate(reordered)})
    first = build_model(str(folder), seed=7)
    again = build_model(str(folder), seed=7)
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "contradiction, entailment, neutral" in err
    assert not torch.equal(first.state_dict()["classifier.weight"], saved.classifier.weight)
    assert torch.equal(first.state_dict()[ENCODER_KEY], saved.state_dict()[ENCODER_KEY])
    assert torch.equal(first.state_dict()["classifier.weight"],
                       again.state_dict()["classifier.weight"])  # the seed fixes the new head
    assert {int(k): v for k, v in first.config.id2label.items()} == dict(enumerate(LABELS))


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
@pytest.mark.parametrize("num_labels, problem_type", [(1, "regression"),
                                                      (3, "multi_label_classification")])
def test_problem_type_is_single_label(folder, init, num_labels, problem_type):
    save_with_head(folder, num_labels, problem_type=problem_type)
    model = build_model(str(folder), init)
    assert model.config.problem_type == "single_label_classification"
    assert model.config.num_labels == len(LABELS)
    out = model(input_ids=torch.tensor([[2, 10, 11, 3]]), labels=torch.tensor([2]))
    out.loss.backward()  # the first training step works
    assert tuple(out.logits.shape) == (1, len(LABELS))


def test_tokenizer_that_fits(tiny):
    check_tokenizer_fits(AutoTokenizer.from_pretrained(str(tiny)), build_model(str(tiny)))


def test_tokenizer_larger_than_the_embeddings(tiny):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    tokenizer.add_tokens([f"newword{i}" for i in range(5)])
    with pytest.raises(LessonError) as info:
        check_tokenizer_fits(tokenizer, build_model(str(tiny)))
    message = str(info.value)
    assert "\n" not in message and f"{len(tokenizer)} tokens" in message
    assert "tokenizer saved with this checkpoint" in message
