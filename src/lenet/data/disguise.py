"""MNIST digits disguised as people's images: bigger, off-centre, on paper, in colour, as JPEG.

What the tests and benchmarks/preprocess_accuracy.py feed the preprocessing, so that
both measure the same thing; made from MNIST test digits, so the label is known.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lenet.errors import UsageError
from lenet.reading.image import load_image

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
    raise UsageError(style)


# Real-world sets (benchmarks/realworld.py and the tests): MNIST test digits, so the label is known,
# put where people's digits really are. Each returns encoded image bytes, as a user would hand over.

def encode(grey: np.ndarray, kind: str = "PNG", quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8)).save(buf, kind, quality=quality)
    return buf.getvalue()


def ink_of(digit: np.ndarray, height: int) -> np.ndarray:
    """The digit's ink, cropped and scaled to `height` pixels tall, float in [0, 1]."""
    rows, cols = np.flatnonzero(digit.max(1) > 30), np.flatnonzero(digit.max(0) > 30)
    crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), height)
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC), np.float32).clip(0, 255) / 255


def paste(page: np.ndarray, ink: np.ndarray, y: int, x: int) -> None:
    region = page[y:y + ink.shape[0], x:x + ink.shape[1]]
    np.maximum(region, ink[:region.shape[0], :region.shape[1]], out=region)


def low_resolution(digit, rng) -> bytes:
    """Scanned at low resolution: the digit 8-16 px tall, on paper, then enlarged as a viewer would."""
    height = int(rng.integers(8, 17))
    ink = np.zeros((height * 2, height * 2), np.float32)
    small = ink_of(digit, height)
    paste(ink, small, height // 2, (ink.shape[1] - small.shape[1]) // 2)
    grey = 0.9 - 0.75 * ink + rng.normal(0, 0.02, ink.shape)
    factor = int(rng.integers(1, 5))
    big = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8)).resize(
        (ink.shape[1] * factor, ink.shape[0] * factor), Image.Resampling.BILINEAR)
    return encode(np.asarray(big, np.float32) / 255, "JPEG", 80)


def pen(digit, rng, width: int) -> bytes:
    """Written with a finer (width < 0) or broader (width > 0) pen than MNIST's: the ink at 120 px
    eroded or dilated by `width` pixels."""
    from PIL import ImageFilter

    im = Image.fromarray((ink_of(digit, 120) * 255).astype(np.uint8))
    if width:
        im = im.filter(ImageFilter.MaxFilter(2 * width + 1) if width > 0 else ImageFilter.MinFilter(-2 * width + 1))
    ink = np.zeros((200, 200), np.float32)
    inked = np.asarray(im, np.float32) / 255
    paste(ink, inked, 40, (200 - inked.shape[1]) // 2)
    return encode(0.92 - 0.8 * ink + rng.normal(0, 0.01, ink.shape))


def photo(digit, rng, height: int = 60, corner: bool = False) -> bytes:
    """A 2000x1500 phone photo of a page, the light falling off across it (from 1.0 to 0.35 of full),
    the digit `height` pixels tall somewhere on it (in the darker corner with `corner`)."""
    h, w = 1500, 2000
    ink = ink_of(digit, height)
    if corner:
        y, x = h - height - int(rng.integers(20, 200)), w - ink.shape[1] - int(rng.integers(20, 300))
    else:
        y, x = int(rng.integers(100, h - height - 100)), int(rng.integers(100, w - ink.shape[1] - 100))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(-0.3, 0.3)
    along = ((xx * np.cos(angle) + yy * np.sin(angle)) / w).clip(0, 1)
    light = 1.0 - 0.65 * along ** 1.5
    page = np.zeros((h, w), np.float32)
    paste(page, ink, y, x)
    grey = light * (0.9 - 0.75 * page) + rng.normal(0, 0.015, (h, w)).astype(np.float32)
    return encode(grey, "JPEG", 85)


def dark_board(digit, rng) -> bytes:
    """Chalk on a dark board that fills the middle of the frame, a light wall around it."""
    h, w = 900, 1200
    grey = np.full((h, w), 0.8, np.float32) + np.linspace(0, 0.1, w, dtype=np.float32)
    top, left = int(rng.integers(80, 200)), int(rng.integers(80, 250))
    bottom, right = h - int(rng.integers(80, 200)), w - int(rng.integers(80, 250))
    grey[top:bottom, left:right] = rng.uniform(0.12, 0.25)
    height = int(rng.integers(100, 220))
    ink = ink_of(digit, height)
    y = int(rng.integers(top + 20, bottom - height - 20))
    x = int(rng.integers(left + 20, right - ink.shape[1] - 20))
    chalk = np.zeros((h, w), np.float32)
    paste(chalk, ink, y, x)
    grey = np.maximum(grey, 0.85 * chalk) + rng.normal(0, 0.02, (h, w)).astype(np.float32)
    return encode(grey, "JPEG", 85)


def form(digit, rng, kind: str) -> bytes:
    """The digit written in a form's box, or on an underline."""
    height = int(rng.integers(70, 110))
    ink = ink_of(digit, height)
    side = int(height * rng.uniform(1.5, 2.0))
    page = np.zeros((side, side), np.float32)
    y, x = (side - height) // 2 + int(rng.integers(-5, 6)), (side - ink.shape[1]) // 2 + int(rng.integers(-8, 9))
    paste(page, ink, y, x)
    t = int(rng.integers(2, 5))
    if kind == "box":
        m = int(rng.integers(6, max(7, (side - height) // 2 - 2)))
        page[m:m + t, m:side - m] = page[side - m - t:side - m, m:side - m] = 1
        page[m:side - m, m:m + t] = page[m:side - m, side - m - t:side - m] = 1
    else:
        line = min(side - 2, y + height + int(rng.integers(3, 12)))
        reach = int(rng.integers(10, 40))
        page[line:line + t, max(0, x - reach):x + ink.shape[1] + reach] = 1
    return encode(0.92 - 0.8 * page + rng.normal(0, 0.01, page.shape))


def number(digits: list, rng) -> bytes:
    """A row of digits written left to right, with people's spacing: mostly apart, some touching."""
    height = int(rng.integers(50, 90))
    inks = [ink_of(d, int(height * rng.uniform(0.9, 1.05))) for d in digits]
    gaps = [int(height * rng.uniform(-0.05, 0.35)) if rng.random() < 0.85 else int(-0.08 * height)
            for _ in inks]
    width = sum(i.shape[1] for i in inks) + sum(max(g, 0) for g in gaps) + 2 * height
    page = np.zeros((height * 2, width), np.float32)
    x = height
    for ink, gap in zip(inks, gaps, strict=True):
        paste(page, ink, height // 2 + int(rng.integers(-height // 10, height // 10 + 1)), x)
        x += ink.shape[1] + gap
    page = page[:, :x + height]
    return encode(0.92 - 0.8 * page + rng.normal(0, 0.01, page.shape))
