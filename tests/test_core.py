"""The lesson core: small, self-contained, the same code the notebooks teach, and reusable.

- ``core.py`` imports nothing else of the package and stays short enough to read in one
  sitting (its loop in one screen);
- the functions students write in the notebooks are, in the solution, ``core``'s own source
  (d2l's ``#@save`` idea, held by a test rather than a tool);
- the behaviour checks of those exercises pass the reference and fail typical mistakes;
- the notebooks' code transfers: a script made of it, with no ``mnli_lesson`` import,
  fine-tunes the tiny model on another (2-label) task and its loss falls.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import nbformat
import pytest
import torch

from mnli_lesson import checks, core
from mnli_lesson.checkpoints import resolve_checkpoint
from mnli_lesson.models import build_model

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CORE = ROOT / "mnli_lesson" / "core.py"


def solution_code(notebook: str, grade_id: str) -> str:
    """The SOLUTION block of the cell with ``grade_id`` in ``notebooks/<notebook>``."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    (cell,) = [c for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    found = re.search(r"### BEGIN SOLUTION\n(.*?)\n### END SOLUTION", cell.source, re.S)
    assert found, f"{notebook}:{grade_id} has no solution block"
    return found.group(1)


def check_code(notebook: str, grade_id: str) -> str:
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    (cell,) = [c for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell.source


# --------------------------------------------------------------------------- small, alone


def test_core_imports_nothing_of_the_package():
    tree = ast.parse(CORE.read_text(encoding="utf-8"))
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.split(".")[0] == "mnli_lesson"]


def test_core_reads_in_one_sitting():
    assert len(CORE.read_text(encoding="utf-8").splitlines()) <= 350
    lines, _ = inspect.getsourcelines(core.train)
    assert len(lines) <= 60, f"core.train is {len(lines)} lines"


@pytest.mark.parametrize(("notebook", "grade_id", "function"), [
    ("02_model_io.ipynb", "ex02-freeze", core.freeze_encoder),
    ("03_finetune_vs_frozen.ipynb", "ex03-step", core.training_step),
    ("03_finetune_vs_frozen.ipynb", "ex03-pool", core.mean_pool),
])
def test_the_notebook_teaches_the_core_code(notebook, grade_id, function):
    """Change one, change the other: the solution a notebook shows is core's source."""
    assert solution_code(notebook, grade_id) == inspect.getsource(function).rstrip("\n")


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
def test_the_plain_build_equals_the_checked_one(init):
    """The engine trains models.build_model's model; the notebooks build core's. Same seed,
    same weights, same trainable set, so the notebooks' runs are the engine's runs."""
    plain = core.build_model(resolve_checkpoint("tiny"), init, frozen=True, seed=7)
    checked = build_model("tiny", init, frozen=True, seed=7)
    a, b = plain.state_dict(), checked.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [n for n, p in plain.named_parameters() if p.requires_grad] == \
        [n for n, p in checked.named_parameters() if p.requires_grad]


# --------------------------------------------------------------------------- the checks


@pytest.fixture(scope="module")
def tiny_key(tmp_path_factory):
    """The answer key on the tiny profile, as the grader builds it."""
    from mnli_lesson.answer_key import LessonKey
    from mnli_lesson.config import resolve_config
    from mnli_lesson.exercises import Context

    ctx = Context(resolve_config("tiny"), results=tmp_path_factory.mktemp("results"))
    return LessonKey(ctx), ctx


def judge(tiny_key, exercise: str, answer) -> str:
    """What the grader (and the self-check) says of ``answer``: right / not right yet / ..."""
    from mnli_lesson.exercises import observe

    key, ctx = tiny_key
    return checks.verdict(key.expect(exercise), observe(exercise, answer, ctx))[0]


def _step_without(line: str):
    """core.training_step with one of its lines removed (a typical slip)."""
    src = inspect.getsource(core.training_step)
    assert line in src
    namespace = {"torch": torch, "autocast_for": core.autocast_for}
    exec(src.replace(line, "pass  # forgotten"), namespace)  # noqa: S102
    return namespace["training_step"]


WRONG_STEPS = {
    "no zero_grad": "optimizer.zero_grad(set_to_none=True)",
    "no clipping": "torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)",
    "no schedule": "scheduler.step()",
}


def test_the_step_check_passes_the_reference_and_fails_slips(tiny_key):
    assert check_code("03_finetune_vs_frozen.ipynb", "ex03-step-check").endswith(
        'checks.check("ex03-step", training_step);')
    solved: dict = {}
    exec(solution_code("03_finetune_vs_frozen.ipynb", "ex03-step"),  # noqa: S102
         {"torch": torch, "autocast_for": core.autocast_for}, solved)
    assert judge(tiny_key, "ex03-step", solved["training_step"]) == checks.RIGHT
    assert judge(tiny_key, "ex03-step", None) == checks.UNANSWERED
    for slip, line in WRONG_STEPS.items():
        assert judge(tiny_key, "ex03-step", _step_without(line)) == checks.WRONG, slip

    def attached(*args, **kwargs):  # the loss still holding its graph
        loss = core.training_step(*args, **kwargs)
        return loss.clone().requires_grad_(True)

    with pytest.raises(ValueError, match="detached"):
        judge(tiny_key, "ex03-step", attached)


def test_the_other_code_checks_fail_wrong_code(tiny_key):
    cases = [
        ("ex02-freeze", core.freeze_encoder, lambda m: m.requires_grad_(False)),
        ("ex03-pool", core.mean_pool, lambda hidden, mask: hidden.mean(dim=1)),
        ("ex03-accuracy",
         lambda logits, labels: (logits.argmax(-1) == labels).float().mean().item(),
         lambda logits, labels: (logits.argmax(-1) == labels).sum().item()),
    ]
    for exercise, right, wrong in cases:
        assert judge(tiny_key, exercise, right) == checks.RIGHT, exercise
        assert judge(tiny_key, exercise, wrong) == checks.WRONG, exercise


def test_the_encode_check_passes_the_lesson_encoding_only(tiny_key):
    solved: dict = {}
    exec(solution_code("02_model_io.ipynb", "ex02-encode"), solved)  # noqa: S102
    assert judge(tiny_key, "ex02-encode", solved["encode_pair"]) == checks.RIGHT
    assert judge(tiny_key, "ex02-encode", lambda t, p, h, m: t(p, h)) == checks.WRONG  # untruncated
    hypothesis_first = lambda t, p, h, m: t(h, p, truncation=True, max_length=m)  # noqa: E731
    assert judge(tiny_key, "ex02-encode", hypothesis_first) == checks.WRONG


# --------------------------------------------------------------------------- transfer

TOY_GOOD = ["wonderful", "happy", "lovely", "great"]
TOY_BAD = ["terrible", "sad", "awful", "broken"]
TOY_SUBJECTS = ["the film", "the food", "my day", "the room", "the trip", "our team"]


def test_the_notebook_code_transfers_to_another_task():
    """A new task, two labels, sentences instead of pairs: the notebook's step function
    and loop train it with the transformers API alone, no mnli_lesson import."""
    step_source = solution_code("03_finetune_vs_frozen.ipynb", "ex03-step")
    accuracy_source = solution_code("03_finetune_vs_frozen.ipynb", "ex03-accuracy")
    autocast_source = inspect.getsource(core.autocast_for)  # text, not an import
    script = f'''
import contextlib
import math

import torch
from torch.utils.data import DataLoader
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                          DataCollatorWithPadding, get_scheduler, set_seed)

{autocast_source}
{step_source}
{accuracy_source}

def run(checkpoint, sentences, labels, epochs=10, lr=2e-3):
    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, id2label={{0: "bad", 1: "good"}}, label2id={{"bad": 0, "good": 1}})
    assert model.config.num_labels == 2
    encoded = tokenizer(sentences, truncation=True, max_length=32)
    rows = [{{"input_ids": i, "attention_mask": m, "labels": y}} for i, m, y in
            zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    loader = DataLoader(rows, batch_size=8, shuffle=True,
                        collate_fn=DataCollatorWithPadding(tokenizer),
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2,
                              num_training_steps=epochs * len(loader))
    losses = []
    model.train()
    for epoch in range(epochs):
        for batch in loader:
            losses.append(training_step(model, batch, optimizer, scheduler).item())
    model.eval()
    with torch.inference_mode():
        batch = DataCollatorWithPadding(tokenizer)(rows)
        labels = batch.pop("labels")
        accuracy = accuracy_from_logits(model(**batch).logits, labels)
    return losses, accuracy
'''
    assert "mnli_lesson" not in script
    namespace: dict = {}
    exec(compile(script, "transfer_script", "exec"), namespace)  # noqa: S102
    sentences = [f"{s} was {w}" for s in TOY_SUBJECTS for w in TOY_GOOD + TOY_BAD]
    labels = [int(w in TOY_GOOD) for s in TOY_SUBJECTS for w in TOY_GOOD + TOY_BAD]
    losses, accuracy = namespace["run"](resolve_checkpoint("tiny"), sentences, labels)
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    print(f"transfer: loss {first:.3f} -> {last:.3f}, accuracy {accuracy:.3f}")
    assert last < first - 0.2, (first, last)
    assert accuracy > 0.8
