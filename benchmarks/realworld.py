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
  numbers-sklearn         the same rows from scikit-learn's 1,797 digits by other writers (8x8,
                          upscaled): never trained on (skipped when scikit-learn is not installed)
  non-digits              letters in the held-out fonts (digit look-alikes left out), symbols, and
                          scribbles, spirals, polygons, waves drawn by a generator training never
                          used: the share flagged unsure is `caught` (`previous`: without the rejector)
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
preprocessing with the bundled (or --model) model. For numbers, `previous` is the number reader
without the rejector (ways chosen by the digits' probabilities alone, no junk or cut doubts) and
`new prep` is blank; a coverage line follows each: the accuracy of the surest 100/90/80/70% of
answers (sure before unsure, then by their least digit probability). `caught` is the share of `now`'s errors
flagged unsure (a doubt from the preprocessing, or a probability under the model's calibrated
threshold); `false alarms` the share of its right answers flagged. The last line does the same
for the MNIST test set itself, as the network sees it.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from contextlib import contextmanager
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
        "dark-board", "box", "underline", "numbers", "numbers-sklearn", "non-digits",
        "grid", "grid-sklearn", "ruled", "ruled-under", "dotted", "notebook-page", "sticky-note", "shadow",
        "tight", "tight-sklearn", "margin-sklearn", "stretched-sklearn")
NUMBERS = ("numbers", "numbers-sklearn")
SYMBOLS = "&@%#?*+=<>"  # non-digits besides letters ('$' and '!' look like an S and a 1)
COVERAGE = (1.0, 0.9, 0.8, 0.7)
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


def sklearn_digits() -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's 8x8 digits by other writers, upscaled to 32x32 uint8 (ink white on black, as
    MNIST's), with their labels; None when scikit-learn is not installed. Measuring only."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    from PIL import Image

    found = load_digits()
    images = [np.asarray(Image.fromarray((d * 255 / 16).astype(np.float32), "F").resize((32, 32),
                         Image.Resampling.BICUBIC)).clip(0, 255).astype(np.uint8) for d in found.images]
    return np.stack(images), found.target.astype(np.uint8)


def drawn_non_digit(rng, side: int = 120) -> np.ndarray:
    """A spiral, a polygon, a wave, a zigzag of loops or a scrawl: another generator than training's."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (side, side), 235)
    pen = ImageDraw.Draw(im)
    width = int(rng.integers(3, 10))
    c, kind = side / 2, int(rng.integers(0, 5))
    t = np.linspace(0, 1, 80)
    if kind == 0:  # a spiral of two to three turns
        a = t * 2 * np.pi * rng.uniform(2, 3)
        pts = np.stack([c + 40 * t * np.cos(a), c + 40 * t * np.sin(a)], 1)
    elif kind == 1:  # a pentagon to an octagon, closed
        n = int(rng.integers(5, 9))
        a = np.linspace(0, 2 * np.pi, n + 1) + rng.uniform(0, 6.3)
        pts = np.stack([c + 40 * np.cos(a), c + 40 * np.sin(a)], 1)
    elif kind == 2:  # a sine wave
        pts = np.stack([15 + 90 * t, c + 20 * np.sin(t * 2 * np.pi * rng.uniform(1.5, 3))], 1)
    elif kind == 3:  # a row of loops, like a telephone cord
        a = t * 2 * np.pi * int(rng.integers(3, 5))
        pts = np.stack([15 + 90 * t + 12 * np.cos(a), c + 25 * np.sin(a)], 1)
    else:  # a scrawl: a smoothed random walk
        steps = rng.normal(0, 1, (80, 2)).cumsum(0)
        steps = np.convolve(steps[:, 0], np.ones(9) / 9, "same"), np.convolve(steps[:, 1], np.ones(9) / 9, "same")
        pts = np.stack(steps, 1)
        pts = c + (pts - pts.mean(0)) * (40 / max(1e-6, np.abs(pts - pts.mean(0)).max()))
    pen.line([tuple(p) for p in pts], fill=30, width=width, joint="curve")
    return np.asarray(im)


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
    """(image bytes, the right answer as text; "" for a non-digit) for one set."""
    if name == "non-digits":
        from lenet.training.junk import LETTERS
        fonts = held_out_fonts()
        out = []
        for i in range(n):
            if i % 3 == 2 or not fonts:
                out.append((disguise.encode(drawn_non_digit(rng) / 255), ""))
                continue
            text = str(rng.choice(list(LETTERS if i % 3 == 0 else SYMBOLS)))
            out.append((disguise.encode(draw(text, fonts[int(rng.integers(len(fonts)))], rng,  # type: ignore[arg-type]
                                             int(rng.integers(40, 120))) / 255), ""))
        return out
    if name == "numbers-sklearn":
        found = sklearn_digits()
        assert found is not None  # main() skips the set without scikit-learn
        images, labels = found
        out = []
        for _ in range(n):
            pick = rng.choice(len(labels), int(rng.integers(3, 7)), replace=False)
            out.append((disguise.number(list(images[pick]), rng), "".join(map(str, labels[pick]))))
        return out
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
            return result.number, result.unsure
        reading = read_digit(pixels)
    except ValueError:
        return "", True
    prediction = judged(model, predict_images(model, reading.image[None])[0], reading)
    return str(prediction.digit), prediction.unsure


@contextmanager
def without_rejector():
    """The number reader as it was before the rejector: ways chosen by the digits' probabilities
    alone (no costs for a piece's shape or for one more digit), pieces at least 0.2 of the row's
    height wide, no broken digits joined or bridged, no "not a digit" (rejector or crossings) or
    doubtful-cut doubts."""
    from lenet.reading import number, predict, search

    changes = [(search, "JUNK_WEIGHT", 0.0), (predict, "JUNK_ABOVE", 1.0), (predict, "IN_NUMBER_JUNK_ABOVE", 1.0),
               (predict, "CUT_MARGIN", -1.0), (search, "NARROW_COST", 0.0), (search, "BROAD_COST", 0.0),
               (search, "SHORT_COST", 0.0), (search, "SPLIT_COST", 0.0), (search, "BRIDGE_COST", 0.0),
               (predict, "MAX_CROSSINGS", 28), (predict, "REWEIGH_JUNK", ()),
               (number, "NARROWEST", 0.2), (number, "JOIN_GAP", -float("inf"))]
    saved = [(module, name, getattr(module, name)) for module, name, _ in changes]
    for module, name, value in changes:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def read_number_now(model, data: bytes) -> tuple[str, bool, float]:
    """(number, unsure, its least digit probability) with the number reader."""
    try:
        result = read_digits(model, load_image(data))
    except ValueError:
        return "", True, 0.0
    return result.number, result.unsure, min(d.probability for d in result.digits)


def coverage(answers: list[tuple[str, bool, float]], truth: list[str]) -> str:
    """Accuracy of the surest share of answers, for each share in COVERAGE."""
    order = sorted(range(len(answers)), key=lambda i: (answers[i][1], -answers[i][2]))
    right = np.array([answers[i][0] == truth[i] for i in order])
    return "  ".join(f"{int(c * 100)}%: {right[:max(1, round(c * len(right)))].mean():.3f}" for c in COVERAGE)


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
        if name not in SETS:
            raise SystemExit(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        if name.startswith("printed") and not fonts:
            print(f"{name:<15} skipped: no fonts on this machine besides matplotlib's")
            continue
        if name == "numbers-sklearn" and sklearn_digits() is None:
            print(f"{name:<15} skipped: scikit-learn is not installed")
            continue
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, SETS.index(name)])
        items = build(name, args.n // 2 if name in NUMBERS else args.n, ds, rng)
        truth = [t for _, t in items]
        if name in NUMBERS:
            now3 = [read_number_now(model, data) for data, _ in items]
            with without_rejector():
                before = [read_number_now(model, data) for data, _ in items]
            now = [(a, u) for a, u, _ in now3]
            previous, newprep = f"{np.mean([a == t for (a, _, _), t in zip(before, truth, strict=True)]):.3f}", "-"
        else:
            now = [read_now(model, data, False) for data, _ in items]
        if name == "non-digits":
            with without_rejector():
                previous = f"{np.mean([read_now(model, data, False)[1] for data, _ in items]):.3f}"
        right = np.array([a == t for (a, _), t in zip(now, truth, strict=False)])
        unsure = np.array([u for _, u in now])
        if name in NUMBERS or name == "non-digits":
            newprep = "-"
        else:
            def old_reading(b):
                return old_prep.preprocess(old_prep.load_image(b))

            def new_reading(b):
                return read_digit(load_image(b)).image

            previous = f"{np.mean([read_with(old_reading, old_model, d) == t for d, t in items]):.3f}"
            newprep = f"{np.mean([read_with(new_reading, old_model, d) == t for d, t in items]):.3f}"
        caught = f"{unsure[~right].mean():.2f}" if (~right).any() else "-"
        alarms = f"{unsure[right].mean():.3f}" if right.any() else "-"
        print(f"{name:<15} {len(items):>4} {previous:>9} {newprep:>9} {right.mean():>7.3f} {caught:>7} "
              f"{alarms:>12}  {time.perf_counter() - t0:.0f}")
        if name in NUMBERS:
            b_right = np.array([a == t for (a, _, _), t in zip(before, truth, strict=True)])
            b_unsure = np.array([u for _, u, _ in before])
            print(f"{'':<15} coverage now: {coverage(now3, truth)}")
            print(f"{'':<15} coverage previous: {coverage(before, truth)}; previous caught "
                  f"{b_unsure[~b_right].mean() if (~b_right).any() else 0:.2f}, false alarms "
                  f"{b_unsure[b_right].mean() if b_right.any() else 0:.3f}")
    from lenet.reading.predict import JUNK_ABOVE, MAX_CROSSINGS, crossings, junk_of

    probs = model.probabilities(ds.test_images)
    right = probs.argmax(1) == ds.test_labels
    not_digit = (junk_of(ds.test_images) > JUNK_ABOVE) | (crossings(ds.test_images) > MAX_CROSSINGS)
    flagged = (probs.max(1) < model.config.unsure_below) | not_digit
    print(f"{'MNIST test':<15} {len(right):>4} {'':>9} {'':>9} {right.mean():>7.4f} "
          f"{flagged[~right].mean():>7.2f} {flagged[right].mean():>12.3f}")
    print(f"{'':<15} 'does not look like a digit' alone: {not_digit[right].mean():.4f} of the right answers, "
          f"{not_digit[~right].mean():.2f} of the wrong ones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
