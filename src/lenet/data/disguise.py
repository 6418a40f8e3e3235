"""MNIST digits disguised as people's images: bigger, off-centre, on paper, in colour, as JPEG.

What the tests and benchmarks/preprocess_accuracy.py feed the preprocessing, so that
both measure the same thing; made from MNIST test digits, so the label is known.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

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


# Paper as people have it (benchmarks/realworld.py and tests/test_paper.py): squared and ruled
# paper, guide lines, a notebook page, a sticky note on a desk, a shadow, tight and stretched crops.

def other_writer(image8: np.ndarray) -> np.ndarray:
    """One of scikit-learn's 8x8 UCI digits (0..16) as a 64x64 uint8 digit, ink white on black like
    MNIST: enlarged smoothly, then its grey steepened towards a pen's even ink."""
    big = Image.fromarray((np.asarray(image8, np.float32) / 16 * 255).astype(np.uint8)).resize(
        (48, 48), Image.Resampling.BICUBIC)
    ink = np.clip((np.asarray(big, np.float32) / 255 - 0.3) / 0.4, 0, 1)
    out = np.zeros((64, 64), np.uint8)
    out[8:56, 8:56] = (ink * 255).astype(np.uint8)
    return out


def on_paper(page: np.ndarray, rng, lines: np.ndarray | None = None, colour=(0.35, 0.55, 0.9)) -> np.ndarray:
    """Dark-blue ink `page` on white paper as RGB, with `lines` (0..1 strength) printed in `colour`
    (light blue by default) under it, and a little noise."""
    paper = np.full((*page.shape, 3), 0.93, np.float32)
    if lines is not None:
        tint = 1 - np.asarray(colour, np.float32)
        paper = paper * (1 - lines[..., None] * tint)
    ink = np.asarray((0.85, 0.8, 0.55), np.float32)  # blue-black ink takes away mostly red and green
    rgb = paper * (1 - page[..., None] * ink) + rng.normal(0, 0.012, (*page.shape, 3)).astype(np.float32)
    return np.clip(rgb, 0, 1)


def encode_rgb(rgb: np.ndarray, kind: str = "PNG", quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(buf, kind, quality=quality)
    return buf.getvalue()


def centred(ink: np.ndarray, h: int, w: int, rng, jitter: float = 0.1) -> tuple[np.ndarray, int, int]:
    """A (h, w) page (grown to hold `ink` where it is larger) with `ink` pasted near its middle,
    and where (y, x)."""
    h, w = max(h, ink.shape[0]), max(w, ink.shape[1])
    page = np.zeros((h, w), np.float32)
    dy, dx = int(jitter * (h - ink.shape[0])), int(jitter * (w - ink.shape[1]))
    y = (h - ink.shape[0]) // 2 + int(rng.integers(-dy, dy + 1))
    x = (w - ink.shape[1]) // 2 + int(rng.integers(-dx, dx + 1))
    paste(page, ink, y, x)
    return page, y, x


def grid_paper(digit, rng) -> bytes:
    """The digit on squared (graph) paper, as people write on it: a digit one to four squares
    tall, the lines blue, grey or green, some as dark as a pencil, a heavier line every fifth
    square on some sheets, the sheet a little turned."""
    height = int(rng.integers(70, 150))
    ink = ink_of(digit, height)
    side = max(int(height * rng.uniform(1.4, 2.2)), *ink.shape)
    page, _, _ = centred(ink, side, side, rng)
    cell, t = max(8, int(height / rng.uniform(1.2, 4))), int(rng.integers(1, 3))
    heavy = rng.random() < 0.3
    lines = np.zeros((2 * side, 2 * side), np.float32)  # drawn larger, turned, then cut to the page
    strength = rng.uniform(0.5, 1.0)
    for k, start in enumerate(range(int(rng.integers(0, cell)), 2 * side, cell)):
        width = t + 1 if heavy and k % 5 == 0 else t
        lines[start:start + width] = lines[:, start:start + width] = strength
    lines = tilted(lines, float(rng.uniform(-1, 1)), 0)[side // 2:side // 2 + side, side // 2:side // 2 + side]
    colour = [(0.35, 0.55, 0.9), (0.55, 0.55, 0.55), (0.45, 0.8, 0.55)][int(rng.integers(0, 3))]
    return encode_rgb(on_paper(page, rng, lines, colour), "PNG" if rng.random() < 0.5 else "JPEG")


def ruled_paper(digit, rng, through: bool) -> bytes:
    """The digit on ruled paper: lines closer than the digit is tall, so they run through it
    (`through`), or a line under it and the next ones a little over a digit's height apart."""
    height = int(rng.integers(60, 130))
    ink = ink_of(digit, height)
    h, w = int(height * rng.uniform(1.6, 2.4)), int(height * rng.uniform(1.6, 3.0))
    page, y, _ = centred(ink, h, w, rng)
    spacing = int(height * (rng.uniform(0.3, 0.6) if through else rng.uniform(1.15, 1.5)))
    base = y + height + int(rng.integers(-2, 4))  # the line the digit sits on
    t = int(rng.integers(1, 4))
    lines = np.zeros_like(page)
    for start in range(base % spacing, h, spacing):
        lines[start:start + t] = rng.uniform(0.5, 0.9)
    return encode_rgb(on_paper(page, rng, lines), "PNG" if rng.random() < 0.5 else "JPEG")


def dotted_lines(digit, rng) -> bytes:
    """The digit between handwriting guide lines: a solid baseline, dashed or dotted lines at the
    digit's top and middle."""
    height = int(rng.integers(60, 130))
    ink = ink_of(digit, height)
    h, w = int(height * rng.uniform(1.6, 2.2)), int(height * rng.uniform(1.6, 3.0))
    page, y, _ = centred(ink, h, w, rng)
    lines = np.zeros_like(page)
    t = int(rng.integers(1, 3))
    lines[y + height:y + height + t] = 0.8
    period = int(rng.integers(4, 16))
    dash = max(1, int(period * rng.uniform(0.2, 0.6)))
    on = (np.arange(w) % period) < dash
    for row in (y - int(rng.integers(0, 4)), y + height // 2):
        lines[max(0, row):max(0, row) + t] = np.where(on, 0.8, 0)[None]
    return encode_rgb(on_paper(page, rng, lines), "PNG" if rng.random() < 0.5 else "JPEG")


def tilted(values: np.ndarray, degrees: float, fill: float) -> np.ndarray:
    """`values` (float, one channel) turned by `degrees` about its centre, corners filled with `fill`."""
    im = Image.fromarray(values.astype(np.float32), "F")
    return np.asarray(im.rotate(degrees, Image.Resampling.BILINEAR, fillcolor=fill))


def notebook_page(digit, rng) -> bytes:
    """A phone photo of a whole ruled notebook page, 1200x1600: blue lines 40-55 px apart across
    it, a red margin line, light falling off, the page a little turned, and one small digit
    (35-70 px) written on a line."""
    h, w = 1600, 1200
    spacing = int(rng.integers(40, 56))
    height = int(rng.integers(35, 71))
    ink = ink_of(digit, height)
    lines = np.zeros((h, w), np.float32)
    first = int(rng.integers(120, 220))
    for start in range(first, h, spacing):
        lines[start:start + 2] = rng.uniform(0.5, 0.8)
    margin = int(rng.integers(120, 220))
    red = np.zeros((h, w), np.float32)
    red[:, margin:margin + 3] = 0.7
    page = np.zeros((h, w), np.float32)
    row = first + spacing * int(rng.integers(2, (h - first) // spacing - 2))
    x = int(rng.integers(margin + 40, w - ink.shape[1] - 60))
    paste(page, ink, row - height + int(rng.integers(-3, 3)), x)
    turn = float(rng.uniform(-0.4, 0.4))
    lines, red, page = (tilted(a, turn, 0) for a in (lines, red, page))
    rgb = on_paper(page, rng, lines)
    rgb *= 1 - red[..., None] * np.asarray((0.05, 0.6, 0.55), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.35 * ((xx / w + yy / h) / 2) ** 1.5
    return encode_rgb(rgb * light[..., None], "JPEG", 85)


def sticky_note(digit, rng) -> bytes:
    """A yellow sticky note lying on a desk, photographed from above, 1200x900: a wood-grained
    desk darker than the note, the note a little turned with a soft shadow beside it, the digit
    written on the note; JPEG."""
    h, w = 900, 1200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = 0.05 * np.sin(yy / rng.uniform(6, 14) + 2 * np.sin(xx / rng.uniform(80, 200)))
    desk = rng.uniform(0.3, 0.5) + grain + rng.normal(0, 0.02, (h, w)).astype(np.float32)
    desk_rgb = desk[..., None] * np.asarray((1.0, 0.75, 0.5), np.float32)
    side = int(rng.integers(380, 560))
    top, left = int(rng.integers(40, h - side - 40)), int(rng.integers(60, w - side - 60))
    note = np.zeros((h, w), np.float32)
    note[top:top + side, left:left + side] = 1
    turn = float(rng.uniform(-12, 12))
    moved = np.roll(note, (int(rng.integers(6, 16)), int(rng.integers(6, 16))), (0, 1))
    blurred = Image.fromarray((tilted(moved, turn, 0) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(8))
    shadow = np.asarray(blurred, np.float32) / 255
    note = tilted(note, turn, 0)
    height = int(side * rng.uniform(0.35, 0.6))
    ink = ink_of(digit, height)
    page = np.zeros((h, w), np.float32)
    paste(page, ink, top + (side - height) // 2 + int(rng.integers(-20, 21)),
          left + (side - ink.shape[1]) // 2 + int(rng.integers(-20, 21)))
    page = tilted(page, turn, 0)
    yellow = np.asarray((0.98, 0.92, 0.45), np.float32)
    rgb = desk_rgb * (1 - 0.45 * shadow[..., None])
    rgb = rgb * (1 - note[..., None]) + yellow * note[..., None]
    rgb = rgb * (1 - page[..., None] * np.asarray((0.85, 0.85, 0.6), np.float32))
    light = 1.0 - 0.3 * (xx / w) ** 1.5
    rgb = rgb * light[..., None] + rng.normal(0, 0.01, (h, w, 3)).astype(np.float32)
    return encode_rgb(rgb, "JPEG", 85)


def shadow_across(digit, rng) -> bytes:
    """The digit on grey paper with a shadow across it (a hand's or a phone's: a straight edge,
    a little soft, anywhere), JPEG."""
    height = int(rng.integers(70, 150))
    ink = ink_of(digit, height)
    h, w = int(height * rng.uniform(2.0, 3.5)), int(height * rng.uniform(2.0, 3.5))
    page, _, _ = centred(ink, h, w, rng, jitter=0.3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = (xx - w * rng.uniform(0.2, 0.8)) * np.cos(angle) + (yy - h * rng.uniform(0.2, 0.8)) * np.sin(angle)
    soft = rng.uniform(1, 12)
    shade = 1 - rng.uniform(0.35, 0.55) / (1 + np.exp(-along / soft))
    paper = rng.uniform(0.55, 0.75)
    grey = shade * paper * (1 - 0.8 * page) + rng.normal(0, 0.015, (h, w)).astype(np.float32)
    return encode(grey, "JPEG", int(rng.integers(70, 90)))


def tight_crop(digit, rng, stretch: bool = False, margin: float = 0.0) -> bytes:
    """The digit's ink cropped to its box (the ink touches every edge), dark on paper, 28-120 px
    tall; `stretch`: resized to a square first (aspect not kept); `margin`: paper round it, that
    share of its height on each side."""
    height = int(rng.integers(28, 121))
    ink = ink_of(digit, height)
    if stretch:
        ink = np.asarray(Image.fromarray(ink, "F").resize((height, height), Image.Resampling.BICUBIC)).clip(0, 1)
    pad = int(margin * height)
    page = np.zeros((ink.shape[0] + 2 * pad, ink.shape[1] + 2 * pad), np.float32)
    paste(page, ink, pad, pad)
    return encode(0.9 - 0.8 * page + rng.normal(0, 0.01, page.shape))
