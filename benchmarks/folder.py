"""`lenet predict` on a folder: images/s and peak memory of the whole process.

    python benchmarks/folder.py [--n 10000] [--rounds 3] [--data-dir DIR]

Writes the first `n` MNIST test digits as PNG files into two temporary folders, then runs
`lenet predict FOLDER --json > file`, interleaved, `rounds` times each:

  mnist     the digits as MNIST stores them (28x28, white on black): read as they are
            (reading.digit.mnist_form);
  inverted  the same digits black on white, as a scan would give them: each one goes through
            the full preprocessing (find the ink, fit it, centre it).

and prints the median wall time, images/s and peak resident memory (GNU time) of each, with
the accuracy of the answers against MNIST's labels (so a fast wrong answer cannot pass).
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

import numpy as np
from PIL import Image

from lenet.data import mnist as datasets


def run(folder: Path, out: Path) -> tuple[float, float | None]:
    """Wall seconds and peak memory (MB) of one `lenet predict FOLDER --json > out`."""
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    with open(out, "w") as f:
        r = subprocess.run([*timer, sys.executable, "-m", "lenet", "predict", str(folder), "--json"],
                           stdout=f, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return wall, int(r.stderr.strip().splitlines()[-1]) / 1024 if timer else None


def accuracy(out: Path, labels: np.ndarray) -> float:
    results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]  # one per line
    digits = {Path(r["file"]).stem: r.get("digit") for r in results}
    return float(np.mean([digits[f"{i:05d}"] == y for i, y in enumerate(labels)]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="images per folder (default: 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per folder, interleaved (default: 3)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()
    ds = datasets.load(args.data_dir)
    images, labels = ds.test_images[:args.n], ds.test_labels[:args.n]
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"mnist": Path(tmp, "mnist"), "inverted": Path(tmp, "inverted")}
        for name, folder in folders.items():
            folder.mkdir()
            for i, image in enumerate(images):
                Image.fromarray(image if name == "mnist" else 255 - image).save(folder / f"{i:05d}.png")
        times: dict = {name: [] for name in folders}
        memory: dict = {name: [] for name in folders}
        right: dict = {}
        for _ in range(args.rounds):
            for name, folder in folders.items():
                out = Path(tmp, f"{name}.json")
                wall, mb = run(folder, out)
                times[name].append(wall)
                memory[name].append(mb)
                right[name] = accuracy(out, labels)
    print(f"{args.n:,} PNGs, whole `lenet predict FOLDER --json` process, median of {args.rounds}")
    print(f"{'folder':<9} {'seconds':>8} {'images/s':>9} {'peak MB':>8} {'accuracy':>9}")
    for name in folders:
        wall = statistics.median(times[name])
        mb = max(m for m in memory[name]) if memory[name][0] is not None else float("nan")
        print(f"{name:<9} {wall:>8.2f} {args.n / wall:>9,.0f} {mb:>8.0f} {right[name]:>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
