"""The package as pip installs it, away from the checkout: the sdist and the wheel carry the
four notebooks, and `mnli-lesson lesson` and `mnli-lesson assignment` run from the wheel alone.

The wheel goes into a fresh venv under tmp_path whose only link to .venv is a .pth file naming
.venv's site-packages (where torch, transformers and jupyter already are): a plain path line
adds that folder to sys.path without running the .pth files in it, so the editable install's
finder (which points at this checkout) never loads. Every command runs from a temporary
folder with PYTHONPATH unset, and the venv proves where mnli_lesson came from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

from mnli_lesson.cli import main
from mnli_lesson.errors import LessonError
from mnli_lesson.lesson_notebooks import CHECKOUT, PATTERN, lesson_notebooks, notebooks_dir

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob(PATTERN))
#: What building needs from the checkout (MANIFEST.in and pyproject.toml say what ships).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "mnli_lesson",
                "notebooks")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist built from a copy of the checkout, and the wheel built from that sdist (the
    path `pip install mnli-lesson-0.1.0.tar.gz` takes)."""
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info",
                                                          ".ipynb_checkpoints"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
          "print(b.build_sdist(sys.argv[1]))", str(tmp / "sdist")], cwd=src)
    (sdist,) = (tmp / "sdist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "wheel"), str(unpacked)], cwd=tmp)
    (wheel,) = (tmp / "wheel").glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> dict[str, Path]:
    """A fresh venv with the wheel installed and .venv's dependencies visible."""
    tmp = tmp_path_factory.mktemp("venv")
    env_dir = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"], cwd=tmp).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_lesson_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(built["wheel"])], cwd=tmp)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MNLI_LESSON_") and k != "PYTHONPATH"}
    env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               MPLBACKEND="Agg")
    work = tmp / "work"  # the cwd: no checkout in sight
    work.mkdir()
    return {"python": python, "bin": env_dir / "bin", "site": site, "env": env, "work": work}


def test_the_sdist_carries_the_notebooks_and_leaves_the_tests_out(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"notebooks/{nb}" for nb in NOTEBOOKS} <= names
    assert "mnli_lesson/sample/train.csv" in names and "LICENSE" in names
    assert not any(n.startswith("tests/") or n == "conftest.py" for n in names), sorted(names)


def test_the_wheel_carries_notebooks_data_and_templates(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    assert {f"mnli_lesson/notebooks/{nb}" for nb in NOTEBOOKS} <= names
    assert {"mnli_lesson/sample/train.csv", "mnli_lesson/diagnostic_set/pairs.csv",
            "mnli_lesson/writeups/templates/q1.md.j2"} <= names
    assert len(NOTEBOOKS) == 4


def test_the_venv_imports_the_wheel_not_the_checkout(venv):
    done = _run([str(venv["python"]), "-c", "import sys, mnli_lesson, mnli_lesson.cli as c; "
                 "print(mnli_lesson.__file__); print(c.NOTEBOOKS_DIR); print(sys.path)"],
                cwd=venv["work"], env=venv["env"])
    module, notebooks, path = done.stdout.splitlines()
    assert Path(module).is_relative_to(venv["site"]), module
    assert Path(notebooks) == venv["site"] / "mnli_lesson" / "notebooks"
    assert str(ROOT) not in path.replace(str(ROOT / ".venv"), ""), path


def test_lesson_and_assignment_run_from_the_wheel(venv):
    out = venv["work"] / "out"
    cli = str(venv["bin"] / "mnli-lesson")
    done = _run([cli, "lesson", "--profile", "tiny", "--out", str(out)], cwd=venv["work"],
                env=venv["env"], timeout=600)
    assert done.stdout.count("  wrote ") == len(NOTEBOOKS), done.stdout
    for name in NOTEBOOKS:
        executed = out / "notebooks" / name
        assert executed.is_file() and '"execution_count": 1' in executed.read_text()
    done = _run([cli, "assignment", "--out", "handout"], cwd=venv["work"], env=venv["env"])
    for kind in ("solution", "student"):
        assert sorted(p.name for p in (venv["work"] / "handout" / kind).iterdir()) == NOTEBOOKS
    assert "solution: 4 notebooks" in done.stdout, done.stdout


def test_the_checkout_finds_its_own_notebooks():
    assert notebooks_dir() == CHECKOUT == ROOT / "notebooks"
    assert [p.name for p in lesson_notebooks(CHECKOUT)] == NOTEBOOKS


def test_no_notebooks_is_one_line_saying_what_to_do(tmp_path):
    with pytest.raises(LessonError, match="reinstall mnli-lesson .* or run from a clone"):
        lesson_notebooks(tmp_path)


def test_nbformat_is_a_base_dependency():
    """`assignment` and `python -m mnli_lesson.colab` need only nbformat: no extra for them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("nbformat") for d in project["dependencies"])
    assert any(d.startswith("nbclient") for d in project["optional-dependencies"]["notebooks"])


@pytest.mark.parametrize(("missing", "argv"), [
    ("nbformat", ["assignment", "--out", "{tmp}/a"]),
    ("nbformat", ["grade", "{tmp}", "--release", "{tmp}", "--out", "{tmp}/g.csv"]),
    ("nbclient", ["grade", "{tmp}", "--release", "{tmp}", "--out", "{tmp}/g.csv"]),
    ("ipykernel", ["grade", "{tmp}", "--release", "{tmp}", "--out", "{tmp}/g.csv"]),
    ("nbclient", ["lesson", "--profile", "tiny", "--out", "{tmp}/o"]),
])
def test_a_missing_notebook_module_is_one_line_naming_the_extra(missing, argv, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # `import nbformat` now fails
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert f"needs {missing}" in err and 'pip install "mnli-lesson[notebooks]"' in err, err
    assert not (tmp_path / "a").exists() and not (tmp_path / "g.csv").exists()
