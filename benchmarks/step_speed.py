"""Training images/s of recipes side by side: their steps interleaved in one process.

    python benchmarks/step_speed.py [--recipes fast,fast-adam] [--threads 2] [--rounds 5] [--images 7680]

Each round runs `--images` images of training steps of every recipe in turn (its batch size,
optimizer and network, channels-last as `lenet train` runs them, random inputs), so that a
machine's load, which changes from second to second, falls on all of them alike; the first round
warms up and is not counted. Prints each recipe's images/s and its ratio to the first recipe's:
the comparison that says whether a batch size or an optimizer trains faster on this machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from lenet.config import RECIPES
from lenet.nn.torch_model import build_model, init_weights
from lenet.training.loop import train_step
from lenet.training.optim import make_optimizer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="fast,fast-adam", help="comma-separated recipes (default: fast,fast-adam)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, the first not counted (default: 5)")
    ap.add_argument("--images", type=int, default=7680, help="images per recipe per round (default: 7680)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}
    for name in args.recipes.split(","):
        recipe = RECIPES[name]
        torch.manual_seed(0)
        model = build_model(recipe.model_config())
        init_weights(model, recipe.init, recipe.activation)
        model.to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]
        runs[name] = (model, make_optimizer(model, recipe), recipe)
    x = torch.randn(args.images, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.images,))
    seconds = dict.fromkeys(runs, 0.0)
    for round_ in range(args.rounds):
        for name, (model, optimizer, recipe) in runs.items():
            t0 = time.perf_counter()
            for i in range(0, args.images, recipe.batch_size):
                train_step(model, optimizer, x[i:i + recipe.batch_size], y[i:i + recipe.batch_size], recipe.lr, recipe)
            if round_:
                seconds[name] += time.perf_counter() - t0
    first = next(iter(seconds))
    counted = args.images * (args.rounds - 1)
    for name, s in seconds.items():
        print(f"{name:>12}: {counted / s:>8,.0f} images/s  ({seconds[first] / s:.2f} of {first}'s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
