"""Accuracy of the bundled model on MNIST test digits disguised as people's images:
MNIST-style preprocessing against a plain resize to 28x28.

    python benchmarks/preprocess_accuracy.py [--n 300] [--data-dir DIR]

With --n 10000, all of the test set. The disguises are the tests' (lenet/disguise.py): pencil on grey paper,
chalk on a dark board, an RGBA canvas export, a blue-ink JPEG photo.
"""

from __future__ import annotations

import argparse

import numpy as np

from lenet.data import mnist as datasets
from lenet.data.disguise import disguise
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading.digit import find_digit, plain_resize, preprocess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="test digits per disguise (default: 300)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()
    ds = datasets.load(args.data_dir)
    model = NumpyModel.load(bundled_model_path())
    rng = np.random.default_rng(0)
    idx = rng.choice(len(ds.test_labels), args.n, replace=False)
    digits, labels = ds.test_images[idx], ds.test_labels[idx]

    def accuracy(images):
        return float((model.probabilities(np.stack(images)).argmax(1) == labels).mean())

    print(f"{args.n} MNIST test digits, bundled model; as MNIST itself: {accuracy(list(digits)):.4f}")
    # MNIST's own digits are passed through as they are (reading.digit.mnist_form); this is what the
    # full path would have made of them.
    print(f"MNIST itself through the full path (find_digit): {accuracy([find_digit(d).image for d in digits]):.4f}")
    print(f"{'disguise':<15} {'preprocess':>10} {'plain resize':>12}")
    for style in ("dark-on-light", "light-on-dark", "canvas", "jpeg"):
        images = [disguise(d, style, rng) for d in digits]
        print(f"{style:<15} {accuracy([preprocess(i) for i in images]):>10.4f} "
              f"{accuracy([plain_resize(i) for i in images]):>12.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
