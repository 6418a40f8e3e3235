"""Accuracy on digits that are not MNIST-like, the previous round's reader against this one's.

    python benchmarks/realworld.py [--n 200] [--data-dir DIR] [--model PATH] [--sets a,b,...]

Builds its own sets (lenet/disguise.py, lenet/fonts.py), each image encoded as a user would hand
it over (PNG or JPEG bytes) and decoded by `load_image`:

  printed, printed-heavy  digits in the machine's fonts that matplotlib does not ship (so the
                          training fonts are not among them); heavy: bold faces, thickened
  low-resolution          MNIST test digits scanned 8-16 px tall, enlarged 1-4x, JPEG
  pen-fine, pen-broad,    MNIST test digits at 120 px, eroded 3 px / dilated 4 px (a marker,
  pen-blob                strokes a sixth of the height) / dilated 7 px (a quarter: loops fill)
  photo-60, photo-150     2000x1500 photos, light falling to 35% across the page, digit 60 px
                          anywhere / 150 px in the darker corner
  dark-board              chalk on a dark board filling the frame's middle, light wall around
  box, underline          the digit in a form box / on an underline
  numbers                 rows of 3-6 MNIST test digits, people's spacing, some touching:
                          whole strings right
  grid                    on squared paper, lines every 12-28 px
  ruled, ruled-under      on ruled paper, lines through the digit / one under it
  dotted                  between guide lines: a baseline, dashed or dotted lines above
  notebook-page           a 1200x1600 photo of a ruled notebook page, margin line, one 35-70 px digit
  sticky-note             a yellow sticky note on a wood-grained desk, turned, its shadow beside it
  shadow                  grey paper with a shadow's edge across it, JPEG
  tight                   the ink cropped to its box: it touches every edge
  *-sklearn               scikit-learn's UCI digits by other writers (needs scikit-learn) on the
                          same paper; margin: paper round a crop; stretched: the crop made square

Columns: `previous` is the round-1 preprocessing with the round-1 bundled model
(benchmarks/round1/), `new prep` this preprocessing with the round-1 model, `now` this
preprocessing with the bundled (or --model) model. `caught` is the share of `now`'s errors
flagged unsure (a doubt from the preprocessing, or a probability under the model's calibrated
threshold); `false alarms` the share of its right answers flagged. The last line does the same
for the MNIST test set itself, as the network sees it.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from lenet.data import disguise
from lenet.data import mnist as datasets
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading.digit import read_digit
from lenet.reading.image import load_image
from lenet.reading.predict import judged, predict_images, read_digits
from lenet.training.fonts import MATPLOTLIB_FONTS, draw

HERE = Path(__file__).parent
SETS = ("printed", "printed-heavy", "low-resolution", "pen-fine", "pen-broad", "pen-blob", "photo-60", "photo-150",
        "dark-board", "box", "underline", "numbers",
        "grid", "grid-sklearn", "ruled", "ruled-under", "dotted", "notebook-page", "sticky-note", "shadow",
        "tight", "tight-sklearn", "margin-sklearn", "stretched-sklearn")
PAPER = {"grid": disguise.grid_paper, "ruled": lambda d, r: disguise.ruled_paper(d, r, through=True),
         "ruled-under": lambda d, r: disguise.ruled_paper(d, r, through=False), "dotted": disguise.dotted_lines,
         "notebook-page": disguise.notebook_page, "sticky-note": disguise.sticky_note,
         "shadow": disguise.shadow_across, "tight": disguise.tight_crop,
         "margin": lambda d, r: disguise.tight_crop(d, r, margin=float(r.uniform(0.1, 0.4))),
         "stretched": lambda d, r: disguise.tight_crop(d, r, stretch=True, margin=float(r.uniform(0.05, 0.15)))}


def round1():
    """The previous round's preprocessing module and bundled model, kept in benchmarks/round1."""
    spec = importlib.util.spec_from_file_location("round1_preprocess", HERE / "round1" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, NumpyModel.load(HERE / "round1" / "lenet-best.safetensors")


def held_out_fonts() -> list[Path]:
    """TrueType fonts on this machine that are not among the training fonts."""
    found = []
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if folder.is_dir():
            found += [p for p in folder.rglob("*.ttf") if p.name not in MATPLOTLIB_FONTS]
    # Faces without plain digits (symbols, maths) are left out.
    return sorted(p for p in found if not any(s in p.name for s in ("Math", "Symbol", "Emoji")))


def other_writers(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """`n` of scikit-learn's UCI digits by other writers (never trained on), as 64x64 MNIST-like
    digits, and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("the *-sklearn sets need scikit-learn (its UCI digits ship with it)") from None
    uci = load_digits()
    pick = rng.choice(len(uci.target), n, replace=False)
    return np.stack([disguise.other_writer(uci.images[i]) for i in pick]), uci.target[pick]


def build(name: str, n: int, ds, rng) -> list[tuple[bytes, str]]:
    """(image bytes, the right answer as text) for one set."""
    pick = rng.choice(len(ds.test_labels), n, replace=False)
    digits, labels = ds.test_images[pick], ds.test_labels[pick]
    if name.endswith("-sklearn"):
        digits, labels = other_writers(n, rng)
    paper = PAPER.get(name.removesuffix("-sklearn"))
    if paper is not None:
        return [(paper(d, rng), str(y)) for d, y in zip(digits, labels, strict=True)]
    if name.startswith("printed"):
        fonts = held_out_fonts()
        if name == "printed-heavy":
            fonts = [f for f in fonts if "Bold" in f.name]
        out = []
        for i in range(n):
            font, digit, height = fonts[i % len(fonts)], int(rng.integers(0, 10)), int(rng.integers(40, 120))
            weight = int(height / 30) if name == "printed-heavy" else 0
            out.append((disguise.encode(draw(digit, font, rng, height, weight) / 255), str(digit)))
        return out
    if name == "numbers":
        out = []
        for _ in range(n):
            k = int(rng.integers(3, 7))
            pick = rng.choice(len(ds.test_labels), k, replace=False)
            out.append((disguise.number(list(ds.test_images[pick]), rng), "".join(map(str, ds.test_labels[pick]))))
        return out
    make = {"low-resolution": disguise.low_resolution,
            "pen-fine": lambda d, r: disguise.pen(d, r, -3), "pen-broad": lambda d, r: disguise.pen(d, r, 4),
            "pen-blob": lambda d, r: disguise.pen(d, r, 7),
            "photo-60": disguise.photo, "photo-150": lambda d, r: disguise.photo(d, r, 150, corner=True),
            "dark-board": disguise.dark_board, "box": lambda d, r: disguise.form(d, r, "box"),
            "underline": lambda d, r: disguise.form(d, r, "underline")}[name]
    return [(make(d, rng), str(y)) for d, y in zip(digits, labels, strict=False)]


def read_now(model, data: bytes, several: bool) -> tuple[str, bool]:
    """(answer, unsure) with this round's reader."""
    try:
        pixels = load_image(data)
        if several:
            result = read_digits(model, pixels)
            return result["number"], result["unsure"]
        reading = read_digit(pixels)
    except ValueError:
        return "", True
    prediction = judged(model, predict_images(model, reading.image[None])[0], reading)
    return str(prediction["digit"]), prediction["unsure"]


def read_with(prep, model, data: bytes) -> str:
    """The answer of a one-digit reader: `prep` makes the 28x28 from bytes."""
    try:
        return str(int(model.probabilities(prep(data)[None])[0].argmax()))
    except ValueError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images per set (default: 200; numbers: half)")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    ap.add_argument("--model", help="the model to measure (default: the bundled one)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated sets (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = datasets.load(args.data_dir)
    model = NumpyModel.load(args.model or bundled_model_path())
    old_prep, old_model = round1()
    fonts = held_out_fonts()
    print(f"model: {args.model or bundled_model_path()}; held-out fonts: {len(fonts)} "
          f"({', '.join(sorted({f.stem.split('-')[0] for f in fonts}))})")
    print(f"{'set':<15} {'n':>4} {'previous':>9} {'new prep':>9} {'now':>7} {'caught':>7} "
          f"{'false alarms':>12}  seconds")
    for name in args.sets.split(","):
        if name.startswith("printed") and not fonts:
            print(f"{name:<15} skipped: no fonts on this machine besides matplotlib's")
            continue
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, SETS.index(name)])
        items = build(name, args.n // 2 if name == "numbers" else args.n, ds, rng)
        several = name == "numbers"
        now = [read_now(model, data, several) for data, _ in items]
        truth = [t for _, t in items]
        right = np.array([a == t for (a, _), t in zip(now, truth, strict=False)])
        unsure = np.array([u for _, u in now])
        if several:
            previous = newprep = "-"  # the previous round read one digit per image
        else:
            def old_reading(b):
                return old_prep.preprocess(old_prep.load_image(b))

            def new_reading(b):
                return read_digit(load_image(b)).image

            previous = f"{np.mean([read_with(old_reading, old_model, d) == t for d, t in items]):.3f}"
            newprep = f"{np.mean([read_with(new_reading, old_model, d) == t for d, t in items]):.3f}"
        caught = f"{unsure[~right].mean():.2f}" if (~right).any() else "-"
        print(f"{name:<15} {len(items):>4} {previous:>9} {newprep:>9} {right.mean():>7.3f} {caught:>7} "
              f"{unsure[right].mean():>12.3f}  {time.perf_counter() - t0:.0f}")
    probs = model.probabilities(ds.test_images)
    right = probs.argmax(1) == ds.test_labels
    flagged = probs.max(1) < model.config.unsure_below
    print(f"{'MNIST test':<15} {len(right):>4} {'':>9} {'':>9} {right.mean():>7.4f} "
          f"{flagged[~right].mean():>7.2f} {flagged[right].mean():>12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
