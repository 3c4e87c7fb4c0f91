"""What mid-run checkpoints cost the training loop, before and after a change, side by side.

Each measurement is one child process that fine-tunes the offline encoder (MiniLM) on the
built-in sample with ``train.train`` and reports optimiser steps per second, with checkpoints
as the package under test takes them (its own policy and constants) or with none. Rounds
interleave the four cells (before/after x with/without), so a busy spell falls on all alike.
The "before" package is an earlier revision, exported with ``git archive`` and put first on
``PYTHONPATH``; the workload (pairs, sizes, seed, threads) is the same for both.

    python benchmarks/checkpoint_cost.py --before 967ac7e           # 3 rounds, ~10 min on 2 cores
    python benchmarks/checkpoint_cost.py --before 967ac7e --rounds 1 --train-pairs 64 --epochs 1

Prints a markdown table and writes it (and every child's raw numbers) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    """One measurement, printed as one JSON line (runs under the package on PYTHONPATH)."""
    import inspect

    import pandas as pd
    import torch

    import mnli_lesson
    from mnli_lesson import experiments
    from mnli_lesson import train as training
    from mnli_lesson.config import resolve_config
    from mnli_lesson.core import encode_pairs, forward_inputs
    from mnli_lesson.models import build_model, load_tokenizer

    cfg = resolve_config("cpu", environ={}, model=args.model, batch_size=16, lr=1e-4,
                         max_length=96, epochs=args.epochs, seed=42)
    frame = pd.read_csv(args.sample / "train.csv", keep_default_na=False).head(args.train_pairs)
    tokenizer = load_tokenizer(args.model)
    model = build_model(args.model, "pretrained", seed=42, attn_implementation="eager")
    train_set = encode_pairs(tokenizer, frame, cfg.max_length).restrict_to(forward_inputs(model))

    # Count checkpoints and the time the loop was blocked by each: the old package wrote
    # them in the loop (save_checkpoint), the new one hands a snapshot to a writer thread.
    blocked: list[float] = []

    def timed(fn):
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                blocked.append(time.perf_counter() - started)
        return wrapper

    params = inspect.signature(training.train).parameters
    kwargs: dict[str, object] = {}
    if args.checkpoints:
        if "checkpoint_every" in params:  # before: every N steps and every epoch's end
            training.save_checkpoint = timed(training.save_checkpoint)
            kwargs["checkpoint_every"] = experiments.CHECKPOINT_EVERY
            policy = f"every {experiments.CHECKPOINT_EVERY} steps + each epoch's end"
        else:  # after: at most every CHECKPOINT_SECONDS, plus one at FIRST_CHECKPOINT_STEP
            from mnli_lesson import train_state

            train_state.CheckpointWriter.save = timed(train_state.CheckpointWriter.save)
            kwargs.update(checkpoint_seconds=experiments.CHECKPOINT_SECONDS,
                          first_checkpoint_step=experiments.FIRST_CHECKPOINT_STEP)
            policy = (f"step {experiments.FIRST_CHECKPOINT_STEP} + at most every "
                      f"{experiments.CHECKPOINT_SECONDS:g} s, in the background")
    else:
        policy = "none"
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = training.train(model, tokenizer, train_set, {}, cfg, progress=False,
                                evaluate_before=False,
                                checkpoint_dir=Path(folder) / "run.ckpt" if args.checkpoints
                                else None, **kwargs)
        seconds = time.perf_counter() - started
    print(json.dumps({"package": str(Path(mnli_lesson.__file__).parent),
                      "steps": len(result.history), "seconds": seconds,
                      "steps_per_s": len(result.history) / seconds, "policy": policy,
                      "checkpoints": len(blocked), "blocked_s": sum(blocked),
                      "threads": torch.get_num_threads()}))


def export(revision: str, into: Path) -> Path:
    """The package as it was at ``revision`` (git archive), ready to go on PYTHONPATH."""
    archive = into / "before.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive),
                    revision, "mnli_lesson"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "before", filter="data")
    return into / "before"


def measure(root: Path, checkpoints: bool, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, __file__, "--child", "--model", args.model,
               "--sample", str(args.sample), "--train-pairs", str(args.train_pairs),
               "--epochs", str(args.epochs)] + (["--checkpoints"] if checkpoints else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    if done.returncode:
        sys.exit(f"a measurement failed:\n{done.stderr[-3000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(record["package"]).resolve() != (root / "mnli_lesson").resolve():
        sys.exit(f"measured {record['package']}, not {root / 'mnli_lesson'}: check PYTHONPATH")
    record["package"] = "this checkout" if root == REPO else "exported revision"  # no paths
    return record


def _head() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() + (" + uncommitted changes" if subprocess.run(
        ["git", "-C", str(REPO), "diff", "--quiet", "HEAD"]).returncode else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=False, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-pairs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default=None, help="encoder folder (default: offline MiniLM)")
    parser.add_argument("--sample", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results"
                        / "checkpoint_cost.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from mnli_lesson.checkpoints import offline_encoder, sample_dir

    args.model = args.model or str(offline_encoder() or sys.exit("no offline encoder: make setup"))
    args.sample = args.sample or sample_dir()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"after": REPO}
        if args.before:
            trees = {"before": export(args.before, Path(scratch)), **trees}
        cells = [(name, ckpt) for name in trees for ckpt in (False, True)]
        records: dict[str, list[dict]] = {f"{n}/{'with' if c else 'without'}": [] for n, c in cells}
        for r in range(args.rounds):
            for name, ckpt in cells[r % len(cells):] + cells[:r % len(cells)]:
                record = measure(trees[name], ckpt, args)
                records[f"{name}/{'with' if ckpt else 'without'}"].append(record)
                print(f"round {r + 1}: {name:6} {'with' if ckpt else 'without':7} "
                      f"{record['steps_per_s']:.3f} steps/s ({record['checkpoints']} checkpoints)",
                      flush=True)
    lines = ["| code | checkpoints | policy | steps/s (median) | with / without | checkpoints "
             "per run | loop blocked per checkpoint |", "|---|---|---|---:|---:|---:|---:|"]
    for name in trees:
        without = statistics.median(r["steps_per_s"] for r in records[f"{name}/without"])
        with_ = records[f"{name}/with"]
        ratios = [w["steps_per_s"] / o["steps_per_s"]
                  for w, o in zip(with_, records[f"{name}/without"], strict=True)]
        blocked = sum(r["blocked_s"] for r in with_) / max(sum(r["checkpoints"] for r in with_), 1)
        lines.append(f"| {name} | without | none | {without:.3f} | 1 | 0 | - |")
        lines.append(f"| {name} | with | {with_[0]['policy']} | "
                     f"{statistics.median(r['steps_per_s'] for r in with_):.3f} | "
                     f"{statistics.median(ratios):.3f} | {with_[0]['checkpoints']} | "
                     f"{blocked * 1000:.0f} ms |")
    first = next(iter(records.values()))[0]
    lines.append(f"\n{args.rounds} rounds; {first['steps']} optimiser steps of batch 16 per run "
                 f"({args.train_pairs} pairs x {args.epochs} epochs), MiniLM, fp32, "
                 f"{first['threads']} threads; with / without = median of per-round ratios.")
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"before": args.before, "after": _head(), "rounds": args.rounds,
                                    "records": records, "table": table}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
