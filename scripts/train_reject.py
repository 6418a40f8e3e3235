"""Train the rejector: the fast network with an 11th class, "not one digit" (training/junk.py).

    nice python scripts/train_reject.py [--epochs 2] [--subset 20000] [--junk 0.3] [--seed 0]
                                        [--out runs/reject] [--bundle]

Fine-tuned from the bundled model (its ten outputs kept, an eleventh added), on MNIST's training
digits (`--subset`: the first N of them; the last 5,000 held out for validation and calibration)
plus 10% printed digits plus junk made from the training digits only, `--junk` of the whole mix;
the `robust` recipe's affine and elastic augmentation at a tenth of its learning rate. The junk
images are made once for the whole training set and cached in OUT/junk-*.npz (made again when the
seed changes); a subset takes a seeded sample of them. `--bundle` copies the model and its card to
src/lenet/weights/lenet-reject.safetensors (and .json), where the reader loads it from.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HOLDOUT = 5000  # the last training images: validation and calibration, as for the bundled model


def junk_for(out: Path, images, labels, n: int, seed: int, name: str):
    """Junk made from `images` (training digits), cached in OUT/junk-NAME.npz for these options."""
    from lenet.training.junk import junk_set

    cache = out / f"junk-{name}.npz"
    if cache.is_file():
        saved = np.load(cache)
        if int(saved["n"]) == n and int(saved["seed"]) == seed:
            return saved["images"], saved["labels"]
    x, y = junk_set(images, labels, n, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, images=x, labels=y, n=n, seed=seed)
    return x, y


def eleven_classes(path: Path) -> dict:
    """The state dict of the model at `path` with an eleventh output, "not one digit", whose
    weights start small and random: the ten digits' outputs are kept as they are."""
    import torch

    from lenet.nn.model_file import load_model_file

    tensors, _, _ = load_model_file(path)
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    weight, bias = state["output.weight"], state["output.bias"]
    new = torch.randn(1, weight.shape[1], generator=torch.Generator().manual_seed(0)) * weight.std()
    state["output.weight"] = torch.cat([weight, new])
    state["output.bias"] = torch.cat([bias, bias.mean().reshape(1)])
    return state


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2, help="epochs (default: 2)")
    ap.add_argument("--lr", type=float, default=0.02, help="peak learning rate (default: 0.02)")
    ap.add_argument("--junk", type=float, default=0.3, help="share of junk in the training mix (default: 0.3)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the junk and of training (default: 0)")
    ap.add_argument("--out", default="runs/reject", help="output folder (default: runs/reject)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--subset", type=int, default=20000,
                    help="train on the first N training digits (default: 20000); 0: all 55,000")
    ap.add_argument("--bundle", action="store_true", help="copy the model into src/lenet/weights/ as lenet-reject")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)  # minutes on one core: the rejector is made again whenever the junk changes
    from lenet.config import RECIPES
    from lenet.data import mnist
    from lenet.evaluation.scoring import Split
    from lenet.pretrained import REJECTOR, bundled_model_path
    from lenet.training.junk import JUNK, LOOK_ALIKES
    from lenet.training.run import Run, RunOptions, fit
    from lenet.training.splits import with_printed

    ds = mnist.load(args.data_dir)
    out = Path(args.out)
    digits, digit_labels = ds.train_images[:-HOLDOUT], ds.train_labels[:-HOLDOUT]
    held, held_labels = ds.train_images[-HOLDOUT:], ds.train_labels[-HOLDOUT:]
    n_junk = round(args.junk / (1 - args.junk) * len(digit_labels) * 1.1)  # 1.1: the printed digits too
    junk_x, junk_y = junk_for(out, digits, digit_labels, n_junk, args.seed, "train")
    val_x, val_y = junk_for(out, held, held_labels, len(held_labels) // 2, args.seed + 1, "holdout")
    if args.subset:
        digits, digit_labels = digits[:args.subset], digit_labels[:args.subset]
        keep = np.random.default_rng(args.seed).permutation(len(junk_y))[:round(len(junk_y) * args.subset
                                                                               / len(ds.train_labels[:-HOLDOUT]))]
        junk_x, junk_y = junk_x[np.sort(keep)], junk_y[np.sort(keep)]

    def split(images, labels, extra_x, extra_y, name):
        return Split(torch.from_numpy(np.concatenate([images, extra_x])),
                     torch.from_numpy(np.concatenate([labels.astype(np.int64), extra_y])), name)

    train = with_printed(Split.of(digits, digit_labels, "train"), 0.1)
    train = split(train.images.numpy(), train.labels.numpy(), junk_x, junk_y, "train")
    val = split(held, held_labels, val_x, val_y,
                f"holdout (last {len(held_labels):,} training images and {len(val_y):,} junk made from them)")
    recipe = RECIPES["robust"].override(name="reject", epochs=args.epochs, printed=0.1, lr=args.lr, roughen=False,
                                        summary="the bundled model fine-tuned with junk as an 11th class, "
                                                "robust's affine and elastic augmentation")
    config = recipe.model_config(num_classes=JUNK + 1)
    start = eleven_classes(bundled_model_path())
    command = "python " + shlex.join(["scripts/train_reject.py", *sys.argv[1:]])
    meta = {"dataset": ds.root.name, "dataset_sha256": ds.sha256, "subset": args.subset, "holdout": HOLDOUT,
            "command": command,
            "junk": {"class": JUNK, "train_images": len(junk_y),
                     "train_not_one_digit": int((junk_y == JUNK).sum()),
                     "share_of_mix": round(float((junk_y == JUNK).sum()) / len(train), 4),
                     "made_from": "MNIST training digits only (training/junk.py), seed " + str(args.seed),
                     "letters_left_out": LOOK_ALIKES,
                     "mix": "row pieces cut and bridged by the number reader, fragments, 2-3 digits as one, "
                            "letters in matplotlib's fonts, scribbles, strokes, shapes (polygons and chevrons "
                            "among them), blobs"}}
    options = RunOptions(seed=args.seed, holdout=HOLDOUT, log_every=0, command=command, plots=False)
    test = Split.of(ds.test_images, ds.test_labels, "test")
    info = fit(recipe, config, train, val, Run(out=out, options=options, meta=meta, test=test, start_from=start))
    print(f"test accuracy (11 classes, junk counts as wrong): {info.get('test_accuracy')}")
    if args.bundle:
        target = ROOT / "src" / "lenet" / "weights" / REJECTOR
        shutil.copyfile(out / "model.safetensors", target)
        shutil.copyfile(out / "model.json", target.with_suffix(".json"))
        print(f"bundled as {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
