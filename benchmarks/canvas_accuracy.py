"""Accuracy and unsure flags of the bundled model on page drawings made from MNIST test digits the
way reader_speed.py's `drawing()` makes them, and a few variations: by default as the page posts
them (its pad: an opaque RGBA PNG, grey strokes on white), with `--pad transparent` as a canvas
exported without its white fill (the ink as alpha on transparent pixels).

    python benchmarks/canvas_accuracy.py [--pad white|transparent] [--n 2000] [--each 400] [--data-dir DIR]

Run it on two checkouts to compare their readers (PYTHONPATH=OTHER/src python
benchmarks/canvas_accuracy.py): the same seed gives the same files. Each row: how many drawings,
the share read right, the share flagged unsure, and the share right among those not flagged. The
variations: thin and thick strokes (the digit eroded or dilated before it is drawn), small drawings
and off-centre ones (near an edge or a corner), and 4s and 5s drawn as two strokes apart (a 4's
stem beside its open angle, a 5's flag above its body) with the page's round pen.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))

import reader_speed

from lenet.data import mnist as datasets
from lenet.errors import LenetError
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading import load_image, read_digit
from lenet.reading.predict import judge_readings

PAD = 280  # the web page's pad


def pad_png(ink: np.ndarray, white: bool) -> bytes:
    """The pad's PNG of `ink` (0..255, PAD x PAD): grey strokes (255 - ink) on opaque white as the
    page posts it (`white`), else the ink as alpha on transparent pixels."""
    if white:
        grey = 255 - ink
        return reader_speed.png(np.dstack([grey, grey, grey, np.full_like(grey, 255)]), "RGBA")
    rgba = np.zeros((PAD, PAD, 4), np.uint8)
    rgba[..., 3] = ink
    return reader_speed.png(rgba, "RGBA")


def placed(digit: np.ndarray, side: int, y: int, x: int, white: bool) -> bytes:
    """`digit` (grey uint8, ink light) enlarged to `side` and drawn at (y, x) on the pad."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    ink = np.zeros((PAD, PAD), np.uint8)
    ink[y:y + side, x:x + side] = big
    return pad_png(ink, white)


def stroked(digit: np.ndarray, rng, grow: bool, white: bool) -> bytes:
    """`drawing()` with strokes thickened (`grow`) or thinned, at the drawing's own size."""
    side = int(rng.integers(170, 230))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    radius = int(rng.integers(3, 7)) if grow else int(rng.integers(4, 8))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    big = cv2.dilate(big, kernel) if grow else cv2.erode(big, kernel)
    if big.max() < 128:  # thinned away: keep the plain drawing
        big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    ink = np.zeros((PAD, PAD), np.uint8)
    y, x = (int(v) for v in rng.integers(0, PAD - side, 2))
    ink[y:y + side, x:x + side] = big
    return pad_png(ink, white)


def small(digit: np.ndarray, rng, white: bool) -> bytes:
    side = int(rng.integers(50, 110))
    y, x = (int(v) for v in rng.integers(0, PAD - side, 2))
    return placed(digit, side, y, x, white)


def off_centre(digit: np.ndarray, rng, white: bool) -> bytes:
    side = int(rng.integers(110, 160))
    # Against an edge or in a corner: MNIST's own margin keeps the ink a few pixels off it.
    ends = [0, PAD - side]
    y = int(rng.choice(ends)) if rng.random() < 0.75 else int(rng.integers(0, PAD - side))
    x = int(rng.choice(ends)) if rng.random() < 0.75 else int(rng.integers(0, PAD - side))
    return placed(digit, side, y, x, white)


def apart(label: int, rng, white: bool) -> bytes:
    """A 4 or a 5 drawn on the pad with a round pen as two strokes that do not touch."""
    im = Image.new("RGBA", (PAD, PAD), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    s = float(rng.uniform(0.6, 1.0))  # the digit's size on the pad
    cx, cy = (float(v) for v in rng.uniform(PAD * (0.5 - (1 - s) / 2), PAD * (0.5 + (1 - s) / 2), 2))
    gap = float(rng.uniform(10, 30)) * s
    width = int(rng.integers(12, 26))

    def at(u, v):  # a point in the digit's frame (-1..1) on the pad, jittered like a hand
        return (cx + (u * 100 + rng.normal(0, 3)) * s, cy + (v * 110 + rng.normal(0, 3)) * s)

    if label == 4:
        strokes = [[at(-0.2, -1), at(-0.75, 0.15), at(0.1, 0.15)],
                   [(at(0.3, -0.9)[0] + gap * 0.3, at(0.3, -0.9)[1]), at(0.3, 1)]]
    else:
        flag = at(-0.5, -1)  # the flag starts a gap to the right of the stroke's top
        strokes = [[at(-0.55, -0.95), at(-0.6, -0.15), at(0.3, -0.1), at(0.55, 0.4), at(0.35, 0.9),
                    at(-0.55, 0.85)],
                   [(flag[0] + gap + width, flag[1]), at(0.65, -1)]]
    for stroke in strokes:
        draw.line(stroke, fill=(20, 20, 20, 255), width=width, joint="curve")
        for x, y in (stroke[0], stroke[-1]):
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=(20, 20, 20, 255))
    if white:  # the page's pen: the strokes' coverage as grey on white
        return pad_png(np.asarray(im)[..., 3].copy(), True)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def scored(model, files: list[bytes], labels: np.ndarray) -> tuple[float, float, float, int]:
    """(share right, share unsure, share right of those not unsure, errors raised) over `files`."""
    readings, kept = [], []
    for i, data in enumerate(files):
        try:
            readings.append(read_digit(load_image(data)))
            kept.append(i)
        except LenetError:
            pass
    predictions = judge_readings(model, readings)
    right = np.zeros(len(files), bool)
    unsure = np.ones(len(files), bool)  # a file that raised is not an answer to trust
    for i, p in zip(kept, predictions, strict=True):
        right[i], unsure[i] = p.digit == labels[i], p.unsure
    sure = ~unsure
    return (float(right.mean()), float(unsure.mean()),
            float(right[sure].mean()) if sure.any() else float("nan"), len(files) - len(kept))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="plain drawings (default 2000)")
    ap.add_argument("--each", type=int, default=400, help="drawings of each variation (default 400)")
    ap.add_argument("--pad", choices=("white", "transparent"), default="white",
                    help="white: the page's pad as it posts it (default); transparent: ink as alpha")
    ap.add_argument("--data-dir", help="MNIST folder (default: as for lenet train)")
    args = ap.parse_args()
    white = args.pad == "white"
    drawing = reader_speed.drawing if white else reader_speed.transparent_drawing
    ds = datasets.load(args.data_dir, download=False)
    model = NumpyModel.load(bundled_model_path())
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ds.test_labels), args.n + 4 * args.each, replace=False)
    digits, labels = ds.test_images[pick], ds.test_labels[pick]
    sets = {f"drawing ({drawing.__name__})": (lambda d: drawing(d, rng), slice(0, args.n)),
            "thick strokes": (lambda d: stroked(d, rng, True, white), slice(args.n, args.n + args.each)),
            "thin strokes": (lambda d: stroked(d, rng, False, white),
                             slice(args.n + args.each, args.n + 2 * args.each)),
            "small (50-110 px)": (lambda d: small(d, rng, white),
                                  slice(args.n + 2 * args.each, args.n + 3 * args.each)),
            "off-centre (edges, corners)": (lambda d: off_centre(d, rng, white),
                                            slice(args.n + 3 * args.each, args.n + 4 * args.each))}
    import lenet
    print(f"canvas drawings ({args.pad} pad), bundled model, reader {Path(lenet.__file__).parent}")
    print(f"{'set':34s} {'n':>5s} {'right':>7s} {'unsure':>7s} {'right|sure':>10s} {'errors':>6s}")
    for name, (make, part) in sets.items():
        files = [make(d) for d in digits[part]]
        right, unsure, sure_right, errors = scored(model, files, labels[part])
        print(f"{name:34s} {len(files):5d} {right:7.4f} {unsure:7.4f} {sure_right:10.4f} {errors:6d}")
    apart_labels = np.array([4, 5] * (args.each // 2))
    files = [apart(int(label), rng, white) for label in apart_labels]
    right, unsure, sure_right, errors = scored(model, files, apart_labels)
    print(f"{'4s and 5s, two strokes apart':34s} {len(files):5d} {right:7.4f} {unsure:7.4f} {sure_right:10.4f} "
          f"{errors:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
