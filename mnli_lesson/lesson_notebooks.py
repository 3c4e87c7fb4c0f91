"""Where the lesson's four notebooks are, and what running them needs.

A wheel ships them inside the package (``mnli_lesson/notebooks/``, mapped from the
repository's ``notebooks/`` by pyproject.toml); a clone or an editable install has them in the
checkout's ``notebooks/``, beside the package.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from mnli_lesson.errors import LessonError
from mnli_lesson.store import atomic_write

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


def notebook_error(err: Exception, notebook: str, copy: Path) -> LessonError:
    """One line for a failed notebook: a LessonError's own message, else where it failed."""
    name = getattr(err, "ename", type(err).__name__)
    value = str(getattr(err, "evalue", "") or "").strip().splitlines()
    if name == "LessonError" and value:
        return LessonError(value[-1])
    first = value[-1] if value else ""
    return LessonError(f"{notebook} stopped with {name}: {first[:200]} (the executed copy, "
                       f"with the full traceback, is {copy})")


@contextmanager
def stops_as_interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM (`timeout`, a scheduler) end the run as an interruption: whatever
    nbclient raises once one arrived (a dead kernel, an error of its event loop) is reported
    as that, in one line and exit 130, not as a traceback."""
    arrived: list[int] = []

    def stop(signum, frame):
        arrived.append(signum)
        raise KeyboardInterrupt

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except Exception:
        if arrived:
            raise KeyboardInterrupt from None
        raise
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)


def execute_all(notebooks: list[Path], target: Path, workdir: Path, profile: str,
                ledger) -> None:
    """Execute each notebook in ``workdir``; write its executed copy into ``target``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    with stops_as_interrupts():
        for path in notebooks:
            print(f"running {path.name} on the {profile} profile ...", flush=True)
            nb = nbformat.read(path, as_version=4)
            copy = target / path.name
            client = NotebookClient(nb, timeout=None, kernel_name="python3",
                                    resources={"metadata": {"path": str(workdir)}})
            try:
                # The kernel's own chatter (e.g. its warning about TCP without encryption)
                # goes to a log beside the executed notebooks, not to the user's terminal.
                with open(target / "kernel.log", "a", encoding="utf-8") as log:
                    client.execute(stderr=log)
            except Exception as err:
                # While it runs, nbclient (0.10, 0.11) answers SIGINT and SIGTERM itself: it
                # shuts the kernel down, then fails in its own clean-up (DeadKernelError, then
                # an AssertionError). The future it leaves says a signal arrived.
                stopped = getattr(client, "_async_cleanup_kernel_future", None) is not None
                if stopped or isinstance(err, DeadKernelError) or getattr(
                        err, "ename", "") == "KeyboardInterrupt":
                    raise KeyboardInterrupt from None
                if isinstance(err, CellExecutionError):
                    raise notebook_error(err, path.name, copy) from None
                raise
            finally:
                # Through a temporary file: a full disk leaves one error line and no empty
                # notebook (which the next run would refuse as not its own).
                atomic_write(copy, lambda tmp, nb=nb: nbformat.write(nb, str(tmp)))
                ledger.record(copy.name)
            print(f"  wrote {copy}")
