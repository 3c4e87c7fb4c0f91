"""Test-wide settings: notebooks run on the offline profile (the built-in sample and a real
pre-trained encoder, installed by `make setup`), writing to a temp folder.

Real-data tests find ``../shared`` (or ``MNLI_LESSON_SHARED``); they skip when it is absent,
unless ``MNLI_LESSON_REQUIRE_REALDATA=1`` (set by ``.ci/run``) makes its absence a failure.
"""

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Set at import time so that notebook kernels started by nbval inherit them.
for _key in [k for k in os.environ if k.startswith("MNLI_LESSON_")
             and k not in ("MNLI_LESSON_SHARED", "MNLI_LESSON_REQUIRE_REALDATA",
                           "MNLI_LESSON_TEST_PROFILE")]:
    del os.environ[_key]
# MNLI_LESSON_TEST_PROFILE=tiny gives a seconds-long smoke run of the notebooks instead.
os.environ["MNLI_LESSON_PROFILE"] = os.environ.get("MNLI_LESSON_TEST_PROFILE", "offline")
os.environ["MNLI_LESSON_OUT_DIR"] = tempfile.mkdtemp(prefix="mnli_lesson_nbval_")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


def shared_dir() -> Path:
    return Path(os.environ.get("MNLI_LESSON_SHARED", ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_paths() -> dict[str, Path]:
    """``data`` and ``model`` folders of the shared real-data stand-ins."""
    paths = {"data": shared_dir() / "data" / "mnli-sample",
             "model": shared_dir() / "models" / "all-MiniLM-L6-v2"}
    missing = [str(p) for p in paths.values() if not p.is_dir()]
    if missing:
        if os.environ.get("MNLI_LESSON_REQUIRE_REALDATA") == "1":
            pytest.fail(f"real-data folders are required but missing: {', '.join(missing)}")
        pytest.skip(f"real-data folders absent: {', '.join(missing)}")
    return paths


@pytest.fixture
def clean_env(monkeypatch):
    """No MNLI_LESSON_* variables, so config tests see only what they set."""
    for key in [k for k in os.environ if k.startswith("MNLI_LESSON_")]:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.fixture
def record_training(monkeypatch):
    """Call it to start recording which runs really train (rather than reload), by label."""
    from mnli_lesson import experiments

    def start() -> list[str]:
        calls: list[str] = []
        real = experiments.train

        def spy(*args, **kwargs):
            calls.append(kwargs["desc"])
            return real(*args, **kwargs)

        monkeypatch.setattr(experiments, "train", spy)
        return calls

    return start


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny checkpoint, built once per module in its own folder."""
    from mnli_lesson.checkpoints import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny")


@pytest.fixture
def folder(tiny, tmp_path) -> Path:
    """A fresh copy of the tiny checkpoint (unknown to the lesson) that a test may damage."""
    import shutil

    return Path(shutil.copytree(tiny, tmp_path / "model"))
