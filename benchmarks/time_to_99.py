"""Time to 99%: the whole `lenet train --recipe fast` process, as a user runs it.

    python benchmarks/time_to_99.py [--seeds 0,1,2] [--data-dir DIR]

For each seed runs `lenet train --recipe fast --seed S` in a fresh process, as a user runs it
(plots and log lines included; `--no-plots` leaves the figures out), and prints its
training seconds (the epoch lines' own clock: the training steps, evaluation excluded), the
whole process's wall time (start-up, data loading, evaluation and saving included), the rest
(wall - training), and the final test accuracy; then the medians, and `import torch` alone for
scale. The target (issue 16): training <= 12 s, all seeds >= 99.0%, wall <= 20 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time


def run(seed: int, data_dir: str | None, extra: tuple[str, ...] = ()) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lenet", "train", "--recipe", "fast", "--seed", str(seed), "--out", out,
               *extra] + (["--data-dir", data_dir] if data_dir else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    epochs = re.findall(r"epoch \d+/\d+ .* ([\d.]+) s  [\d,]+ img/s", r.stdout)
    accuracy = float(re.findall(r"test accuracy ([\d.]+)", r.stdout)[-1])
    training = sum(float(s) for s in epochs)
    return {"seed": seed, "training": training, "wall": wall, "rest": wall - training, "accuracy": accuracy}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--no-plots", action="store_true", help="pass --no-plots (the figures cost ~1.7 s of the wall "
                                                            "time; stops 20 and 21 measured this way)")
    args = ap.parse_args()
    extra = ("--no-plots",) if args.no_plots else ()
    rows = [run(int(s), args.data_dir, extra) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    torch_import = time.perf_counter() - t0
    print(f"{'seed':>4} {'training s':>10} {'wall s':>7} {'rest s':>7} {'accuracy':>9}")
    for r in rows:
        print(f"{r['seed']:>4} {r['training']:>10.1f} {r['wall']:>7.1f} {r['rest']:>7.1f} {r['accuracy']:>9.4f}")
    med = {k: statistics.median(r[k] for r in rows) for k in ("training", "wall", "rest")}
    print(f"{'med':>4} {med['training']:>10.1f} {med['wall']:>7.1f} {med['rest']:>7.1f} "
          f"{min(r['accuracy'] for r in rows):>9.4f} (lowest)")
    print(f"python -c 'import torch' alone: {torch_import:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
