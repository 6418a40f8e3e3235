"""Images that are not one digit ("junk"), for training a network to say so.

LeCun, Bottou, Bengio & Haffner (1998), recognition-based segmentation: a string is over-segmented
and every candidate piece is read by the recognizer, so the recognizer must give low scores to
pieces that are not one digit. Those pieces are made here, and each goes through the reader's own
normalisation (20x20 box keeping the aspect, centre of mass at the centre of 28x28), so training
sees what inference sees:

- rows of MNIST training digits, composed as people write them (gaps, touching, overlapping,
  size and baseline changes, some digits in two parts), cut by the number reader itself (`reading.number.read_number`):
  every piece whose columns do not hold one digit (a half, a digit and part of its neighbour, two
  or three digits as one, a bridge joining two groups) is junk; the pieces that do hold one digit
  are kept as that digit;
- fragments of one digit (a half, a corner, a stroke's part), and two or three digits as one piece;
- letters drawn in the fonts matplotlib ships, digit look-alikes left out (LOOK_ALIKES);
- scribbles, random strokes, shapes (triangles, stars, crosses, squares, arrows, hashes, polygons
  of five to eight straight sides, chevrons) and blobs.

Only training images are ever used: the caller passes them (never the test set), and every draw
comes from a seeded generator.
"""

from __future__ import annotations

import math

import numpy as np

JUNK = 10  # the class index of "not one digit"
# Letters that read as digits in some hand or face: O o Q D (0), I l i j (1), S s (5), Z z (2),
# B (8), b G (6), g q (9). Left out, so the network is never taught that a digit is junk.
LOOK_ALIKES = "OoQDIlijSsZzBbGgq"
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in LOOK_ALIKES)
SHAPES = ("triangle", "star", "plus", "cross", "square", "arrow", "hash", "check", "zigzag", "polygon", "chevron")
CLOSE_CALLS = ("polygon", "chevron")  # shapes drawn more often: read as a 0 and a 7 when rarely seen
# A piece holds one digit when this share of that digit's ink, and nothing more than NEIGHBOUR of
# any other, lies in its columns; it is junk when no digit has HALF of it in, or another has PART.
WHOLE, NEIGHBOUR, HALF, PART = 0.92, 0.04, 0.7, 0.2


def paper(ink: np.ndarray, rng) -> np.ndarray:
    """Ink (float, 1 = full) as dark strokes on light paper, uint8 grey, as a photo or scan gives it."""
    level = rng.uniform(0.85, 0.97)
    strength = rng.uniform(0.6, 0.85)
    return (np.clip(level - strength * ink + rng.normal(0, 0.01, ink.shape), 0, 1) * 255).astype(np.uint8)


def ink_crop(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit's ink cropped and scaled to `height` pixels tall, float in [0, 1]."""
    from lenet.data.disguise import ink_of

    return ink_of(digit, height)


BROKEN = 0.15  # share of a row's digits written in two parts, a thin gap between them


def broken(ink: np.ndarray, height: int, rng) -> np.ndarray:
    """`ink` as written, or (BROKEN of the time) cut down a column near its middle and its right
    part moved a little away: a digit in two marks, which the reader bridges back into one."""
    if rng.random() >= BROKEN or ink.shape[1] < 8:
        return ink
    cut = int(ink.shape[1] * rng.uniform(0.35, 0.65))
    gap = max(2, int(height * rng.uniform(0.03, 0.1)))
    out = np.zeros((ink.shape[0], ink.shape[1] + gap), ink.dtype)
    out[:, :cut], out[:, cut + gap:] = ink[:, :cut], ink[:, cut:]
    return out


def compose_row(digits: list[np.ndarray], rng) -> tuple[np.ndarray, list[np.ndarray]]:
    """A row of `digits` on a page (ink, float) and, for each digit, its ink per column of the page.
    Gaps run from overlapping to wide; sizes and baselines vary from digit to digit."""
    height = int(rng.integers(40, 90))
    inks = [broken(ink_crop(d, max(8, int(height * rng.uniform(0.75, 1.1)))), height, rng) for d in digits]
    gaps = [int(height * g) for g in rng.choice([rng.uniform(-0.2, 0.0), rng.uniform(0.0, 0.1),
                                                  rng.uniform(0.1, 0.4)], len(inks), p=[0.35, 0.35, 0.3])]
    width = sum(i.shape[1] for i in inks) + sum(max(g, 0) for g in gaps) + 2 * height
    page = np.zeros((2 * height + height // 2, width), np.float32)
    columns, x = [], height
    for ink, gap in zip(inks, gaps, strict=True):
        y = height // 2 + int(rng.integers(-height // 6, height // 6 + 1))
        region = page[y:y + ink.shape[0], x:x + ink.shape[1]]
        np.maximum(region, ink[:region.shape[0], :region.shape[1]], out=region)
        mass = np.zeros(width, np.float64)
        mass[x:x + ink.shape[1]] = ink.sum(0)[:max(0, min(ink.shape[1], width - x))]
        columns.append(mass)
        x = max(x + ink.shape[1] + gap, x + 2)
    return page, columns


def label_piece(box, columns: list[np.ndarray], labels: list[int]) -> int | None:
    """The piece's class: a digit when its columns hold that digit alone, JUNK when they hold part
    of one or parts of several, None when it is in between (neither taught)."""
    left, _, right, _ = box
    shares = sorted(((c[left:right].sum() / max(c.sum(), 1e-9), y) for c, y in zip(columns, labels, strict=True)),
                    reverse=True)
    best, digit = shares[0]
    second = shares[1][0] if len(shares) > 1 else 0.0
    if best >= WHOLE and second <= NEIGHBOUR:
        return digit
    if best < HALF or second > PART:
        return JUNK
    return None


def row_pieces(images: np.ndarray, labels: np.ndarray, rows: int, rng) -> tuple[list, list]:
    """Pieces of `rows` composed rows of 2-6 digits, as the number reader offers them (its cuts and
    its bridges between groups), each labelled (`label_piece`): (images, classes)."""
    from lenet.errors import LenetError
    from lenet.reading.number import read_row

    out, classes = [], []
    for _ in range(rows):
        pick = rng.choice(len(labels), int(rng.integers(2, 7)), replace=False)
        page, columns = compose_row(list(images[pick]), rng)
        try:
            row = read_row(paper(page, rng))
        except LenetError:
            continue
        for reading in (p.reading for p in row.pieces):
            y = label_piece(reading.box, columns, [int(v) for v in labels[pick]])
            if y is not None:
                out.append(reading.image)
                classes.append(y)
    return out, classes


def on_paper_read(ink: np.ndarray, rng) -> np.ndarray:
    """`ink` with a margin, on paper, through the one-digit reader: the 28x28 it sees."""
    from lenet.reading.digit import read_digit

    margin = max(4, ink.shape[0] // 3)
    page = np.zeros((ink.shape[0] + 2 * margin, ink.shape[1] + 2 * margin), np.float32)
    page[margin:margin + ink.shape[0], margin:margin + ink.shape[1]] = ink
    return read_digit(paper(page, rng)).image


def fragment(digit: np.ndarray, label: int, rng) -> np.ndarray:
    """Part of one digit: its left, right, top or bottom part, or a corner (ink, float). The top
    or bottom of a 6, 8 or 9 is a loop, a 0: those are cut only down the side."""
    ink = ink_crop(digit, int(rng.integers(40, 80)))
    h, w = ink.shape
    keep = rng.uniform(0.3, 0.6)
    side = rng.choice([0, 1, 4]) if label in (6, 8, 9) else rng.integers(0, 5)
    if side == 0:
        ink = ink[:, :max(2, int(w * keep))]
    elif side == 1:
        ink = ink[:, int(w * (1 - keep)):]
    elif side == 2:
        ink = ink[:max(2, int(h * keep))]
    elif side == 3:
        ink = ink[int(h * (1 - keep)):]
    else:
        top, left = int(h * rng.uniform(0, 0.5)), int(w * rng.uniform(0, 0.5))
        ink = ink[top:top + max(2, h // 2), left:left + max(2, w // 2)]
    return ink


def several(digits: list[np.ndarray], rng) -> np.ndarray:
    """Two or three digits as one piece: touching, overlapping or a little apart (ink, float)."""
    page, _ = compose_row(digits, rng)
    rows, cols = np.flatnonzero(page.max(1) > 0.1), np.flatnonzero(page.max(0) > 0.1)
    return page[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def letter(fonts: list, rng) -> np.ndarray:
    """One letter that is not a digit look-alike, drawn in one of `fonts`, through the reader."""
    from lenet.reading.digit import read_digit
    from lenet.training.fonts import draw

    height = int(rng.integers(40, 110))
    weight = int(float(rng.choice([-1, 0, 0, 1, 2])) * height / 60)
    return read_digit(draw(str(rng.choice(list(LETTERS))), fonts[int(rng.integers(len(fonts)))], rng, height,
                           weight)).image


def close_call(pen, kind: str, at, c: float, r: float, width: int, rng) -> None:
    """Draw a polygon or a chevron with `pen` (`at`: a point at an angle and radius from the centre c)."""
    if kind == "polygon":  # straight sides and corners, as wide as tall or wider: never a 0's oval
        n = int(rng.integers(5, 9))
        stretch = rng.uniform(1.0, 1.1)
        pen.polygon([(c + (x - c) * stretch, y) for x, y in
                     (at(2 * math.pi * (i + rng.uniform(-0.1, 0.1)) / n, r * rng.uniform(0.9, 1.0)) for i in range(n))],
                    outline=255, width=width)
    elif kind == "chevron":  # < > ^ v: two arms meeting at mid side, neither level (a 7's bar is)
        half = rng.uniform(0.45, 0.8)  # half the angle between the arms, radians
        point = rng.choice([0.0, math.pi / 2, math.pi, 3 * math.pi / 2]) + rng.uniform(-0.08, 0.08)
        tip = (c + 0.8 * r * math.cos(point), c + 0.8 * r * math.sin(point))
        arms = [(tip[0] - 1.6 * r * math.cos(point + s * half), tip[1] - 1.6 * r * math.sin(point + s * half))
                for s in (-1, 1)]
        pen.line([arms[0], tip, arms[1]], fill=255, width=width, joint="curve")


def drawing(kind: str, rng, side: int = 96) -> np.ndarray:
    """A scribble, random strokes, a shape or a blob (ink, float, side x side)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(im)
    width = int(rng.integers(max(2, side // 24), side // 8))
    c, r = side / 2, side * rng.uniform(0.25, 0.42)
    turn = rng.uniform(0, 2 * math.pi)

    def at(angle: float, radius: float) -> tuple[float, float]:
        return c + radius * math.cos(angle + turn), c + radius * math.sin(angle + turn)

    if kind == "scribble":  # a wandering line, many turns
        points = [tuple(p) for p in np.cumsum(rng.normal(0, side / 7, (int(rng.integers(5, 14)), 2)), 0) + c]
        pen.line(points, fill=255, width=width, joint="curve")
    elif kind == "strokes":  # two to four straight strokes anywhere
        for _ in range(int(rng.integers(2, 5))):
            pen.line([tuple(rng.uniform(side * 0.1, side * 0.9, 2)), tuple(rng.uniform(side * 0.1, side * 0.9, 2))],
                     fill=255, width=width)
    elif kind == "blob":  # a filled irregular shape
        n = int(rng.integers(5, 10))
        pen.polygon([at(2 * math.pi * i / n, r * rng.uniform(0.5, 1)) for i in range(n)], fill=255)
    elif kind == "triangle":
        pen.polygon([at(2 * math.pi * i / 3, r) for i in range(3)], outline=255, width=width)
    elif kind == "square":
        pen.polygon([at(2 * math.pi * i / 4 + math.pi / 4, r) for i in range(4)], outline=255, width=width)
    elif kind == "star":
        pen.polygon([at(math.pi * i / 5, r if i % 2 == 0 else r * 0.45) for i in range(10)], outline=255, width=width)
    elif kind in ("plus", "cross"):
        a = 0.0 if kind == "plus" else math.pi / 4
        pen.line([at(a, r), at(a + math.pi, r)], fill=255, width=width)
        pen.line([at(a + math.pi / 2, r), at(a + 3 * math.pi / 2, r)], fill=255, width=width)
    elif kind == "arrow":
        tip, tail = at(0, r), at(math.pi, r)
        pen.line([tail, tip], fill=255, width=width)
        pen.line([at(0.5, r * 0.55), tip, at(-0.5, r * 0.55)], fill=255, width=width)
    elif kind == "hash":
        for s in (-0.35, 0.35):
            pen.line([(c + s * r * 2 - r * 0.2, c - r), (c + s * r * 2 + r * 0.2, c + r)], fill=255, width=width)
            pen.line([(c - r, c + s * r * 2), (c + r, c + s * r * 2)], fill=255, width=width)
    elif kind == "check":
        pen.line([at(math.pi, r * 0.6), at(math.pi / 2, r * 0.5), at(-math.pi / 4, r)], fill=255, width=width)
    elif kind in CLOSE_CALLS:
        close_call(pen, kind, at, c, r, width, rng)
    elif kind == "zigzag":
        n = int(rng.integers(3, 6))
        pen.line([(side * 0.1 + side * 0.8 * i / n, c + (r if i % 2 else -r) * 0.6) for i in range(n + 1)],
                 fill=255, width=width)
    else:
        raise ValueError(f"unknown drawing {kind!r}")
    return np.asarray(im, np.float32) / 255


def one_like(image: np.ndarray) -> bool:
    """A 28x28 whose ink is a tall thin stroke: a 1 in some hand, so never taught as junk."""
    rows, cols = np.flatnonzero(image.max(1) > 60), np.flatnonzero(image.max(0) > 60)
    return rows.size == 0 or (cols[-1] - cols[0] + 1) < 0.6 * (rows[-1] - rows[0] + 1)


def junk_set(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0, fonts: list | None = None,
             log=print) -> tuple[np.ndarray, np.ndarray]:
    """About `n` junk images (N, 28, 28) uint8 with their classes: JUNK, or a digit for a row piece
    that holds one digit whole (the reader's own cuts of real digits, taught as digits). From
    `images`/`labels`, which must be training digits; `fonts`: matplotlib's when None."""
    from lenet.training.fonts import matplotlib_fonts

    rng = np.random.default_rng(seed)
    fonts = fonts if fonts is not None else matplotlib_fonts()
    out: list[np.ndarray] = []
    classes: list[int] = []
    # Shares of n: row pieces (a row gives two dozen or so), fragments, several as one, letters, drawings.
    pieces, piece_classes = row_pieces(images, labels, max(1, n * 4 // 10 // 8), rng)
    out += pieces
    classes += piece_classes
    log(f"junk: {len(pieces):,} row pieces ({sum(c == JUNK for c in piece_classes):,} not one digit)")
    for _ in range(n * 15 // 100):
        i = int(rng.integers(len(labels)))
        out.append(on_paper_read(fragment(images[i], int(labels[i]), rng), rng))
    for _ in range(n * 10 // 100):
        pick = rng.choice(len(labels), int(rng.integers(2, 4)), replace=False)
        out.append(on_paper_read(several(list(images[pick]), rng), rng))
    for _ in range(n * 15 // 100):
        out.append(letter(fonts, rng))
    kinds = ("scribble", "strokes", "blob", *SHAPES)
    for i in range(n * 15 // 100):
        out.append(on_paper_read(drawing(kinds[i % len(kinds)], rng), rng))
    # Polygons and chevrons again: the nearest things to a 0 and a 7 that are neither.
    for i in range(n * 6 // 100):
        out.append(on_paper_read(drawing(CLOSE_CALLS[i % len(CLOSE_CALLS)], rng), rng))
    classes += [JUNK] * (len(out) - len(classes))
    kept = [i for i, (x, y) in enumerate(zip(out, classes, strict=True)) if y != JUNK or not one_like(x)]
    out, classes = [out[i] for i in kept], [classes[i] for i in kept]
    log(f"junk: {len(out):,} images, {sum(c == JUNK for c in classes):,} of them not one digit")
    return np.stack(out).astype(np.uint8), np.array(classes, np.int64)
