"""The package's shape, as docs/ARCHITECTURE.md draws it: a lesson core, wings around it,
imports only along the drawn edges, no cycles, small modules.

A new import between wings fails ``test_imports_follow_the_drawn_edges``: either the import
is a mistake, or the drawing (``WINGS``, ``ALLOWED`` and docs/ARCHITECTURE.md) changes with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mnli_lesson"
MAX_LINES = 400

#: Every module of the package, by wing (a sub-package counts as one wing).
WINGS: dict[str, set[str]] = {
    "core": {"core"},
    "base": {"errors", "store", "config", "results", "csv_files", "data", "known_checkpoints",
             "checkpoints", "identity", "baselines", "ledger", "lesson_notebooks", "label_order"},
    "engine": {"models", "evaluate", "train_state", "distributed", "train", "experiments",
               "diagnostics"},
    "writeups": {"writeups"},
    "views": {"plots", "widgets"},
    "classroom": {"checks", "classroom", "grading", "colab", "exercises", "answer_key",
                  "protect", "feedback", "grade_runner", "sandbox", "submissions"},
    "entry": {"cli", "__main__", "__init__"},
}
#: Which wings each wing may import (itself always). The core imports nothing of the package.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "base": {"core"},
    "engine": {"core", "base"},
    "writeups": {"core", "base", "engine"},
    "views": {"core", "base"},
    "classroom": {"core", "base", "engine", "writeups"},
    "entry": {"core", "base", "engine", "writeups", "views", "classroom"},
}


def module_name(path: Path) -> str:
    """``writeups/facts.py`` -> ``writeups.facts``; ``writeups/__init__.py`` -> ``writeups``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Package modules imported by ``path``, lazy imports included, type hints excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test)
               for stmt in block.body for node in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] != "mnli_lesson":
                continue
            base = node.module.removeprefix("mnli_lesson").lstrip(".")
            for alias in node.names:  # `from mnli_lesson import x` may name a module
                name = f"{base}.{alias.name}" if base else alias.name
                found.add(name if name in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("mnli_lesson.") for a in node.names
                      if a.name.startswith("mnli_lesson.")}
    return {m for m in found if m} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: _imports(path, known) for name, path in modules().items()}


def wing_of(module: str) -> str:
    top = module.split(".")[0] if module.startswith("writeups") else module
    for wing, members in WINGS.items():
        if top in members:
            return wing
    raise AssertionError(f"module {module!r} is in no wing: add it to WINGS and the drawing")


def forbidden_edges(graph: dict[str, set[str]]) -> list[str]:
    """Every import that crosses wings against ``ALLOWED``, as 'a -> b (wing -> wing)'."""
    bad = []
    for module, imported in sorted(graph.items()):
        here = wing_of(module)
        for other in sorted(imported):
            there = wing_of(other)
            if there != here and there not in ALLOWED[here]:
                bad.append(f"{module} -> {other} ({here} -> {there})")
    return bad


def test_every_module_has_a_wing():
    for module in modules():
        wing_of(module)


def test_imports_follow_the_drawn_edges():
    assert forbidden_edges(import_graph()) == []


def test_a_forbidden_edge_is_caught():
    """The check above can fail: the core importing the engine, or the engine the write-ups."""
    graph = import_graph()
    assert forbidden_edges({**graph, "core": {"train"}}) == ["core -> train (core -> engine)"]
    with_writeups = {**graph, "train": graph["train"] | {"writeups.wording"}}
    assert "train -> writeups.wording (engine -> writeups)" in forbidden_edges(with_writeups)


def test_the_drawing_names_every_wing():
    drawing = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for wing, members in WINGS.items():
        assert f"**{wing}**" in drawing, wing
        for member in members - {"__main__", "__init__"}:
            assert f"`{member}" in drawing, member


def test_no_module_is_over_400_lines():
    long = {name: n for name, p in modules().items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert graph["errors"] == set()
    # Nothing below the command line imports it (only `python -m mnli_lesson` does).
    assert "cli" not in set().union(*(v for k, v in graph.items() if k != "__main__"))
