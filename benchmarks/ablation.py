"""What bought what: lenet5 (ReLU) training throughput as the speed-ups are added one at a time.

Each row adds one change to the row above; every row is measured in each of
several interleaved rounds (medians printed), on the same training images,
so the ratios are side by side in one run.

    python benchmarks/ablation.py [--data-dir DIR] [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch
from bench import Textbook, library_train, median_of_rounds, plain_eager

import lenet.nn.torch_model
from lenet.config import RECIPES
from lenet.data import mnist as data
from lenet.nn.torch_model import build_model, init_weights
from lenet.training.splits import make_splits

CPU = torch.device("cpu")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported (default 5)")
    ap.add_argument("--images", type=int, default=20_000, help="training images per measurement (default 20000)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    train, _ = make_splits(data.load(args.data_dir), CPU, subset=args.images)
    recipe = RECIPES["lenet5"].override(activation="relu", augment=False)
    b256 = recipe.override(batch_size=256)
    split_layout_conv = lenet.nn.torch_model.conv_for_training

    def textbook():
        net = build_model(recipe.model_config())
        init_weights(net, recipe.init, recipe.activation)
        return Textbook(net)

    def unfused_sgd(model):
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, fused=False)

    def without_split_layout(measure):
        def run():
            lenet.nn.torch_model.conv_for_training = lambda conv, x: conv(x)
            try:
                return measure()
            finally:
                lenet.nn.torch_model.conv_for_training = split_layout_conv
        return run

    steps = {
        "plain eager loop, textbook network, batch 64": lambda: plain_eager(
            recipe.model_config(), train, 64, len(train)),
        "lenet's loop (no sync per step), same network": lambda: library_train(
            recipe, train, channels_last=False, model=textbook(), optimizer=unfused_sgd),
        "+ batch 256": lambda: library_train(b256, train, channels_last=False, model=textbook(), optimizer=unfused_sgd),
        "+ forward: C1+S2 one convolution, S4 first, C5 a product": without_split_layout(lambda: library_train(
            b256, train, channels_last=False, optimizer=unfused_sgd)),
        "+ C3 passes each in its fastest layout": lambda: library_train(
            b256, train, channels_last=False, optimizer=unfused_sgd),
        "+ fused SGD step": lambda: library_train(b256, train, channels_last=False),
        "+ channels-last model and input": lambda: library_train(b256, train, channels_last=True),
    }
    rates = median_of_rounds(steps, args.rounds)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    print(f"lenet5 (ReLU) training, images/s, median of {args.rounds} rounds over {len(train):,} images")
    base = previous = None
    rows = []
    for name, rate in rates.items():
        base = base or rate
        step = rate / previous if previous else 1.0
        print(f"{name:<58} {rate:>8,.0f}  x{step:4.2f} over the row above  x{rate / base:4.2f} in all")
        rows.append({"change": name, "images_per_s": round(rate), "over_previous": round(step, 2),
                     "over_baseline": round(rate / base, 2)})
        previous = rate
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "rounds": args.rounds, "rows": rows},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
