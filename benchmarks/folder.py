"""`lenet predict` on a folder of what users send: images/s and peak memory of the whole process.

    python benchmarks/folder.py [--kinds drawing,photo,scan,mnist] [--n 300] [--rounds 2] [--data-dir DIR]

Writes `n` files of each kind into a folder of its own (benchmarks/reader_speed.py makes them,
from MNIST test digits the network never trained on), then runs `lenet predict FOLDER --json >
file`, the kinds interleaved, `rounds` times each:

  drawing   page drawings as the page posts them: 280x280 opaque RGBA PNGs of its pad, grey
            strokes on white;
  canvas-transparent  the same drawings as transparent canvas PNGs, the ink as alpha (not by default);
  photo     photo-like files: ~330 px RGB JPEGs of blue ink on unevenly lit paper;
  scan      scans: 96x96 grey PNGs of real digits on paper, with noise;
  phone     phone photos: 2000x1500 JPEGs of a page with a 60 px digit (not by default: slow);
  mnist     MNIST-form 28x28 PNGs, white on black: the reader's shortcut, which skips finding
            the ink (reading.digit.mnist_form); no user sends this.

and prints, real inputs first, the median wall time, images/s and peak resident memory (GNU
time) of each, with the accuracy of the answers against the digits' labels (so a fast wrong
answer cannot pass).
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
from reader_speed import KINDS, kinds_of, labelled_inputs


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
    return float(np.mean([digits.get(f"{i:05d}") == y for i, y in enumerate(labels)]))


def write_folder(folder: Path, files: list[bytes], suffix: str) -> None:
    folder.mkdir()
    for i, data in enumerate(files):
        (folder / f"{i:05d}{suffix}").write_bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="drawing,photo,scan,mnist",
                    help=f"comma-separated input kinds, of {','.join(KINDS)} (default: drawing,photo,scan,mnist)")
    ap.add_argument("--n", type=int, default=300, help="files per kind (default: 300)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per kind, interleaved (default: 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the files (default: 0)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()
    if not 1 <= args.n <= 10_000 or args.rounds < 1:
        raise SystemExit("--n must be 1 to 10000 (MNIST's test set) and --rounds at least 1")
    kinds = kinds_of(args.kinds)
    made = labelled_inputs(kinds, args.n, args.seed, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (files, _) in made.items():
            write_folder(Path(tmp, kind), files, KINDS[kind][1])
        times: dict = {kind: [] for kind in kinds}
        memory: dict = {kind: [] for kind in kinds}
        right: dict = {}
        for _ in range(args.rounds):
            for kind in kinds:
                out = Path(tmp, f"{kind}.json")
                wall, mb = run(Path(tmp, kind), out)
                times[kind].append(wall)
                memory[kind].append(mb)
                right[kind] = accuracy(out, made[kind][1])
    print(f"{args.n:,} files a kind, whole `lenet predict FOLDER --json` process, median of {args.rounds}")
    width = max(len(KINDS[kind][0]) for kind in kinds)
    print(f"{'input':<{width}} {'seconds':>8} {'images/s':>9} {'peak MB':>8} {'accuracy':>9}")
    for kind in sorted(kinds, key=lambda k: k == "mnist"):  # real inputs first, the shortcut last
        wall = statistics.median(times[kind])
        mb = max(memory[kind]) if memory[kind][0] is not None else float("nan")
        print(f"{KINDS[kind][0]:<{width}} {wall:>8.2f} {args.n / wall:>9,.0f} {mb:>8.0f} {right[kind]:>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
