"""Choose when a number is unsure: its digits' evidence on numbers of held-out training digits.

    python scripts/number_doubts.py [--n 600] [--seed 0] [--alarms 0.08] [--data-dir DIR]

Builds `--n` rows of 3-6 digits (data/disguise.py's `number`, the benchmark's spacing) from the
last 5,000 MNIST training digits, which neither the bundled model nor the rejector trains on (never
from the test digits, nor from scikit-learn's, which stay an honest check), reads each
(`predict.weigh_row`), and tries every rule over a grid: a digit is doubted when its probability is
under B, its p(not one digit) over J, another way of cutting within M reads otherwise, (R) the
best path weighing the rejector by predict.REWEIGH_JUNK reads otherwise, or it is wider than W
times the row's height; the number when any digit is (or the preprocessing or the crossings
doubt one). Prints the rules that catch most
wrong numbers with at most `--alarms` of the right ones flagged, and the rule predict.py uses now.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

HOLDOUT = 5000  # the last training images, as scripts/train_reject.py holds out
BELOW = (0.5, 0.7, 0.8, 0.9, 0.944657, 0.97, 0.99)
JUNK = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MARGINS = (-1.0, 0.0, 0.25, 0.5, 1.0)  # up to search.MARGIN_SEEN
WIDTHS = (1.2, 1.3, 1.4, 1.6, float("inf"))


def evidence(model, n: int, seed: int, images: np.ndarray, labels: np.ndarray):
    """Per number: whether it was read right, and per digit (probability, p_junk, margin, other doubt)."""
    from lenet.data import disguise
    from lenet.errors import LenetError
    from lenet.reading.image import load_image
    from lenet.reading.predict import MAX_CROSSINGS, crossings, weigh_row

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pick = rng.choice(len(labels), int(rng.integers(3, 7)), replace=False)
        truth = "".join(map(str, labels[pick]))
        data = disguise.number(list(images[pick]), rng)
        try:
            digits = weigh_row(model, load_image(data))
        except LenetError:
            out.append((False, np.ones((1, 6))))
            continue
        text = "".join(d.sign + str(d.prediction.digit) for d in digits)
        height = max(d.piece.reading.box.height for d in digits)
        table = np.array([(d.prediction.probability, d.p_junk, d.margin if d.rival is not None else np.inf,
                           bool(d.piece.reading.doubts)
                           or int(crossings(d.piece.reading.image[None])[0]) > MAX_CROSSINGS,
                           d.reweighed is not None, d.piece.reading.box.width / height)
                          for d in digits], np.float64)
        out.append((text == truth, table))
    return out


def flags(found, below: float, junk: float, margin: float, reweighed: bool, wide: float) -> np.ndarray:
    return np.array([bool(((t[:, 0] < below) | (t[:, 1] > junk) | (t[:, 2] <= margin) | (t[:, 3] > 0)
                           | ((t[:, 4] > 0) & reweighed) | (t[:, 5] > wide)).any()) for _, t in found])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="numbers to read (default: 600)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the rows (default: 0)")
    ap.add_argument("--alarms", type=float, default=0.08, help="most right numbers flagged (default: 0.08)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()

    from lenet.data import mnist
    from lenet.nn.numpy_model import NumpyModel
    from lenet.pretrained import bundled_model_path
    from lenet.reading import predict

    ds = mnist.load(args.data_dir)
    model = NumpyModel.load(bundled_model_path())
    found = evidence(model, args.n, args.seed, ds.train_images[-HOLDOUT:], ds.train_labels[-HOLDOUT:])
    right = np.array([r for r, _ in found])
    print(f"{len(right)} numbers of held-out training digits: {right.mean():.3f} read right")
    rows = []
    for below, junk, margin, reweighed, wide in itertools.product(BELOW, JUNK, MARGINS, (False, True), WIDTHS):
        unsure = flags(found, min(below, model.config.unsure_below), junk, margin, reweighed, wide)
        rows.append((unsure[~right].mean() if (~right).any() else 1.0, unsure[right].mean(), below, junk, margin,
                     reweighed, wide))
    fitting = sorted((r for r in rows if r[1] <= args.alarms), key=lambda r: (-r[0], r[1]))
    print(f"rules with at most {args.alarms:.0%} false alarms, most caught first:")
    for caught, alarms, below, junk, margin, reweighed, wide in fitting[:10]:
        print(f"  below {below:<9} junk above {junk:<5} cut margin {margin:<5} reweighed {reweighed!s:<5} "
              f"wide {wide:<4} caught {caught:.3f}  false alarms {alarms:.3f}")
    now = flags(found, model.config.unsure_below, predict.IN_NUMBER_JUNK_ABOVE, predict.CUT_MARGIN,
                bool(predict.REWEIGH_JUNK), float("inf"))
    print(f"now (below {model.config.unsure_below}, junk above {predict.IN_NUMBER_JUNK_ABOVE}, cut margin "
          f"{predict.CUT_MARGIN}, reweighed {predict.REWEIGH_JUNK}, no width doubt): caught "
          f"{now[~right].mean():.3f}, false alarms {now[right].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
