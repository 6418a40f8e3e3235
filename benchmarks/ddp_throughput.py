"""Training throughput on these cores: 1 process x N threads against N processes x 1 thread (torchrun).

    python benchmarks/ddp_throughput.py [--recipe fast] [--subset 30000] [--procs 2]

Each configuration trains one epoch on the same subset; images/s is read from
its metrics.csv (training time only, evaluation excluded).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def images_per_second(cmd: list[str], out: Path, env: dict) -> float:
    r = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    with open(out / "metrics.csv") as f:
        return float(list(csv.DictReader(f))[-1]["images_per_second"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="fast", help="recipe to train (default: fast)")
    ap.add_argument("--subset", type=int, default=30_000, help="training images (default: 30000)")
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="processes = threads (default: cores)")
    args = ap.parse_args()
    common = ["train", "--recipe", args.recipe, "--subset", str(args.subset), "--epochs", "1",
              "--log-every", "0", "--no-plots"]
    n = args.procs
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        one = images_per_second([sys.executable, "-m", "lenet", *common, "--threads", str(n)], Path(tmp) / "a", env)
        env["OMP_NUM_THREADS"] = "1"
        many = images_per_second([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                  f"--nproc_per_node={n}", "-m", "lenet", *common, "--threads", "1"],
                                 Path(tmp) / "b", env)
    print(f"recipe {args.recipe}, {args.subset:,} images, {os.cpu_count()} cores")
    print(f"1 process x {n} threads:  {one:,.0f} images/s")
    print(f"{n} processes x 1 thread: {many:,.0f} images/s  ({many / one:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
