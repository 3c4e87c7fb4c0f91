"""Files that are never half-written: one atomic write, JSON in and out, content digests.

Everything the package saves (results, summaries, checkpoints, figures) goes through
:func:`atomic_write`, so a crash or a full disk leaves the previous file, never a torn one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from mnli_lesson.errors import LessonError

#: How the commands that train name their output folder; the grader passes its own flags.
OUT = "--out (MNLI_LESSON_OUT_DIR)"


def _write_failure(path: Path, err: OSError, option: str = OUT) -> LessonError:
    """One line for a failed write that says what to do about it, naming ``option``."""
    if err.errno == errno.ENOSPC:
        return LessonError(f"the disk is full while writing {path}: free some space or point "
                           f"{option} at another disk")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LessonError(f"cannot write {path} (permission denied or read-only): point "
                           f"{option} at a folder you can write to")
    if err.errno == errno.ENAMETOOLONG:
        return LessonError(f"the path {str(path)[:80]}... is too long for this file system: "
                           f"choose a shorter folder with {option}")
    return LessonError(f"cannot write {path} ({err.strerror or err}): choose another folder "
                       f"with {option}")


# How safetensors (a Rust io::Error inside SafetensorError, which is no OSError) and torch
# ("unexpected pos" from its zip writer) word a full disk.
_DISK_FULL_WORDS = ("No space left on device", "os error 28", "code: 28", "StorageFull",
                    "unexpected pos")


def _disk_full(err: BaseException) -> bool:
    return any(word in str(err) for word in _DISK_FULL_WORDS)


def make_folder(folder: str | os.PathLike, option: str = OUT) -> Path:
    """Create ``folder`` (and its parents), or refuse in one line that names ``option``: below
    a regular file, in a file system that takes no folders (/proc), on a full or read-only
    disk."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _folder_failure(folder, err, option) from None
    return folder


def _folder_failure(folder: Path, err: OSError, option: str = OUT) -> LessonError:
    if err.errno in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG):
        return _write_failure(folder, err, option)
    blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
    why = (f"{blocker} is a file, not a folder" if blocker is not None else
           "a broken link or a file is in the way" if isinstance(err, FileExistsError) else
           f"{err.strerror or type(err).__name__} (a system folder such as /proc takes no new "
           "folders)" if str(folder).startswith(("/proc/", "/sys/", "/dev/")) else
           err.strerror or type(err).__name__)
    return LessonError(f"cannot create folder {folder}: {why}; choose another {option}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object] | str | bytes, *,
                 option: str = OUT) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    ``write`` is the text or bytes to store, or a function that writes a given path (for
    ``torch.save``, ``save_model``, ``savefig``). The temporary file is removed if anything
    fails, so a full disk is not kept full by a hidden leftover. A failure is one line that
    names ``option``, the flag that chose the folder.
    """
    path = Path(path)
    make_folder(path.parent, option)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise _write_failure(path, err, option) from None
    tmp = Path(name)
    try:
        if isinstance(write, str):
            tmp.write_text(write, encoding="utf-8")
        elif isinstance(write, bytes):
            tmp.write_bytes(write)
        else:
            write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _write_failure(path, err, option) from None
    except Exception as err:  # safetensors and torch report a full disk in other types
        tmp.unlink(missing_ok=True)
        if _disk_full(err):
            full = OSError(errno.ENOSPC, "No space left on device")
            raise _write_failure(path, full, option) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, payload: object) -> Path:
    """``payload`` as indented JSON, atomically. NaN and Infinity are refused: they are not
    JSON (``JSON.parse`` and strict readers reject them), and a result holding one is wrong."""
    try:
        text = json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise LessonError(f"{path} would hold NaN or Infinity, which is not a result: it was not "
                          "written (a diverged run? lower the learning rate)") from None
    return atomic_write(path, text)


def read_json(path: str | os.PathLike) -> object:
    """A JSON file's content, with one-line errors for a missing or damaged file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LessonError(f"no results file at {path}: run the comparison first") from None
    except IsADirectoryError:
        raise LessonError(f"{path} is a folder, not a results file") from None
    except PermissionError:
        raise LessonError(f"cannot read {path} (permission denied)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LessonError(f"{path} is damaged (not valid JSON): delete it and run again") from None


def digest(*parts: object) -> str:
    """A short, stable hex digest of JSON-serialisable parts (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_writable(folder: str | os.PathLike, *, need_bytes: int = 50_000_000,
                   option: str = OUT) -> Path:
    """Create ``folder`` and prove it takes a file, before any training: a read-only or full
    output folder should fail now in one line (naming ``option``), not after the first epoch."""
    folder = Path(folder).expanduser()
    looping = LessonError(f"output folder {folder} is a symbolic link that loops: choose "
                          f"another folder with {option}")
    try:
        folder.resolve(strict=False)
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise looping from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise looping from None
    try:
        if folder.exists() and not folder.is_dir():
            raise LessonError(f"output folder {folder} is a file: choose another folder with "
                              f"{option}")
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise LessonError(f"output folder {folder} cannot be created (a broken link or a "
                          f"file is in the way): choose another folder with {option}") from None
    except OSError as err:
        raise (looping if err.errno == errno.ELOOP else
               _folder_failure(folder, err, option)) from None
    probe = None  # a hidden file of its own name, never a user's; thrown away, so not atomic
    try:
        fd, name = tempfile.mkstemp(prefix=".mnli-write-test-", dir=folder)
        os.close(fd)
        probe = Path(name)
        probe.write_bytes(b"ok")  # a full disk fails here, not when the file is created
    except OSError as err:  # name the folder the user gave, not the probe inside it
        raise _write_failure(folder, err, option) from None
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                probe.unlink()
    try:
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    except (OSError, AttributeError):  # not every platform tells
        return folder
    if free < need_bytes:
        raise LessonError(f"only {free // 1_000_000} MB free in {folder}: free some space or "
                          f"point {option} at another disk")
    return folder


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (a file) while ``what`` is done, or refuse in one
    line when another process holds it. ``filelock`` locks through the operating system
    (``flock`` on POSIX, ``msvcrt`` on Windows), which releases the lock when its process ends,
    even by SIGKILL, so a crash never leaves a run locked."""
    lock = Path(lock)
    make_folder(lock.parent)
    held = FileLock(lock, timeout=0)
    try:
        held.acquire()
    except Timeout:
        raise LessonError(f"another process is already {what} in {lock.parent}: wait for "
                          "it to finish (then run again to reuse its result), or choose "
                          "another --out") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # Windows cannot remove a file still open
            lock.unlink()
        held.release()
