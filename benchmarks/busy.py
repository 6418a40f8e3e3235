"""Training speed on a busy machine: lenet's thread policy against a plain PyTorch loop.

    python benchmarks/busy.py [--subset 30000] [--rounds 2] [--data-dir DIR]

For each load (quiet; one core kept busy; two cores kept busy, by bounded busy-loop processes
this script starts and stops), it runs, interleaved, `rounds` times each:

  library  `lenet train --arch lenet5 --activation relu --no-augment --batch-size 256` for one
           epoch of `--subset` images (lenet.cpu picks threads and the wait policy);
  plain    the same network and batches in a plain PyTorch loop with PyTorch's defaults
           (all cores, OpenMP's default waiting).

and prints training images/s (medians), and each load's figure as a share of the quiet one.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

BUSY_SECONDS = 600  # a busy loop ends by itself after this, whatever happens to this script

PLAIN = r"""
import sys, time, torch, torch.nn.functional as F
from lenet.data import mnist as datasets
from lenet.config import ModelConfig
from lenet.nn.torch_model import build_model
ds = datasets.load(sys.argv[1] or None)
n = int(sys.argv[2])
x = torch.from_numpy(ds.train_images[:n].copy()).float().div(255).sub(0.1307).div(0.3081).unsqueeze(1)
y = torch.from_numpy(ds.train_labels[:n].astype("int64"))
torch.manual_seed(0)
model = build_model(ModelConfig("lenet5", "relu"))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
t0 = time.perf_counter()
for i in range(0, n, 256):
    loss = F.cross_entropy(model(x[i:i + 256]), y[i:i + 256])
    opt.zero_grad(); loss.backward(); opt.step()
print(f"{n / (time.perf_counter() - t0):.0f} img/s")
"""


def run(kind: str, subset: int, data_dir: str | None, env: dict) -> float:
    if kind == "library":
        cmd = [sys.executable, "-m", "lenet", "train", "--arch", "lenet5", "--activation", "relu", "--no-augment",
               "--batch-size", "256", "--epochs", "1", "--subset", str(subset), "--no-plots", "--log-every", "0",
               "--out", f"/tmp/lenet-busy-{os.getpid()}"]
        if data_dir:
            cmd += ["--data-dir", data_dir]
    else:
        cmd = [sys.executable, "-c", PLAIN, data_dir or "", str(subset)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    found = re.findall(r"([\d,]+) img/s", out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"{kind} failed:\n{out.stdout}\n{out.stderr}")
    return float(found[-1].replace(",", ""))


def busy(n: int) -> list:
    code = f"import time\nend = time.time() + {BUSY_SECONDS}\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subset", type=int, default=30000, help="training images per run (default: 30000)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each kind per load, interleaved (default: 2)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    results: dict = {}
    for load in (0, 1, 2):
        loops = busy(load)
        try:
            time.sleep(1.0)  # let the busy loops start
            for _ in range(args.rounds):
                for kind in ("library", "plain"):
                    results.setdefault((kind, load), []).append(run(kind, args.subset, args.data_dir, env))
        finally:
            for p in loops:
                p.kill()
                p.wait()
    print(f"cores: {os.cpu_count()}; images/s, median of {args.rounds}; share of the quiet figure")
    print(f"{'':<9} {'quiet':>8} {'1 busy':>14} {'2 busy':>14}")
    for kind in ("library", "plain"):
        quiet = statistics.median(results[(kind, 0)])
        cells = [f"{quiet:>8,.0f}"]
        for load in (1, 2):
            v = statistics.median(results[(kind, load)])
            cells.append(f"{v:>7,.0f} ({v / quiet:.0%})")
        print(f"{kind:<9} " + " ".join(f"{c:>14}" if i else c for i, c in enumerate(cells)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
