"""Which files a command wrote in a folder, so that it replaces only those.

A command that writes into a folder the user chose records each file's sha256 in
``<folder>/.written-by-mnli-lesson``. Before writing again it asks ``check``: a file in its way that
it did not write, or that was edited since (say, a student's answers in an executed notebook),
is refused in one line, never replaced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mnli_lesson.errors import LessonError
from mnli_lesson.store import atomic_write

NAME = ".written-by-mnli-lesson"  # JSON inside; no .json suffix, so no glob of results finds it


def not_ours(path: Path, command: str, why: str = "was not written by") -> LessonError:
    """The one line that refuses a file in the way: kept, never replaced."""
    return LessonError(f"{path} {why} `mnli-lesson {command}`; move it away or choose another "
                       "--out (it is never replaced)")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Ledger:
    """The files ``command`` wrote in ``folder`` (relative names -> sha256)."""

    def __init__(self, folder: str | Path, command: str):
        self.folder, self.command = Path(folder), command
        self.files: dict[str, str] = {}
        path = self.folder / NAME
        if path.is_file():
            try:
                files = json.loads(path.read_text(encoding="utf-8"))["files"]
                self.files = {str(k): str(v) for k, v in files.items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise LessonError(f"{path} is damaged; delete it (the files it listed will "
                                  "then be refused rather than replaced)") from None

    def check(self, names: list[str]) -> None:
        """Refuse, in one line, any of ``names`` that exists and is not ours as we left it."""
        for name in names:
            path = self.folder / name
            if path.is_symlink() or (path.exists() and not path.is_file()):
                raise LessonError(f"{path} is in the way (a link or a folder); move it away "
                                  "or choose another --out")
            if path.exists() and self.files.get(name) != _sha(path):
                raise not_ours(path, self.command, "was edited after" if name in self.files
                               else "was not written by")

    def record(self, name: str) -> None:
        """Note that ``name`` (in the folder) was just written by this command."""
        self.files[name] = _sha(self.folder / name)
        atomic_write(self.folder / NAME,
                     json.dumps({"command": self.command, "files": self.files}, indent=1))
