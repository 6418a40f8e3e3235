"""The reader on paper as people have it: tight crops, margins, squared and ruled paper, the disguises.

Prints a digest of readings of synthetic canvas drawings (a change there must be made in lenet.js too, which
ports the canvas path; tests/test_web.py compares the two)
and accuracy per set with the bundled model. Usage: python benchmarks/paper.py [N] [set,set,...]
"""
import contextlib
import hashlib
import sys

import numpy as np
from PIL import Image, ImageDraw

import lenet
from lenet.data import disguise
from lenet.data import mnist as datasets
from lenet.reading.digit import read_digit
from lenet.reading.image import load_image


def tight(d, rng):
    ink = disguise.ink_of(d, int(rng.integers(40, 120)))
    return disguise.encode(0.9 - 0.8 * ink + rng.normal(0, 0.01, ink.shape))

def margin(d, rng):
    h = int(rng.integers(40, 120))
    ink = disguise.ink_of(d, h)
    page = np.zeros((h * 2, h * 2), np.float32)
    disguise.paste(page, ink, h // 2, (2 * h - ink.shape[1]) // 2)
    return disguise.encode(0.9 - 0.8 * page + rng.normal(0, 0.01, page.shape))

def graph(d, rng, period=16, ruled=False):
    h = int(rng.integers(50, 110))
    ink = disguise.ink_of(d, h)
    side = int(h * rng.uniform(1.4, 2.2))
    page = np.zeros((side, side), np.float32)
    disguise.paste(page, ink, (side - h) // 2 + int(rng.integers(-5, 6)), (side - ink.shape[1]) // 2)
    grey = 0.92 - 0.8 * page
    off = int(rng.integers(0, period))
    t = int(rng.integers(1, 3))
    level = rng.uniform(0.55, 0.75)
    lines = np.zeros_like(page, bool)
    for p in range(off, side, period):
        lines[p:p + t] = True
        if not ruled:
            lines[:, p:p + t] = True
    grey = np.where(lines, np.minimum(grey, level), grey)
    return disguise.encode(grey + rng.normal(0, 0.01, page.shape))

def style(name):
    return lambda d, rng: np.asarray(disguise.disguise(d, name, rng))

SETS = {"tight": tight, "margin": margin, "graph16": graph, "graph24": lambda d, r: graph(d, r, 24),
        "ruled": lambda d, r: graph(d, r, int(r.integers(18, 30)), True),
        **{s: style(s) for s in disguise.STYLES},
        "dark-board": disguise.dark_board, "box": lambda d, r: disguise.form(d, r, "box"),
        "underline": lambda d, r: disguise.form(d, r, "underline"), "photo-60": disguise.photo}

def canvas_digest(n=60):
    rng = np.random.default_rng(7)
    h = hashlib.sha256()
    for i in range(n):
        im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
        dr = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            pts = [tuple(int(v) for v in rng.integers(30, 250, 2)) for _ in range(int(rng.integers(2, 6)))]
            dr.line(pts, fill=(0, 0, 0, 255), width=int(rng.integers(16, 25)), joint="curve")
        if i % 3 == 1:  # white canvas variant
            bg = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
            bg.alpha_composite(im)
            im = bg
        try:
            r = read_digit(np.asarray(im))
            h.update(r.image.tobytes())
            h.update(repr((r.box, r.doubts)).encode())
        except ValueError as e:
            h.update(str(e).encode())
    return h.hexdigest()[:16]

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(SETS)
    print("canvas digest", canvas_digest(), flush=True)
    ds = datasets.load(None, download=False)
    model = lenet.load().model
    for k, name in enumerate(names):
        rng = np.random.default_rng([1, k])
        pick = rng.choice(len(ds.test_labels), n, replace=False)
        right = 0
        for d, y in zip(ds.test_images[pick], ds.test_labels[pick], strict=False):
            img = SETS[name](d, rng)
            pix = load_image(img) if isinstance(img, bytes) else img
            with contextlib.suppress(ValueError):
                right += int(model.probabilities(read_digit(pix).image[None])[0].argmax() == y)
        print(f"{name:<14} {n:>4} {right / n:.3f}", flush=True)
