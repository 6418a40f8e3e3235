"""Time to 99% and to 99.5%: whole `lenet train` processes, as a user runs them, over 10 seeds.

    python benchmarks/time_to_99.py [--recipes fast,sprint] [--seeds 0-9] [--holdout N] [--data-dir DIR]
                                    [-- FLAG ...]

For each recipe and seed runs `lenet train --recipe R --seed S` in a fresh process, as a user runs
it (plots and log lines included; `--no-plots` leaves the figures out), and prints its training
seconds (the epoch lines' own clock: the training steps, evaluation excluded), the whole process's
wall time (start-up, data loading, evaluation and saving included), its training images/s and its
final test accuracy; then, per recipe, the mean, standard deviation, lowest and highest of each over
the seeds, and `import torch` alone for scale. Flags after `--` go to every `lenet train` (a
configuration to compare: `-- --batch-size 256`).

The records are fixed schedules, never stopped by a test score, and the accuracy is the MEAN over
the seeds, not the best seed:
- time to 99%: `fast` and `fast-adam` (one epoch each), target a mean >= 99.0% with <= 10 s of training and <= 16 s
  for the whole process on 2 quiet cores (issue 29);
- time to 99.5%: `sprint`, target a mean >= 99.5%, its training seconds the record (goal <= 60 s).

With `--holdout N` each run trains on all but the last N training images and is scored on them
too: configurations are compared on that column, never on the test set (the test column is still
printed, for the one chosen).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# mean accuracy, training s, wall s (None: no target)
TARGETS = {"fast": (0.990, 10.0, 16.0), "fast-adam": (0.990, 10.0, 16.0), "sprint": (0.995, 60.0, None)}


def run(recipe: str, seed: int, data_dir: str | None, holdout: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lenet", "train", "--recipe", recipe, "--seed", str(seed), "--out", out,
               *(["--holdout", str(holdout)] if holdout else []), *(["--data-dir", data_dir] if data_dir else []),
               *extra]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        info = json.loads((Path(out) / "model.json").read_text())
    epochs = info["history"]
    training = sum(row["seconds"] for row in epochs)
    images = sum(row["images_per_second"] * row["seconds"] for row in epochs)
    test = info["test_accuracy"] if holdout else epochs[-1]["val_accuracy"]
    return {"seed": seed, "training": training, "wall": wall, "images/s": images / training, "test": test,
            "holdout": epochs[-1]["val_accuracy"] if holdout else None}


def seeds_of(text: str) -> list[int]:
    """'0-9' or '0,1,2' (or both: '0-4,7')."""
    seeds = []
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise argparse.ArgumentTypeError(f"seeds are whole numbers, a range or a list: 0-9 or 0,1,2; got {text!r}")
        seeds += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    return seeds


def spread(rows: list[dict], key: str) -> tuple[float, float, float, float]:
    values = [r[key] for r in rows]
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, min(values), max(values))


FORMATS = {"training": "{:>10.1f}", "wall": "{:>7.1f}", "images/s": "{:>9,.0f}", "test": "{:>7.2%}",
           "holdout": "{:>9.2%}"}


def measure(recipe: str, seeds: list[int], data_dir: str | None, holdout: int, extra: list[str]) -> None:
    """Run each seed, printing its row as it ends (a long run shows its seeds so far), then the spread."""
    columns = ["training", "wall", "images/s", "test"] + (["holdout"] if holdout else [])
    print(f"\n{recipe}{' ' + ' '.join(extra) if extra else ''}" + (f" (holdout {holdout:,})" if holdout else ""))
    print(f"{'seed':>5} {'training s':>10} {'wall s':>7} {'images/s':>9} {'test':>7}"
          + ("  holdout" if holdout else ""), flush=True)
    rows = []
    for seed in seeds:
        rows.append(run(recipe, seed, data_dir, holdout, extra))
        print(f"{seed:>5} " + " ".join(FORMATS[c].format(rows[-1][c]) for c in columns), flush=True)
    stats = {c: spread(rows, c) for c in columns}
    for i, name in enumerate(("mean", "std", "min", "max")):
        print(f"{name:>5} " + " ".join(FORMATS[c].format(stats[c][i]) for c in columns))
    target = TARGETS.get(recipe)
    if target and not extra and not holdout:
        accuracy, training, wall = target
        met = stats["test"][0] >= accuracy and stats["training"][0] <= training and (
            wall is None or stats["wall"][0] <= wall)
        print(f"target: mean >= {accuracy:.1%} with <= {training:g} s of training"
              + (f" and <= {wall:g} s in all" if wall else "")
              + f" (means over the seeds): {'met' if met else 'not met'} (the times hold on a quiet machine only)",
              flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="fast,sprint", help="comma-separated recipes (default: fast,sprint)")
    ap.add_argument("--seeds", type=seeds_of, default=list(range(10)), help="seeds: 0-9 or 0,1,2 (default: 0-9)")
    ap.add_argument("--holdout", type=int, default=0, help="score on the last N training images too, to choose "
                                                            "on (default: 0, the test set alone)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="after --: flags for every lenet train")
    args = ap.parse_args()
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    for recipe in args.recipes.split(","):
        measure(recipe, args.seeds, args.data_dir, args.holdout, extra)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    print(f"\npython -c 'import torch' alone: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
