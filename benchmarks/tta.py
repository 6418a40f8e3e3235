"""Test-time augmentation, chosen on the holdout: saved models scored on shifted copies of each image.

    python benchmarks/tta.py runs/best-ema/best-s0 runs/best-ema/best-s1 ... --json benchmarks/results/tta.json

Each model (an output folder of a run trained with `--holdout N`, as benchmarks/accuracy.py makes
them) scores its own holdout (the last N training images, which it never trained on) and the test
set, once per set of views: `none` (the image alone), `shift4` (the image and its four one-pixel
shifts), `shift8` (and the four diagonal ones); a set's probabilities are the mean over its views.
Then the ensemble of all the given models (probabilities averaged over models and views).

The view set is chosen on the holdout alone, by a rule fixed before any test figure is read: the
best median holdout accuracy over the models, ties to the fewer views. Its test figures are
printed as such; a figure that uses it must say "with test-time augmentation".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lenet.evaluation import scoring

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parent.parent
VIEWS = {"none": scoring.VIEWS[0], "shift4": scoring.VIEWS[4], "shift8": scoring.VIEWS[8]}  # lenet evaluate --shifts


def probabilities(model, config, images, views) -> torch.Tensor:
    """Mean over `views` of the calibrated probabilities (N, classes) of uint8 `images` (N, H, W)."""
    import torch

    from lenet.nn.torch_model import normalize

    total = None
    with torch.inference_mode():
        for dx, dy in views:
            moved = torch.from_numpy(scoring.shifted(images.numpy(), dx, dy))
            p = torch.cat([torch.softmax(model(normalize(moved[i:i + 2000], config)).float() / config.temperature, 1)
                           for i in range(0, len(moved), 2000)])
            total = p if total is None else total + p
    return total / len(views)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="run folders (or .safetensors) trained with --holdout")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "tta.json"),
                    help="write the results here (default: benchmarks/results/tta.json)")
    args = ap.parse_args()

    from lenet import cpu

    cpu.prepare(args.threads)
    import torch

    from lenet.data import mnist as datasets
    from lenet.files import write_text_atomic
    from lenet.nn.torch_model import load_model

    ds = datasets.load(args.data_dir)
    loaded = [load_model(path) for path in args.models]
    holdouts = {info.get("holdout") for _, _, info in loaded}
    if len(holdouts) != 1 or not isinstance(next(iter(holdouts)), int) or next(iter(holdouts)) < 1:
        ap.error(f"every model must be trained with the same --holdout N > 0 (found {sorted(map(str, holdouts))}): "
                 f"the views are chosen on that holdout")
    n = holdouts.pop()
    sets = {"holdout": (torch.from_numpy(ds.train_images[-n:].copy()), torch.from_numpy(ds.train_labels[-n:].copy())),
            "test": (torch.from_numpy(ds.test_images.copy()), torch.from_numpy(ds.test_labels.copy()))}
    rows, sums = [], {}
    for path, (model, config, _info) in zip(args.models, loaded, strict=True):
        model.eval()
        row: dict = {"model": path}
        for name, views in VIEWS.items():
            for where, (images, labels) in sets.items():
                p = probabilities(model, config, images, views)
                sums[name, where] = sums[name, where] + p if (name, where) in sums else p
                row[f"{where}_{name}"] = float((p.argmax(1) == labels.long()).float().mean())
        rows.append(row)
        print(" ".join(f"{k} {100 * v:.2f}" if isinstance(v, float) else str(v) for k, v in row.items()), flush=True)
    median = {f"{where}_{name}": statistics.median(r[f"{where}_{name}"] for r in rows)
              for name in VIEWS for where in sets}
    ensemble = {f"{where}_{name}": float((sums[name, where].argmax(1) == sets[where][1].long()).float().mean())
                for name in VIEWS for where in sets}
    chosen = max(VIEWS, key=lambda name: (median[f"holdout_{name}"], -len(VIEWS[name])))
    lines = [f"{len(rows)} models, holdout {n:,} images; accuracy (%), median over the models / their ensemble:", "",
             "| views | holdout, median | test, median | holdout, ensemble | test, ensemble |", "|---|---|---|---|---|"]
    for name in VIEWS:
        mark = " (chosen on the holdout)" if name == chosen else ""
        lines.append(f"| {name}{mark} | {100 * median[f'holdout_{name}']:.2f} | {100 * median[f'test_{name}']:.2f} | "
                     f"{100 * ensemble[f'holdout_{name}']:.2f} | {100 * ensemble[f'test_{name}']:.2f} |")
    command = "python benchmarks/tta.py " + " ".join(sys.argv[1:])
    lines += ["", f"Command: `{command}`."]
    print("\n" + "\n".join(lines))
    result = {"command": command, "holdout": n, "views": VIEWS, "chosen_on_holdout": chosen, "models": rows,
              "median": median, "ensemble": ensemble, "table": "\n".join(lines),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.json), json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
