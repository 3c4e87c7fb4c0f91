"""Print the reference results in reports/ as a Markdown table (pasted into the README).

    python reports/summarise.py
"""

from __future__ import annotations

from pathlib import Path

from mnli_lesson.experiments import Comparison

HERE = Path(__file__).resolve().parent


def main() -> None:
    print("| comparison | run | train pairs | epochs | matched | mismatched "
          "| trainable params | train time (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in ("finetune-vs-frozen", "pretrained-vs-scratch", "data-efficiency"):
        path = HERE / name / "summary.json"
        if not path.is_file():
            print(f"| {name} | (not run) | | | | | | |")
            continue
        comparison = Comparison.load(path)
        for r in comparison.runs.values():
            final = r["final"]
            print(f"| {name} | {r['label']} | {r['train_size']:,} | {r['epochs_planned']} "
                  f"| {final['validation_matched']['accuracy']:.3f} "
                  f"| {final['validation_mismatched']['accuracy']:.3f} "
                  f"| {r['params']['all']['trainable']:,} | {r['wall_time_s']:.0f} |")


if __name__ == "__main__":
    main()
