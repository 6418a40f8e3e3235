"""MNIST digits disguised as people's images: bigger, off-centre, on paper, in colour, as JPEG.

What the tests and benchmarks/preprocess_accuracy.py feed the preprocessing, so that
both measure the same thing; made from MNIST test digits, so the label is known.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .preprocess import load_image

STYLES = ("dark-on-light", "light-on-dark", "canvas", "jpeg")


def disguise(digit: np.ndarray, style: str, rng) -> np.ndarray:
    """An MNIST digit as a person might hand it over: bigger, off-centre, on paper, in colour."""
    side = int(rng.integers(60, 200))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    h, w = side + int(rng.integers(20, 150)), side + int(rng.integers(20, 150))
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    ink = np.zeros((h, w), np.float32)
    ink[y:y + side, x:x + side] = big / 255
    if style == "dark-on-light":   # pencil on slightly grey, slightly noisy paper
        paper = 0.9 + rng.normal(0, 0.02, (h, w))
        return (np.clip(paper - 0.8 * ink, 0, 1) * 255).astype(np.uint8)
    if style == "light-on-dark":   # chalk on a board, in colour
        grey = np.clip(0.15 + 0.8 * ink, 0, 1)
        return (np.stack([grey, grey * 0.95, grey * 0.9], -1) * 255).astype(np.uint8)
    if style == "canvas":          # an HTML canvas export: black strokes on transparent pixels
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = (ink * 255).astype(np.uint8)
        return rgba
    if style == "jpeg":            # a phone photo: blue ink on white, JPEG-compressed
        rgb = np.stack([1 - 0.8 * ink, 1 - 0.7 * ink, 1 - 0.2 * ink], -1)
        buf = io.BytesIO()
        Image.fromarray((rgb * 255).astype(np.uint8)).save(buf, "JPEG", quality=75)
        return load_image(buf.getvalue())
    raise ValueError(style)
