"""Colab in one click: the "Open in Colab" badge and the first cell of every notebook.

Both are generated from ``REPO_URL``, the one setting a fork changes. After changing it, run
``python -m mnli_lesson.colab notebooks`` to rewrite the badge and set-up cells (the tests
check that the notebooks match the setting).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Where the lesson's repository lives. A fork sets its own URL here (and re-syncs).
REPO_URL = "https://github.com/mnli-lesson/mnli-lesson"
#: The branch Colab opens the notebooks from.
BRANCH = "main"
BADGE_TAG = "colab-badge"
SETUP_TAG = "colab-setup"


def _github_path(url: str) -> str:
    """``https://github.com/owner/name`` -> ``owner/name``."""
    return url.removeprefix("https://github.com/").strip("/").removesuffix(".git")


def badge_markdown(notebook: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The badge cell: a link that opens ``notebook`` from the repository in Colab."""
    target = (f"https://colab.research.google.com/github/{_github_path(repo_url)}/blob/"
              f"{branch}/notebooks/{notebook}")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({target})")


def setup_source(repo_url: str | None = REPO_URL) -> str:
    """The first code cell: on Colab, install the package; keep ``out/`` on Drive if asked.

    Colab's own CUDA build of torch is never replaced: the package is installed without
    extras, and torch is already there; so is a transformers the lesson accepts (4.57). A zip
    uploaded to /content is used when present (Colab's uploader takes files, not folders); else
    the repository is cloned (no clone at all when ``repo_url`` is None: a hand-out without a
    public repository). When neither works the cell stops with one message saying what to
    upload, so no later cell fails on its own.
    """
    clone = (f"    if not repo.is_dir():\n        !git clone -q --depth 1 {repo_url} {{repo}}\n"
             if repo_url else "")
    why = f"{repo_url} could not be cloned" if repo_url else "no mnli-lesson.zip was uploaded"
    return f'''# Colab only (does nothing elsewhere): install the lesson, keep Colab's own torch.
# KEEP_ON_DRIVE = True stores results and checkpoints on Google Drive, so that a session
# that disconnects resumes from its checkpoints instead of starting again.
import os
import sys
from pathlib import Path

KEEP_ON_DRIVE = False
if "google.colab" in sys.modules:
    repo = Path("/content/mnli-lesson")
    if Path("/content/mnli-lesson.zip").is_file() and not repo.is_dir():
        !unzip -q /content/mnli-lesson.zip -d /content
{clone}    if not (repo / "pyproject.toml").is_file():
        raise RuntimeError(
            "{why}; upload "
            "mnli-lesson.zip (Files panel on the left) and run this cell again")
    %pip install -q {{repo}}
    os.chdir(repo / "notebooks")
    if KEEP_ON_DRIVE:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["MNLI_LESSON_OUT_DIR"] = "/content/drive/MyDrive/mnli-lesson-out"
'''


def for_students(nb, name: str, handout_url: str | None) -> None:
    """Point a student version's badge and set-up cell at the hand-out repository, never at
    the lesson's (it holds the solutions); without one, no badge and no clone."""
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if BADGE_TAG in tags:
            if not handout_url:
                continue
            cell.source = badge_markdown(name, handout_url)
        if SETUP_TAG in tags:
            cell.source = setup_source(handout_url)
        cells.append(cell)
    nb.cells = cells


def sync_notebook(path: Path, repo_url: str = REPO_URL) -> bool:
    """Rewrite the badge and set-up cells of one notebook; True if anything changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    wanted = {BADGE_TAG: badge_markdown(path.name, repo_url), SETUP_TAG: setup_source(repo_url)}
    changed = False
    for cell in nb.cells:
        for tag, source in wanted.items():
            if tag in cell.metadata.get("tags", []) and cell.source != source:
                cell.source, changed = source, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:] or ["notebooks"])[0])
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        if sync_notebook(path):
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
