"""Accuracy as evidence: a recipe over N seeds, every choice on a holdout, the test set only recorded.

    python benchmarks/accuracy.py --recipe fast --seeds 3
    python benchmarks/accuracy.py --recipe best --seeds 5 --epochs 30      # hours on 2 CPU cores
    python benchmarks/accuracy.py --recipe fast --seeds 2 --subset 5000    # a smoke run, seconds
    python benchmarks/accuracy.py --recipe best --seed-list 3,4 --json b.json  # some seeds in another process
    python benchmarks/accuracy.py --combine a.json b.json --json all.json      # their table, no training

Each seed trains `--recipe` on the first 60,000 - `--holdout` training images with the recipe's
fixed schedule; its validation (and calibration) is the holdout, never the test set. After every
epoch the test accuracy is recorded too (`RunOptions(test_each_epoch=True)`), and nothing reads it
until this script prints, per seed, side by side:

- last: the test accuracy at the schedule's end, the figure to quote;
- holdout-chosen: at the epoch with the best holdout accuracy (an honest early stop);
- best-epoch: at the epoch with the best test accuracy, which picking on the test set would
  report; its excess over `last` is that choice's selection bias, measured on these runs.

With a moving average of the weights (`--ema`, or a recipe that keeps one) every figure is the
average's, and the same run's weights themselves are scored beside it (`raw_*`: last and best
epoch on the test set, last epoch on the holdout). The average never feeds back into training,
so one run measures both: the holdout columns say whether it helps, without the test set.

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
    raw = {}
    if "raw_test_accuracy" in history[-1]:  # a moving average was kept: the same run's weights themselves
        raw_test = [row["raw_test_accuracy"] for row in history]
        raw = {"raw_last": raw_test[-1], "raw_best_epoch": max(raw_test),
               "raw_holdout_last": history[-1]["raw_val_accuracy"]}
    return {"seed": seed, "epochs": len(history), "last": test[-1],
            "holdout_chosen": test[chosen], "holdout_chosen_epoch": chosen + 1,
            "best_epoch": test[best], "best_epoch_at": best + 1,
            "holdout_last": val[-1], "parameters": info["parameters"], **raw,
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
            "wall_seconds": spread([r["wall_seconds"] for r in rows]),
            **({key: spread([r[key] for r in rows]) for key in ("holdout_last", "raw_holdout_last", "raw_last",
                                                                 "raw_best_epoch")} if "raw_last" in rows[0] else {})}


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
    if "raw_last" in s:
        lines += ["", "The same runs' weights without the average (training is identical; only what is scored "
                      "differs), test accuracy (%) last / best epoch, and holdout accuracy (%) last epoch, "
                      "average against weights:", "",
                  "| seed | weights: last epoch | weights: best epoch | holdout, average | holdout, weights |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['seed']} | {pct(r['raw_last'])} | {pct(r['raw_best_epoch'])} | {pct(r['holdout_last'])} | "
                  f"{pct(r['raw_holdout_last'])} |" for r in rows]
        lines.append(f"| **median** | **{pct(s['raw_last']['median'])}** | {pct(s['raw_best_epoch']['median'])} | "
                     f"{pct(s['holdout_last']['median'])} | {pct(s['raw_holdout_last']['median'])} |")
    lines += ["", f"Picking the epoch on the test set adds {100 * s['epoch_selection_bias']:+.2f} points to the "
                  f"median; picking the best seed adds {100 * s['seed_selection_bias']:+.2f} "
                  f"({pct(s['best_seed_last'])}).",
              f"Command: `{command}`. Machine: {machine}."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="fast", help="recipe name (default: fast)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: 3)")
    ap.add_argument("--seed-list", help="these seeds instead, comma-separated (to share the seeds among processes)")
    ap.add_argument("--combine", nargs="+", metavar="JSON",
                    help="train nothing: one table from these result files (the same recipe and holdout)")
    ap.add_argument("--holdout", type=int, default=5000,
                    help="last training images held out for validation and calibration (default: 5000)")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs (the schedule spans them)")
    ap.add_argument("--ema", type=float, help="override the recipe's moving-average decay per step (0: off)")
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
    if args.combine:
        return combine([Path(f) for f in args.combine], Path(args.json), args.markdown, ap)
    try:
        seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    except ValueError:
        ap.error(f"--seed-list must be whole numbers separated by commas; got {args.seed_list!r}")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        ap.error(f"--seed-list must be distinct whole numbers, 0 or more; got {args.seed_list!r}")

    from lenet import cpu

    threads = cpu.prepare(args.threads)  # before torch is imported, as lenet train does

    import torch

    from lenet.config import RECIPES
    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import resolve_device
    from lenet.training.run import RunOptions, train_on

    if args.recipe not in RECIPES:
        ap.error(f"--recipe must be one of {', '.join(RECIPES)}; got {args.recipe!r}")
    recipe = RECIPES[args.recipe].override(epochs=args.epochs, ema=args.ema)
    ds = datasets.load(args.data_dir)
    command = "python benchmarks/accuracy.py " + shlex.join(sys.argv[1:])
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, device {resolve_device('auto')}; {threads}; "
               f"torch {torch.__version__}, "
               f"Python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out_dir or tmp)
        for seed in seeds:
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
    result = {"recipe": recipe.to_dict(), "holdout": args.holdout, "subset": args.subset, "command": command,
              "machine": machine, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": rows}
    write_results(result, Path(args.json), args.markdown)
    return 0


def write_results(result: dict, path: Path, markdown_path: str | None) -> None:
    """Add the summary to `result`, print its table, write the JSON (and the markdown when asked)."""
    from lenet.files import write_text_atomic

    result["summary"] = summarize(result["runs"])
    table = markdown(result["recipe"]["name"], result["runs"], result["summary"], result["command"],
                     result["machine"])
    print("\n" + table)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    if markdown_path:
        write_text_atomic(Path(markdown_path), table + "\n")


def combine(files: list[Path], out: Path, markdown_path: str | None, ap: argparse.ArgumentParser) -> int:
    """One result from several runs of this script over different seeds of one recipe and holdout."""
    parts = [json.loads(f.read_text()) for f in files]
    first = parts[0]
    def setting(part: dict) -> tuple:  # the summary line is words, not a setting
        return {**part["recipe"], "summary": None}, part["holdout"], part["subset"]

    for f, part in zip(files, parts, strict=True):
        if setting(part) != setting(first):
            ap.error(f"{f}: another recipe, holdout or subset than {files[0]}; only runs of one setting combine")
    rows = sorted((r for part in parts for r in part["runs"]), key=lambda r: r["seed"])
    if len({r["seed"] for r in rows}) != len(rows):
        ap.error("a seed appears in more than one file")
    result = {**first, "command": "; ".join(p["command"] for p in parts), "runs": rows,
              "combined_from": [str(f) for f in files]}
    write_results(result, out, markdown_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
