"""Where the lesson's four notebooks are, and what running them needs.

A wheel ships them inside the package (``mnli_lesson/notebooks/``, mapped from the
repository's ``notebooks/`` by pyproject.toml); a clone or an editable install has them in the
checkout's ``notebooks/``, beside the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mnli_lesson.errors import LessonError

PATTERN = "[0-9][0-9]_*.ipynb"
CHECKOUT = Path(__file__).resolve().parent.parent / "notebooks"
EXTRA_HINT = 'pip install "mnli-lesson[notebooks]" (or run `make setup`)'


def packaged() -> Path | None:
    """The notebooks folder inside the installed package, where it is a real folder."""
    folder = resources.files("mnli_lesson").joinpath("notebooks")
    return Path(str(folder)) if isinstance(folder, Path) else None


def candidates() -> list[Path]:
    """Where to look, in order: the installed package, then the checkout."""
    return [folder for folder in (packaged(), CHECKOUT) if folder is not None]


def notebooks_dir() -> Path:
    """The first folder that holds the lesson's notebooks; the checkout's when none does (a
    caller that needs them calls :func:`lesson_notebooks`, which says what is wrong)."""
    return next((f for f in candidates() if any(f.glob(PATTERN))), CHECKOUT)


def lesson_notebooks(folder: Path) -> list[Path]:
    """The notebooks ``NN_name.ipynb`` in ``folder``, in order, or a one-line error."""
    found = sorted(folder.glob(PATTERN))
    if not found:
        looked = " or ".join(str(f) for f in dict.fromkeys([folder, *candidates()]))
        raise LessonError(f"no lesson notebooks (NN_name.ipynb) in {looked}: reinstall "
                          "mnli-lesson (its wheel ships them) or run from a clone")
    return found


def require(*modules: str, task: str) -> None:
    """Import each module now, so a missing one is one line naming the extra that has it."""
    for name in modules:
        try:
            __import__(name)
        except ImportError as err:
            raise LessonError(f"{task} needs {err.name or name}: {EXTRA_HINT}") from None
