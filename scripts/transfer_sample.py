"""Does the built-in sample teach what real MNLI teaches? (issue 23: transfer and recipe)

Trains the offline recipe (all-MiniLM-L6-v2, the lesson's engine, `experiments.run`) on one
data set and scores it on both: trained on the sample, scored on real MNLI pairs; trained on
2,000 real pairs, scored on the sample's validation sets. Each run prints, and appends to
``--log`` as one JSON line, its per-epoch training loss, per-epoch validation accuracy on its
own data, and the accuracies on the other data. The tables in docs/SAMPLE_RECIPE.md come from
those lines (``--table``).

    python scripts/transfer_sample.py --train sample --seed 42 --log runs.jsonl
    python scripts/transfer_sample.py --train real --seed 42 --log runs.jsonl
    python scripts/transfer_sample.py --table runs.jsonl

Real pairs are reached through ``--real`` (default ``../shared/data/mnli-sample``, or
``$MNLI_LESSON_SHARED/data/mnli-sample``); they are never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from mnli_lesson import core, experiments
from mnli_lesson.config import resolve_config
from mnli_lesson.data import load_mnli, stratified_subset
from mnli_lesson.experiments import RunSpec

SCORE_SIZE = 500  # pairs of each other-data validation split scored (seeded, stratified)
SCORE_SEED = 42  # the scored subsets stay the same whatever the run's seed


def accuracy(model, tokenizer, frame: pd.DataFrame, max_length: int) -> float:
    """Share of ``frame``'s pairs the model labels right."""
    data = core.encode_pairs(tokenizer, frame, max_length).restrict_to(
        core.forward_inputs(model))
    probs = core.predict(model, data, core.make_collator(tokenizer), batch_size=64)
    return float((probs.argmax(-1) == frame["label"].to_numpy()).mean())


def one_run(args: argparse.Namespace) -> dict:
    real_dir = Path(args.real)
    own, other = (args.sample, real_dir) if args.train == "sample" else (real_dir, args.sample)
    overrides = dict(seed=args.seed, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                     warmup_ratio=args.warmup_ratio)
    with tempfile.TemporaryDirectory() as out:
        cfg = resolve_config("offline", data=str(own), out_dir=out,
                             **{k: v for k, v in overrides.items() if v is not None})
        prepared = experiments.prepare(cfg)
        spec = RunSpec(args.init, args.init, init=args.init, evaluate_each_epoch=True)
        planned = experiments.plan_run(spec, cfg, len(prepared.data.train))
        # A folder under out_dir keeps the results and weights; --keep names a lasting one, so
        # a second call (another candidate sample to score) reloads instead of training again.
        folder = Path(args.keep or out) / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        result, model = experiments.run(planned, prepared, folder, progress=False,
                                        keep_model=True)
        seconds = result.wall_time_s
    other_data = load_mnli(str(other))
    scored = {split: accuracy(model, prepared.tokenizer,
                              stratified_subset(other_data.splits[split], SCORE_SIZE, SCORE_SEED),
                              cfg.max_length)
              for split in ("validation_matched", "validation_mismatched")}
    return {
        "train": args.train, "init": args.init, "seed": cfg.seed, "lr": cfg.lr,
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "warmup_ratio": cfg.warmup_ratio,
        "sample": str(args.sample), "threads": torch.get_num_threads(),
        "train_seconds": round(seconds, 1),
        "precision": result.precision, "variant": "pooler re-initialised" if args.reinit_pooler
        else "",
        "epoch_loss": [e.train_loss for e in result.epochs if e.epoch > 0],
        "own_matched_by_epoch": [e.matched for e in result.epochs],
        "own_matched": result.accuracy("matched"),
        "own_mismatched": result.accuracy("mismatched"),
        "other_matched": scored["validation_matched"],
        "other_mismatched": scored["validation_mismatched"],
    }


def reinit_pooler_in_builds() -> None:
    """Every pre-trained model the engine builds gets a fresh pooler (dense layer over [CLS];
    normal(0, initializer_range), bias 0), as "Revisiting Few-sample BERT Fine-tuning" (Zhang
    et al., 2021) does: all-MiniLM-L6-v2's saved pooler has weights of std 0.009 and zero
    bias (measured; a fresh one is drawn with std 0.02)."""
    build = experiments.build_model

    def rebuilt(model: str, init: str = "pretrained", **kwargs):
        net = build(model, init, **kwargs)
        if init == "pretrained":
            dense = net.base_model.pooler.dense
            torch.manual_seed(kwargs.get("seed", 42) + 1000)
            torch.nn.init.normal_(dense.weight, 0.0, net.config.initializer_range)
            torch.nn.init.zeros_(dense.bias)
        return net

    experiments.build_model = rebuilt


def table(log: Path) -> None:
    """The runs in ``log`` as one Markdown table (figures as the runs printed them)."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print("| trained on | init | variant | precision | lr | batch | warm-up | seed "
          "| epoch losses | own val_m by epoch | own val_m / val_mm | other val_m / val_mm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        losses = ", ".join(f"{v:.3f}" for v in r["epoch_loss"])
        curve = " → ".join(f"{v:.1%}" for v in r["own_matched_by_epoch"])
        print(f"| {r['train']} | {r['init']} | {r.get('variant') or '—'} "
              f"| {r.get('precision', 'not recorded')} | {r['lr']:g} "
              f"| {r['batch_size']} | {r['warmup_ratio']:g} | {r['seed']} | {losses} | {curve} "
              f"| {r['own_matched']:.1%} / {r['own_mismatched']:.1%} "
              f"| {r['other_matched']:.1%} / {r['other_mismatched']:.1%} |")


def cue_table(sample: str, real: str) -> None:
    """Per label (entailment / neutral / contradiction) the cues a model can see, for the
    sample's and the real pairs' training splits: scripts/diagnose_sample.py's measures."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "diagnose_sample", Path(__file__).with_name("diagnose_sample.py"))
    diagnose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnose)
    columns = {"hyp_words": "words per hypothesis", "overlap": "overlap with the premise",
               "all_in_premise": "every word from the premise",
               "negation": "with a negation word"}
    print("| train split | " + " | ".join(columns.values()) + " |")
    print("|---|" + "---|" * len(columns))
    for name, source in (("the sample", sample), ("real MNLI (shared pairs)", real)):
        feats = diagnose.pair_features(load_mnli(source).train)
        means = feats.groupby("label")[list(columns)].mean()
        print(f"| {name} | " + " | ".join(
            " / ".join(f"{means.loc[k, c]:.2f}" for k in range(3)) for c in columns) + " |")


def main() -> None:
    shared = Path(os.environ.get("MNLI_LESSON_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", choices=("sample", "real"), default="sample")
    parser.add_argument("--init", choices=("pretrained", "scratch"), default="pretrained")
    parser.add_argument("--sample", default="sample",
                        help="the built-in sample, or a folder holding a candidate version")
    parser.add_argument("--real", default=str(shared / "data" / "mnli-sample"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--warmup-ratio", type=float)
    parser.add_argument("--reinit-pooler", action="store_true",
                        help="re-initialise BERT's pooler before training (Zhang et al., 2021)")
    parser.add_argument("--keep", help="folder that keeps the trained run for reuse")
    parser.add_argument("--log", type=Path, help="append the run's JSON line here")
    parser.add_argument("--table", type=Path, help="print the runs of this log as a table")
    parser.add_argument("--cues", action="store_true", help="print the per-label cue table")
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    if args.cues:
        cue_table(args.sample, args.real)
        return
    if args.reinit_pooler:
        reinit_pooler_in_builds()
    row = one_run(args)
    print(json.dumps(row))
    if args.log:
        with args.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
