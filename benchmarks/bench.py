"""The speed benchmark suite: predict on what users send, training, time to 99%, evaluation, the data path.

The first rows are `lenet predict`, whole process, on the files users send (benchmarks/
reader_speed.py makes them from MNIST test digits): one page drawing (280x280 white RGBA PNG),
then a folder of `--n` files of each of `--kinds` (page drawings, photo-like ~330 px JPEGs, 96x96
grey scans), and last the MNIST-form 28x28 PNGs, the reader's shortcut that skips finding the
ink, labelled as such. Each row names its input.

Every speed figure is printed next to the machine, core count and versions, and
the training figures also as ratios against a plain PyTorch eager NCHW loop of
the textbook network (layer after layer, as the text draws it) that lives here,
measured side by side in the same run: medians of 3 interleaved rounds.

    python benchmarks/bench.py [--data-dir DIR] [--json benchmarks/results/bench.json] [--quick]
    python benchmarks/bench.py --predict-only [--kinds drawing,photo,scan,mnist] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from folder import accuracy, write_folder
from folder import run as predict_folder
from reader_speed import KINDS, kinds_of, labelled_inputs

from lenet.config import RECIPES, ModelConfig
from lenet.data import mnist as data
from lenet.evaluation.scoring import Split, score
from lenet.nn.torch_model import build_model, init_weights, normalize
from lenet.training.distributed import Dist
from lenet.training.loop import EpochSums, train_one_epoch
from lenet.training.optim import make_optimizer
from lenet.training.run import Run, RunOptions, fit
from lenet.training.splits import Batches, make_splits

CPU = torch.device("cpu")


def forward_macs(model, shape=(1, 1, 28, 28)) -> int:
    """Multiply-accumulates of one forward pass of the network as written in the text (its `layers`,
    before forward's fusions), counted from the conv and linear layers' outputs."""
    macs = 0

    def hook(m, i, o):
        nonlocal macs
        if isinstance(m, torch.nn.Conv2d):
            macs += o.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            macs += o.numel() * m.in_features

    # Two images, in training mode: evaluation folds batch norm into fast's convolutions
    # (without calling them), and batch norm cannot train on one image.
    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    x = torch.zeros((2, *shape[1:]))
    with torch.no_grad():
        list(model.layers(x)) if hasattr(model, "layers") else model(x)
    for h in hooks:
        h.remove()
    return macs // 2


def gemm_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    """The measured single-precision matrix-multiply rate: the ceiling a convnet can approach."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


class Textbook(torch.nn.Module):
    """The network as the text draws it, one layer after another (its `layers`), without the
    fusions of lenet's `forward`: what a plain PyTorch implementation computes."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        if not hasattr(self.net, "layers"):
            return self.net(x)
        for _, out in self.net.layers(x):
            x = out
        return x


def plain_eager(config: ModelConfig, train: Split, batch: int, images: int) -> float:
    """The reference: the textbook network and loop, NCHW, float conversion per batch, .item() each step."""
    torch.manual_seed(0)
    model = Textbook(build_model(config))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = len(train)
    t0, seen = time.perf_counter(), 0
    while seen < images:
        perm = torch.randperm(n)
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            x = normalize(train.images[idx], config)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), train.labels[idx])
            loss.backward()
            opt.step()
            loss.item()
            seen += batch
            if seen >= images:
                break
    return seen / (time.perf_counter() - t0)


def library_train(recipe, train: Split, channels_last: bool = True, model=None, optimizer=None) -> float:
    """Images/s of lenet.training.train_one_epoch over `train`, one epoch, with the recipe's
    network and optimizer unless others are given (benchmarks/ablation.py swaps them)."""
    torch.manual_seed(0)
    config = recipe.model_config()
    if model is None:
        model = build_model(config)
        init_weights(model, recipe.init, recipe.activation)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = optimizer(model) if optimizer else make_optimizer(model, recipe)
    t0 = time.perf_counter()
    batches = Batches(train, config, recipe, seed=0, epoch=0, dist=Dist(), channels_last=channels_last)
    sums = EpochSums.zeros(train.labels.device)
    train_one_epoch(model, opt, batches, recipe, sums)
    return sums.seen / (time.perf_counter() - t0)


def median_of_rounds(measures: dict, rounds: int) -> dict:
    """{name: median images/s} over `rounds` rounds, each round running every measure once in
    turn, so that a slow spell of this shared machine falls on all of them alike."""
    seen = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            seen[name].append(measure())
    return {name: statistics.median(v) for name, v in seen.items()}


def data_path_only(train: Split, config: ModelConfig, batch: int) -> float:
    """Batches/s of the loader alone: permutation, slice, float conversion, normalisation; no model."""
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=gen)
    t0, n = time.perf_counter(), 0
    for i in range(0, len(train), batch):
        idx = order[i:i + batch]
        normalize(train.images[idx], config).contiguous(memory_format=torch.channels_last)
        train.labels[idx]
        n += 1
    return n / (time.perf_counter() - t0)


def time_to_99(ds, seeds=(0, 1, 2)) -> list[dict]:
    """Training wall seconds (evaluation excluded) and final test accuracy of the `fast` recipe."""
    out = []
    train, val = make_splits(ds, CPU)
    recipe = RECIPES["fast"]
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            info = fit(recipe, recipe.model_config(), train, val,
                       Run(out=Path(tmp), options=RunOptions(seed=seed, log_every=0, plots=False)), log=lambda *a: None)
        seconds = sum(h["seconds"] for h in info["history"])
        out.append({"seed": seed, "train_seconds": round(seconds, 1), "accuracy": info["metrics"]["val_accuracy"]})
    return out


def predict_process(args: list[str]) -> tuple[float, float | None]:
    """Wall seconds and peak resident memory (MB, from GNU time; None without it) of one `lenet predict`.
    (getrusage of children would count the pages a fork copies from this large process.)"""
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    r = subprocess.run([*timer, sys.executable, "-m", "lenet", "predict", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return wall, int(r.stderr.strip().splitlines()[-1]) / 1024 if timer else None


def predict_rows(kinds: list[str], n: int, data_dir: str | None) -> dict:
    """`lenet predict`, whole process: one page drawing (median of 3), then a folder of `n` files
    of each kind, real inputs first and the MNIST-form shortcut last."""
    kinds = sorted(kinds, key=lambda k: k == "mnist")
    made = labelled_inputs(sorted({"drawing", *kinds}), n, 0, data_dir)
    out: dict = {"folders": []}
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp, "one.png")
        one.write_bytes(made["drawing"][0][0])
        predict_process([str(one)])  # warm the file cache
        walls = [predict_process([str(one)])[0] for _ in range(3)]
        out["one_file"] = {"input": KINDS["drawing"][0], "wall_s": round(statistics.median(walls), 3),
                           "peak_mb": mb_of(predict_process([str(one)])[1])}
        for kind in kinds:
            files, labels = made[kind]
            write_folder(Path(tmp, kind), files, KINDS[kind][1])
            wall, mb = predict_folder(Path(tmp, kind), Path(tmp, f"{kind}.json"))
            out["folders"].append({"kind": kind, "input": KINDS[kind][0], "files": n,
                                   "images_per_s": round(n / wall, 1), "peak_mb": mb_of(mb),
                                   "accuracy": accuracy(Path(tmp, f"{kind}.json"), labels)})
    return out


def mb_of(mb: float | None) -> float | None:
    return None if mb is None else round(mb, 1)


def print_predict(predict: dict) -> None:
    one = predict["one_file"]
    print(f"lenet predict one file ({one['input']}): {one['wall_s']} s wall, {one['peak_mb']} MB peak")
    width = max(len(r["input"]) for r in predict["folders"])
    print(f"{'lenet predict FOLDER, whole process':<{width}} {'files':>6} {'images/s':>9} {'peak MB':>8} "
          f"{'accuracy':>9}")
    for r in predict["folders"]:
        print(f"{r['input']:<{width}} {r['files']:>6} {r['images_per_s']:>9,.1f} {r['peak_mb']:>8} "
              f"{r['accuracy']:>9.4f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--quick", action="store_true", help="smaller measurements, one round, one seed for time-to-99%%")
    ap.add_argument("--kinds", default="drawing,photo,scan,mnist",
                    help=f"input kinds of the predict rows, of {','.join(KINDS)} (default: drawing,photo,scan,mnist)")
    ap.add_argument("--n", type=int, default=200, help="files of each kind for the predict rows (default: 200)")
    ap.add_argument("--predict-only", action="store_true", help="only the predict rows: no training or evaluation")
    args = ap.parse_args()
    if not 1 <= args.n <= 10_000:
        raise SystemExit("--n must be 1 to 10000 (MNIST's test set)")
    kinds = kinds_of(args.kinds)

    ds = data.load(args.data_dir)
    subset = 10_000 if args.quick else 30_000
    rounds = 1 if args.quick else 3
    train, _ = make_splits(ds, CPU, subset=subset)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
               "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}}

    results["predict"] = predict_rows(kinds, args.n, args.data_dir)
    if args.predict_only:
        print(f"machine: {results['machine']}; numpy {np.__version__}, Python {platform.python_version()}")
        print_predict(results["predict"])
        write_json(results, args.json)
        return 0

    results["gemm_gflops"] = round(gemm_gflops(), 1)
    rows = []
    # Augmentation off: these rows measure the network and the loop; its cost is its own row below.
    plain = dict(augment=False)
    for name, recipe in (("lenet5 relu", RECIPES["lenet5"].override(activation="relu", **plain)),
                         ("lenet5 sigmoid", RECIPES["lenet5"].override(**plain)), ("seed", RECIPES["tutorial"]),
                         ("fast", RECIPES["fast"]), ("fast + augment", RECIPES["best"])):
        config = recipe.model_config()
        flops_per_image = 3 * 2 * forward_macs(build_model(config))  # forward + backward ~ 3x forward
        rate = median_of_rounds({
            "eager": lambda config=config: plain_eager(config, train, 64, subset // 2),
            "ours": lambda recipe=recipe: library_train(recipe, train),
            "ours_nchw": lambda recipe=recipe: library_train(recipe, train, channels_last=False),
            "big": lambda recipe=recipe: library_train(recipe.override(batch_size=256), train)}, rounds)
        eager, ours, ours_nchw, big = rate["eager"], rate["ours"], rate["ours_nchw"], rate["big"]
        rows.append({"network": name, "recipe_batch": recipe.batch_size, "eager_b64": round(eager),
                     "library": round(ours), "library_nchw": round(ours_nchw), "library_b256": round(big),
                     "best_ratio_vs_eager": round(max(ours, big) / eager, 2),
                     "ceiling_images_per_s": round(results["gemm_gflops"] * 1e9 / flops_per_image),
                     "fraction_of_ceiling": round(max(ours, big) * flops_per_image
                                                  / (results["gemm_gflops"] * 1e9), 3)})
    results["training"] = rows
    results["data_path_batches_per_s_b64"] = round(data_path_only(train, ModelConfig(), 64))

    test = Split.of(ds.test_images, ds.test_labels, "test")
    results["evaluate_images_per_s"] = {}
    for arch in ("lenet5", "fast"):
        model = build_model(ModelConfig(arch, "relu")).eval().to(memory_format=torch.channels_last)
        score(model, test, ModelConfig(arch, "relu"))
        t0 = time.perf_counter()
        score(model, test, ModelConfig(arch, "relu"))
        results["evaluate_images_per_s"][arch] = round(10_000 / (time.perf_counter() - t0))

    runs = time_to_99(ds, seeds=(0,) if args.quick else (0, 1, 2))
    results["time_to_99"] = {"recipe": "fast", "runs": runs,
                             "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
                             "median_accuracy": statistics.median(r["accuracy"] for r in runs)}

    print(f"machine: {results['machine']}; torch {torch.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}")
    print_predict(results["predict"])
    print(f"GEMM ceiling: {results['gemm_gflops']} GFLOP/s (fp32, 1024x1024)")
    print(f"{'training images/s':<16} {'eager b64':>9} {'lenet':>7} {'NCHW':>7} {'b256':>7} {'ratio':>6} "
          f"{'ceiling':>8} {'frac':>6}")
    for r in rows:
        print(f"{r['network']:<16} {r['eager_b64']:>9,} {r['library']:>7,} {r['library_nchw']:>7,} "
              f"{r['library_b256']:>7,} {r['best_ratio_vs_eager']:>6} {r['ceiling_images_per_s']:>8,} "
              f"{r['fraction_of_ceiling']:>6}")
    print(f"data path alone: {results['data_path_batches_per_s_b64']:,} batches/s of 64")
    print("evaluate (torch, all 10,000 test images): "
          + ", ".join(f"{a} {v:,} images/s" for a, v in results["evaluate_images_per_s"].items()))
    t = results["time_to_99"]
    print(f"time to 99% (fast recipe): median {t['median_train_seconds']} s of training, accuracy "
          + ", ".join(f"{r['accuracy']:.4f} in {r['train_seconds']} s" for r in runs))
    write_json(results, args.json)
    return 0


def write_json(results: dict, path: str | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
