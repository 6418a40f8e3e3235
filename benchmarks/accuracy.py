"""Accuracy as evidence: a recipe over N seeds, every choice on a holdout, the test set only recorded.

    python benchmarks/accuracy.py --recipe fast --seeds 3
    python benchmarks/accuracy.py --recipe best --seeds 5 --epochs 30      # hours on 2 CPU cores
    python benchmarks/accuracy.py --recipe fast --seeds 2 --subset 5000    # a smoke run, seconds

Each seed trains `--recipe` on the first 60,000 - `--holdout` training images with the recipe's
fixed schedule; its validation (and calibration) is the holdout, never the test set. After every
epoch the test accuracy is recorded too (`RunOptions(test_each_epoch=True)`), and nothing reads it
until this script prints, per seed, side by side:

- last: the test accuracy at the schedule's end, the figure to quote;
- holdout-chosen: at the epoch with the best holdout accuracy (an honest early stop);
- best-epoch: at the epoch with the best test accuracy, which picking on the test set would
  report; its excess over `last` is that choice's selection bias, measured on these runs.

Then the median and range over seeds of each, the best seed's `last` (what picking a seed on the
test set would report), the parameter count, and the time per run: the training part of the
epochs (the epoch lines' clock) and the whole run (data on the device, per-epoch scoring, saving).
Writes JSON (default benchmarks/results/accuracy.json) and a markdown table (printed, and to
`--markdown FILE` when given). The runs' folders go under `--out-dir` (default: a temporary one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def summarize_run(seed: int, info: dict, wall: float) -> dict:
    """One seed's figures from its saved info (history with test_accuracy per epoch)."""
    history = info["history"]
    if not history or "test_accuracy" not in history[-1]:
        raise ValueError("the run recorded no per-epoch test accuracy (RunOptions(test_each_epoch=True), --holdout)")
    test = [row["test_accuracy"] for row in history]
    val = [row["val_accuracy"] for row in history]
    chosen = max(range(len(val)), key=lambda e: (val[e], e))  # ties: the later epoch, as a fixed rule
    best = max(range(len(test)), key=lambda e: (test[e], -e))
    return {"seed": seed, "epochs": len(history), "last": test[-1],
            "holdout_chosen": test[chosen], "holdout_chosen_epoch": chosen + 1,
            "best_epoch": test[best], "best_epoch_at": best + 1,
            "holdout_last": val[-1], "parameters": info["parameters"],
            "training_seconds": round(sum(row["seconds"] for row in history), 1), "wall_seconds": round(wall, 1)}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values)}


def summarize(rows: list[dict]) -> dict:
    """Median and range over seeds of each figure, and the two selection biases."""
    last = spread([r["last"] for r in rows])
    best = spread([r["best_epoch"] for r in rows])
    return {"seeds": len(rows), "last": last, "holdout_chosen": spread([r["holdout_chosen"] for r in rows]),
            "best_epoch": best, "epoch_selection_bias": best["median"] - last["median"],
            "best_seed_last": last["max"], "seed_selection_bias": last["max"] - last["median"],
            "parameters": rows[0]["parameters"],
            "training_seconds": spread([r["training_seconds"] for r in rows]),
            "wall_seconds": spread([r["wall_seconds"] for r in rows])}


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def markdown(recipe: str, rows: list[dict], summary: dict, command: str, machine: str) -> str:
    lines = [f"`{recipe}`, {summary['parameters']:,} parameters, {rows[0]['epochs']} epoch(s), "
             f"{summary['seeds']} seeds. Test accuracy (%):", "",
             "| seed | last epoch | holdout-chosen epoch | best epoch (chosen on test) | training s | run s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {pct(r['last'])} | {pct(r['holdout_chosen'])} (epoch "
                     f"{r['holdout_chosen_epoch']}) | {pct(r['best_epoch'])} (epoch {r['best_epoch_at']}) | "
                     f"{r['training_seconds']:.1f} | {r['wall_seconds']:.1f} |")
    s = summary
    lines.append(f"| **median** (range) | **{pct(s['last']['median'])}** ({pct(s['last']['min'])}–"
                 f"{pct(s['last']['max'])}) | {pct(s['holdout_chosen']['median'])} | "
                 f"{pct(s['best_epoch']['median'])} ({pct(s['best_epoch']['min'])}–{pct(s['best_epoch']['max'])}) | "
                 f"{s['training_seconds']['median']:.1f} | {s['wall_seconds']['median']:.1f} |")
    lines += ["", f"Picking the epoch on the test set adds {100 * s['epoch_selection_bias']:+.2f} points to the "
                  f"median; picking the best seed adds {100 * s['seed_selection_bias']:+.2f} "
                  f"({pct(s['best_seed_last'])}).",
              f"Command: `{command}`. Machine: {machine}."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="fast", help="recipe name (default: fast)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: 3)")
    ap.add_argument("--holdout", type=int, default=5000,
                    help="last training images held out for validation and calibration (default: 5000)")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs (the schedule spans them)")
    ap.add_argument("--subset", type=int, help="train on the first N of the remaining images (smoke runs)")
    ap.add_argument("--threads", type=int, help="torch threads (default: chosen as lenet train does)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--out-dir", help="keep each run's folder here (default: a temporary folder, removed)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "accuracy.json"),
                    help="write the results here (default: benchmarks/results/accuracy.json)")
    ap.add_argument("--markdown", help="also write the markdown table to this file")
    args = ap.parse_args()
    if args.seeds < 1 or args.holdout < 1:
        ap.error("--seeds and --holdout must be at least 1: choices are made on the holdout, never the test set")

    from lenet import cpu

    threads = cpu.prepare(args.threads)  # before torch is imported, as lenet train does

    import torch

    from lenet.config import RECIPES
    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import resolve_device
    from lenet.files import write_text_atomic
    from lenet.training.run import RunOptions, train_on

    if args.recipe not in RECIPES:
        ap.error(f"--recipe must be one of {', '.join(RECIPES)}; got {args.recipe!r}")
    recipe = RECIPES[args.recipe].override(epochs=args.epochs)
    ds = datasets.load(args.data_dir)
    command = "python benchmarks/accuracy.py " + shlex.join(sys.argv[1:])
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, device {resolve_device('auto')}; {threads}; "
               f"torch {torch.__version__}, "
               f"Python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out_dir or tmp)
        for seed in range(args.seeds):
            out = base / f"{args.recipe}-s{seed}"
            t0 = time.perf_counter()
            options = RunOptions(seed=seed, subset=args.subset, holdout=args.holdout, log_every=0, plots=False,
                                 test_each_epoch=True, command=command)
            info = train_on(ds, recipe, out, options, log=lambda *a, **k: None)
            row = summarize_run(seed, info, time.perf_counter() - t0)
            if abs(row["last"] - info["test_accuracy"]) > 1e-12:
                raise SystemExit(f"seed {seed}: the last epoch's recorded test accuracy {row['last']} is not the "
                                 f"saved model's {info['test_accuracy']}")
            rows.append(row)
            print(f"seed {seed}: test last {pct(row['last'])}  holdout-chosen {pct(row['holdout_chosen'])}  "
                  f"best-epoch {pct(row['best_epoch'])}  ({row['training_seconds']:.1f} s training, "
                  f"{row['wall_seconds']:.1f} s run)", flush=True)
    summary = summarize(rows)
    table = markdown(args.recipe, rows, summary, command, machine)
    print("\n" + table)
    result = {"recipe": recipe.to_dict(), "holdout": args.holdout, "subset": args.subset, "command": command,
              "machine": machine, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "runs": rows, "summary": summary}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.json), json.dumps(result, indent=2) + "\n")
    if args.markdown:
        write_text_atomic(Path(args.markdown), table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
