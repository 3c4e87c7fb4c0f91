"""Tests for mnli_lesson.config: profiles, environment and keyword overrides, validation."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from mnli_lesson.config import LessonConfig, describe, env_overrides, resolve_config
from mnli_lesson.errors import LessonError


@pytest.mark.parametrize("profile", ["tiny", "cpu", "gpu", "full"])
def test_each_profile_resolves_to_itself(clean_env, profile):
    cfg = resolve_config(profile)
    assert isinstance(cfg, LessonConfig)
    assert cfg.profile == profile


def test_tiny_profile_is_offline_and_small(clean_env):
    cfg = resolve_config("tiny")
    assert (cfg.data, cfg.model) == ("sample", "tiny")
    assert (cfg.train_size, cfg.eval_size) == (216, 36)


def test_offline_profile_uses_the_pretrained_encoder_and_the_whole_sample(clean_env):
    cfg = resolve_config("offline")
    assert (cfg.data, cfg.model) == ("sample", "offline-minilm")
    assert cfg.train_size >= 2000 and cfg.eval_size >= 500


def test_full_profile_uses_all_pairs(clean_env):
    assert resolve_config("full").train_size is None


@pytest.mark.parametrize("hub, kaggle", [(True, True), (False, True), (True, False),
                                         (False, False)])
def test_auto_picks_by_hardware_and_by_what_answers(clean_env, monkeypatch, capsys, hub, kaggle):
    import mnli_lesson.data

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    answers = {"huggingface.co": hub, "www.kaggle.com": kaggle}
    monkeypatch.setattr(mnli_lesson.data, "reachable", lambda host, **_: answers[host])
    online = "gpu" if torch.cuda.is_available() else "cpu"
    expected = online if hub and kaggle else "offline"
    assert resolve_config("auto").profile == expected
    assert resolve_config().profile == expected  # auto is the default
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"profile auto -> {expected}: ")
    if not hub:
        assert "Hugging Face Hub" in lines[0] and "cannot be reached" in lines[0]


def test_auto_is_offline_when_the_hub_is_switched_off(clean_env, monkeypatch):
    import mnli_lesson.data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(mnli_lesson.data, "reachable", lambda host, **_: True)
    assert resolve_config("auto").profile == "offline"


def test_a_malformed_hf_endpoint_means_offline(clean_env, monkeypatch):
    import mnli_lesson.data

    monkeypatch.setenv("HF_ENDPOINT", "http://[::1")
    monkeypatch.setattr(mnli_lesson.data, "reachable", lambda host, **_: True)
    assert resolve_config("auto").profile == "offline"


def test_env_sets_profile():
    assert resolve_config(environ={"MNLI_LESSON_PROFILE": "tiny"}).profile == "tiny"


def test_env_sets_data_and_model():
    cfg = resolve_config("cpu", environ={"MNLI_LESSON_DATA": "/data/mnli",
                                         "MNLI_LESSON_MODEL": "/models/distilbert"})
    assert cfg.data == "/data/mnli"
    assert cfg.model == "/models/distilbert"


@pytest.mark.parametrize("text", ["all", "none", "None", "ALL"])
def test_env_train_size_all_or_none_means_every_pair(text):
    assert resolve_config("cpu", environ={"MNLI_LESSON_TRAIN_SIZE": text}).train_size is None


def test_env_train_size_number():
    assert resolve_config("cpu", environ={"MNLI_LESSON_TRAIN_SIZE": "1_500"}).train_size == 1500


def test_env_lr_is_a_float():
    cfg = resolve_config("cpu", environ={"MNLI_LESSON_LR": "3e-5"})
    assert cfg.lr == pytest.approx(3e-5)
    assert isinstance(cfg.lr, float)


def test_env_sweep_sizes_comma_list():
    cfg = resolve_config("cpu", environ={"MNLI_LESSON_SWEEP_SIZES": "10,20"})
    assert cfg.sweep_sizes == (10, 20)


def test_env_beats_profile_defaults():
    cfg = resolve_config("cpu", environ={"MNLI_LESSON_EPOCHS": "7"})
    assert cfg.epochs == 7


def test_keyword_beats_env():
    env = {"MNLI_LESSON_EPOCHS": "7", "MNLI_LESSON_LR": "1e-3", "MNLI_LESSON_DATA": "sample"}
    cfg = resolve_config("cpu", environ=env, epochs=2, lr=2e-5, data="kaggle")
    assert (cfg.epochs, cfg.lr, cfg.data) == (2, 2e-5, "kaggle")


def test_profile_argument_beats_env_profile():
    assert resolve_config("gpu", environ={"MNLI_LESSON_PROFILE": "tiny"}).profile == "gpu"


def test_env_read_from_os_environ(clean_env):
    clean_env.setenv("MNLI_LESSON_BATCH_SIZE", "8")
    assert resolve_config("cpu").batch_size == 8


def test_env_overrides_ignores_other_variables():
    assert env_overrides({"PATH": "/bin", "HF_HUB_OFFLINE": "1"}) == {}


def _error(**kwargs) -> str:
    with pytest.raises(LessonError) as info:
        resolve_config(**kwargs)
    return str(info.value)


def test_unknown_profile_is_refused():
    message = _error(profile="huge", environ={})
    assert "huge" in message and "profile" in message


def test_unknown_profile_from_env_is_refused():
    assert "profile" in _error(environ={"MNLI_LESSON_PROFILE": "laptop"})


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("epochs", -1), ("batch_size", 0), ("batch_size", -32), ("lr", 0.0),
     ("lr", -1e-5), ("train_size", 0), ("train_size", -5)],
)
def test_non_positive_values_name_the_field(field, value):
    message = _error(profile="cpu", environ={}, **{field: value})
    assert field in message
    assert "\n" not in message


def test_max_length_below_8_is_refused():
    message = _error(profile="cpu", environ={}, max_length=7)
    assert "max_length" in message and "8" in message


def test_max_length_8_is_fine():
    assert resolve_config("cpu", environ={}, max_length=8).max_length == 8


@pytest.mark.parametrize(
    ("key", "value"),
    [("MNLI_LESSON_EPOCHS", "three"), ("MNLI_LESSON_LR", "fast"),
     ("MNLI_LESSON_TRAIN_SIZE", "lots"), ("MNLI_LESSON_SWEEP_SIZES", "10,x")],
)
def test_non_numeric_env_value_names_the_variable(key, value):
    message = _error(profile="cpu", environ={key: value})
    assert key in message
    assert value in message


def test_unknown_env_variable_is_refused():
    message = _error(profile="cpu", environ={"MNLI_LESSON_FOO": "1"})
    assert "MNLI_LESSON_FOO" in message
    assert "MNLI_LESSON_EPOCHS" in message  # the list of valid names


def test_unknown_keyword_is_refused():
    assert "epoch" in _error(profile="cpu", environ={}, epoch=3)


def test_unknown_precision_is_refused():
    message = _error(profile="cpu", environ={}, precision="fp8")
    assert "precision" in message and "fp8" in message


def test_unknown_precision_from_env_is_refused():
    assert "precision" in _error(profile="cpu", environ={"MNLI_LESSON_PRECISION": "half"})


def test_unknown_device_is_refused():
    message = _error(profile="cpu", environ={}, device="tpu")
    assert "device" in message and "tpu" in message


def test_dataclass_checks_direct_construction():
    with pytest.raises(LessonError, match="batch_size"):
        LessonConfig(batch_size=0)


def test_describe_lists_every_field(clean_env):
    cfg = resolve_config("tiny")
    lines = describe(cfg).splitlines()
    assert [line.split()[0] for line in lines] == [f.name for f in fields(LessonConfig)]
    assert any(line.split()[0] == "lr" and repr(cfg.lr) in line for line in lines)


def test_to_dict_is_json_ready(clean_env):
    data = resolve_config("tiny").to_dict()
    assert isinstance(data["sweep_sizes"], list)
    assert set(data) == {f.name for f in fields(LessonConfig)}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_numbers_must_be_finite(clean_env, value):
    clean_env.setenv("MNLI_LESSON_LR", value)
    with pytest.raises(LessonError, match=f"MNLI_LESSON_LR='{value}' is not a valid finite number"):
        resolve_config("tiny")


def test_an_empty_text_variable_is_refused(clean_env):
    """An empty MNLI_LESSON_OUT_DIR would write into the current folder."""
    clean_env.setenv("MNLI_LESSON_OUT_DIR", "  ")
    with pytest.raises(LessonError, match="MNLI_LESSON_OUT_DIR is empty: unset it"):
        resolve_config("tiny")
