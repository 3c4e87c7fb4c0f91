"""Tests for mnli_lesson.models and checkpoint resolution: variants, freezing, counts, errors."""

from __future__ import annotations

import json
import time

import pytest
import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from mnli_lesson.core import LABEL2ID, LABELS
from mnli_lesson.errors import LessonError
from mnli_lesson.models import build_model, parameter_counts

HEAD = ("pre_classifier", "classifier")


@pytest.fixture(scope="module")
def pretrained():
    return build_model("tiny", "pretrained", seed=1)


@pytest.fixture(scope="module")
def scratch():
    return build_model("tiny", "scratch", seed=1)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_scratch_has_the_same_architecture(pretrained, scratch):
    a, b = pretrained.state_dict(), scratch.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def test_scratch_has_different_encoder_weights(pretrained, scratch):
    a, b = pretrained.state_dict(), scratch.state_dict()
    weights = [k for k in a if k.startswith("distilbert.") and a[k].ndim == 2]  # not LN/bias
    assert len(weights) > 10
    assert all(not torch.equal(a[k], b[k]) for k in weights)


def test_pretrained_keeps_the_checkpoint_encoder():
    first = build_model("tiny", seed=1).state_dict()
    second = build_model("tiny", seed=2).state_dict()
    key = "distilbert.transformer.layer.0.attention.q_lin.weight"
    assert torch.equal(first[key], second[key])  # loaded, not random
    assert not torch.equal(first["classifier.weight"], second["classifier.weight"])


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
def test_same_seed_builds_identical_models(init):
    a = _state(build_model("tiny", init, seed=5))
    b = _state(build_model("tiny", init, seed=5))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_seed_scratch_models_differ():
    a = build_model("tiny", "scratch", seed=5).state_dict()
    b = build_model("tiny", "scratch", seed=6).state_dict()
    key = "distilbert.transformer.layer.0.attention.q_lin.weight"
    assert not torch.equal(a[key], b[key])


def test_frozen_trains_only_the_head():
    counts = parameter_counts(build_model("tiny", frozen=True))
    head_total = sum(counts[part]["total"] for part in HEAD)
    assert counts["all"]["trainable"] == head_total > 0
    assert counts["embeddings"]["trainable"] == 0
    assert counts["encoder"]["trainable"] == 0
    assert counts["encoder"]["total"] > 0


def test_frozen_scratch_trains_only_the_head():
    model = build_model("tiny", "scratch", frozen=True)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(HEAD)


def test_unfrozen_trains_everything(pretrained):
    counts = parameter_counts(pretrained)
    assert counts["all"]["trainable"] == counts["all"]["total"]
    assert counts["all"]["total"] == sum(p.numel() for p in pretrained.parameters())
    parts = {k for k in counts if k != "all"}
    assert parts == {"embeddings", "encoder", *HEAD}


def test_labels_are_wired_into_the_config(pretrained, scratch):
    for model in (pretrained, scratch):
        assert model.config.num_labels == 3
        assert {int(k): v for k, v in model.config.id2label.items()} == dict(enumerate(LABELS))
        assert model.config.label2id == LABEL2ID


def test_logits_have_one_column_per_label(pretrained):
    with torch.no_grad():
        out = pretrained.eval()(input_ids=torch.tensor([[2, 10, 11, 3, 12, 3]]))
    assert tuple(out.logits.shape) == (1, len(LABELS))


def test_unknown_init_is_refused():
    with pytest.raises(LessonError, match="init"):
        build_model("tiny", "random")


def _build_error(name) -> str:
    with pytest.raises(LessonError) as info:
        build_model(str(name))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_model_folder(tmp_path):
    message = _build_error(tmp_path / "no-such-model")
    assert "does not exist" in message and "MNLI_LESSON_MODEL" in message


def test_folder_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "config.json" in _build_error(tmp_path)


def test_folder_with_damaged_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in _build_error(tmp_path)


def test_model_type_without_a_classification_head(tmp_path):
    assert "clip_vision_model" not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}),
                                          encoding="utf-8")
    message = _build_error(tmp_path)
    assert "clip_vision_model" in message and "sequence classification" in message


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "distilbert"}),
                                          encoding="utf-8")
    assert "weights" in _build_error(tmp_path)


def test_hub_id_offline_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.perf_counter()
    message = _build_error("distilbert-base-uncased")
    assert time.perf_counter() - started < 5
    assert "MNLI_LESSON_MODEL" in message and "HF_HUB_OFFLINE" in message
