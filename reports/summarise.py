"""Print the reference results of one profile in reports/ as a Markdown table (pasted into
the README).

    python reports/summarise.py [cpu|offline]
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnli_lesson.results import load_latest

HERE = Path(__file__).resolve().parent


def main(profile: str) -> None:
    print("| comparison | run | train pairs | epochs | matched | mismatched "
          "| trainable params | train time (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in ("finetune-vs-frozen", "pretrained-vs-scratch", "scratch-learning-rate",
                 "data-efficiency"):
        if not (HERE / profile / name / "latest.json").is_file():
            print(f"| {name} | (not run) | | | | | | |")
            continue
        for r in load_latest(HERE / profile / name).runs.values():
            print(f"| {name} | {r.label} | {r.train_size:,} | {r.epochs_planned} "
                  f"| {r.accuracy('matched'):.3f} | {r.accuracy('mismatched'):.3f} "
                  f"| {r.trainable_params:,} | {r.wall_time_s:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
