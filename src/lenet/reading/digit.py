"""Read one digit: turn people's own digit images into what MNIST looks like.

MNIST's recipe (LeCun et al., the MNIST page): white ink on black, the ink
fitted into a 20x20 box keeping its aspect ratio, anti-aliased to grey, and
placed in 28x28 so that its centre of mass sits at the centre. A plain resize
of a photo gives the network something else; this module does the recipe on
the ink that `ink.find_ink` finds:

1. the digit is the main connected mark with the pieces beside it (a 5's
   flag); other marks and specks are left out, and said;
2. a small digit in a big photo is found on a reduced copy, then read again
   from a crop at higher resolution: crop, then reduce;
3. strokes far thinner or thicker than MNIST's are thickened or thinned;
4. the ink is fitted to the 20x20 box and placed by its centre of mass.

An image already in MNIST's form is read as it is (`mnist_form`). `read_digit`
and `preprocess` are pure: a pixel array in, a 28x28 uint8 array out; they
raise `ValueError` with a message for the user.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from lenet.errors import NoDigit
from lenet.reading import morphology as mo
from lenet.reading.background import stroke_width
from lenet.reading.canvas import canvas_ink, drawn_ink
from lenet.reading.ink import (
    STRONG,
    Box,
    Ink,
    Mark,
    as_box,
    bounds,
    closer_look,
    find_ink,
    grey,
    median,
    selected,
)

SIZE = 28          # MNIST's image side
BOX = 20           # MNIST fitted each digit's ink into a 20x20 box
FAINT = 0.15       # a digit whose contrast is below this is read, but doubted
MIN_HEIGHT = 10    # nor is a digit less tall than this (pixels) trusted
TIGHT = 16         # a tight crop's ink comes within this share (1/TIGHT) of each side of every edge
# Stroke width as 2 x ink area / ink edge length, at MNIST's 20 px box: MNIST's median is 1.95,
# its 5th and 98th percentiles 1.3 and 3.4 (measured on 5,000 training digits).
MNIST_WIDTH, THIN, THICK = 1.95, 1.3, 3.4
LANCZOS_SUPPORT = 3.0  # Pillow's LANCZOS: three lobes each side
INDEX = np.arange(SIZE)  # row and column numbers of a 28x28, for centres of mass

# Reasons to doubt an answer whatever the network's probability (see Reading.doubts).
SEVERAL = "several separate marks: looks like more than one digit (use --number)"
SMALL = "ink too small"
FAINT_INK = "ink too faint"
BORDER = "ink touches the border"


@dataclass(frozen=True)
class Reading:
    """One digit as found in an image."""
    image: np.ndarray                 # (28, 28) uint8, white ink on black: what the network sees
    box: Box                          # the digit's ink in the image given: left, top, right, bottom
    doubts: tuple[str, ...] = ()      # reasons not to trust an answer, whatever its probability


def read_digit(pixels: np.ndarray, scale: float = 1.0) -> Reading:
    """An image of one digit -> the 28x28 the network should see, where the digit is, and doubts.
    `scale`: pixels of the image as given per pixel of `pixels` (see image.decode_image), so the
    box is in the image's own coordinates."""
    box = mnist_form(pixels)
    reading = as_is(pixels, box) if box is not None else find_digit(pixels)
    return at_scale(reading, scale)


def at_scale(reading: Reading, scale: float) -> Reading:
    """`reading` with its box in the coordinates of an image `scale` times as big."""
    if scale == 1:
        return reading
    return Reading(reading.image, as_box(round(v * scale) for v in reading.box), reading.doubts)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """An image array of one digit -> the 28x28 uint8 MNIST-style image (white ink on black)."""
    return read_digit(pixels).image


def find_digit(pixels: np.ndarray) -> Reading:
    """`read_digit`'s full path: find the digit, whatever the image (the module's steps); a drawing
    on a clean canvas, transparent or the page's white pad, on the canvas itself
    (`canvas.canvas_ink`)."""
    alpha = drawn_ink(pixels)
    on_canvas = canvas_ink(alpha) if alpha is not None else None
    if alpha is not None and on_canvas is not None:
        found, offset = on_canvas
        digit, others = digit_marks(found.marks)
        return read_marks(alpha.shape, found, digit, offset, several=bool(others))
    image_grey = grey(pixels)
    found = find_ink(image_grey)
    digit, others = digit_marks(found.marks)
    offset = (0, 0)
    closer = closer_look(image_grey, found, digit)
    if closer is not None:
        found, offset = closer[0], (closer[1], closer[2])
        digit, _ = digit_marks(found.marks)  # the others were counted on the whole image
    return read_marks(image_grey.shape, found, digit, offset, several=bool(others))


def digit_marks(marks: list[Mark]) -> tuple[list[Mark], list[Mark]]:
    """Of `marks` (most ink first): the main mark with the pieces close to it (one digit: a 5's
    flag, a broken stroke), and the other marks big enough to be digits themselves. A piece joins
    when it lies within a third of the main mark's size from the digit and is either small beside
    it or stacked over it (a mark as big as the main one beside it is another digit)."""
    main = marks[0]
    main_left, main_top, main_right, main_bottom = main.box
    reach = max(main_bottom - main_top, main_right - main_left) / 3
    digit, rest = [main], marks[1:]

    def piece(mark: Mark, left: int, right: int) -> bool:
        m_left, m_top, m_right, m_bottom = mark.box
        stacked = min(m_right, right) - max(m_left, left) >= 0.5 * (m_right - m_left)
        return stacked or mark.pixels < 0.3 * main.pixels or (m_bottom - m_top) < 0.45 * (main_bottom - main_top)

    while True:
        left, top, right, bottom = bounds(digit)
        close = [m for m in rest if m.box.top < bottom + reach and m.box.bottom > top - reach
                 and m.box.left < right + reach and m.box.right > left - reach and piece(m, left, right)]
        if not close:
            break
        digit += close
        rest = [m for m in rest if m not in close]
    _, top, _, bottom = bounds(digit)
    others = [m for m in rest if m.pixels >= 0.25 * main.pixels and m.box.height >= 0.4 * (bottom - top)]
    return digit, others


def mnist_form(pixels: np.ndarray) -> Box | None:
    """The ink's box when `pixels` is already in MNIST's form, else None.

    MNIST's form, as measured on its 60,000 training digits: 28x28 grey, a background of exact
    zeros, the ink's longer side 20 px (19 in 13 of them), its centre of mass within one pixel of
    the image's centre, strokes reaching full white (254-255). Grey uint8 only (a PNG saved from
    MNIST, or by a tool that did MNIST's recipe): anything else takes the full path."""
    if pixels.shape != (SIZE, SIZE) or pixels.dtype != np.uint8 or pixels.max() < 250:
        return None
    # Everything from the ink's sums along rows and columns (exact in integers): a few passes
    # over 784 bytes, cheaper than testing rows and columns and weighting apart.
    by_row, by_col = pixels.sum(1, dtype=np.int64), pixels.sum(0, dtype=np.int64)
    rows, cols = np.flatnonzero(by_row), np.flatnonzero(by_col)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) not in (BOX - 1, BOX):
        return None
    total = int(by_row.sum())
    centre_y = int(by_row @ INDEX) / total
    centre_x = int(by_col @ INDEX) / total
    if max(abs(centre_y - (SIZE - 1) / 2), abs(centre_x - (SIZE - 1) / 2)) > 1:
        return None
    return Box(int(left), int(top), int(right), int(bottom))


def as_is(pixels: np.ndarray, box: Box) -> Reading:
    """The Reading of an image in MNIST's form: the image itself. The full path (`find_digit`) would
    find the same ink and fit it to the same box, but resample it on the way, and the bundled model
    then reads fewer of MNIST's test digits right (benchmarks/preprocess_accuracy.py), at many
    times the cost. Only "several marks" can be doubted here (the form rules out faint, small and
    border ink), by `digit_marks`'s rule read off the columns: the strokes above half the strongest
    fall into groups of columns with empty columns between; a group beside the largest one with at
    least 0.3 of its ink and 0.45 of its height is another digit. (Marks that share a column are
    not told apart: labelling them would cost as much as the rest of the reading.)"""
    ink = pixels > 127
    used = np.flatnonzero(ink.any(0))
    gaps = np.flatnonzero(np.diff(used) > 1)
    several = False
    if gaps.size:  # more than one group of columns
        groups = np.split(used, gaps + 1)
        parts = [ink[:, g[0]:g[-1] + 1] for g in groups]
        areas = [int(part.sum()) for part in parts]
        heights = [int(np.ptp(np.flatnonzero(part.any(1)))) + 1 for part in parts]
        main = int(np.argmax(areas))
        several = any(area >= 0.3 * areas[main] and height >= 0.45 * heights[main]
                      for i, (area, height) in enumerate(zip(areas, heights, strict=True)) if i != main)
    return Reading(pixels.copy(), box, (SEVERAL,) if several else ())


def read_marks(shape: tuple[int, int], found: Ink, marks: list[Mark], offset: tuple[int, int],
               several: bool = False, columns: tuple[int, int] | None = None) -> Reading:
    """The Reading of `marks` in `found` (only `columns` of them, when touching digits are cut
    apart); `shape` is the image's, `offset` (top, left) where `found`'s copy lies in it."""
    # All on the marks' box and a pixel round it (for the 3x3 neighbourhood below): nothing of
    # the marks lies outside it.
    m_left, m_top, m_right, m_bottom = bounds(marks)
    y0, x0 = max(0, m_top - 1), max(0, m_left - 1)
    y1, x1 = min(found.labels.shape[0], m_bottom + 1), min(found.labels.shape[1], m_right + 1)
    keep = selected(found.labels[y0:y1, x0:x1], marks)
    if columns is not None:
        keep[:, :max(0, columns[0] - x0)] = False
        keep[:, max(0, columns[1] - x0):] = False
    left, top, width, height = cv2.boundingRect(keep.view(np.uint8))  # the kept pixels' box, in one pass
    if width == 0:
        raise NoDigit("no ink found in the columns cut for this digit")
    bottom, right = top + height, left + width
    box = image_box(Box(x0 + left, y0 + top, x0 + right, y0 + bottom), found.factor, offset)
    doubts = [SEVERAL] if several else []
    ink = found.ink[y0:y1, x0:x1]
    strong = keep & (ink > STRONG)
    if not strong.any() or median(found.contrast[y0:y1, x0:x1][strong]) < FAINT:
        doubts.append(FAINT_INK)
    if box.height < MIN_HEIGHT and box.width < MIN_HEIGHT:
        doubts.append(SMALL)
    if cut_by_edge(box, shape, found.framed):
        doubts.append(BORDER)
    near = mo.max_filter(keep, 3)[top:bottom, left:right]
    crop = cv2.copyTo(ink[top:bottom, left:right], near.view(np.uint8), np.zeros(near.shape, ink.dtype))
    return Reading(centre_of_mass_place(fit_box(even_strokes(crop))), box, tuple(doubts))


def cut_by_edge(box: Box, shape: tuple[int, int], framed: bool) -> bool:
    """Whether the digit's ink in `box` may run on past the image's edge (part of it cut off).
    Not when the image is a tight crop of the digit: found whole inside a frame of paper
    (`framed`) with its ink at or near all four edges (a crop's cut can miss the ink's faint
    fringe by a few pixels), it was cropped to the ink, not cut through it."""
    left, top, right, bottom = box
    height, width = shape
    if left > 0 and top > 0 and right < width and bottom < height:
        return False
    near_x, near_y = max(2, round(width / TIGHT)), max(2, round(height / TIGHT))
    tight = left <= near_x and right >= width - near_x and top <= near_y and bottom >= height - near_y
    return not (framed and tight)


def image_box(box: Box, factor: float, offset: tuple[int, int]) -> Box:
    """A box at an analysis scale (`factor` image pixels each, its copy at `offset` (top, left))
    in the image's own pixels."""
    left, top, right, bottom = box
    y0, x0 = offset
    image_left, image_top = int(x0 + left * factor), int(y0 + top * factor)
    width, height = max(1, round((right - left) * factor)), max(1, round((bottom - top) * factor))
    return Box(image_left, image_top, image_left + width, image_top + height)


def even_strokes(crop: np.ndarray) -> np.ndarray:
    """Thicken strokes that would be far thinner than MNIST's once fitted to the 20 px box (a fine
    pen in a big image fades to grey) and thin far thicker ones (a marker), by grey dilation or
    erosion at the crop's own resolution."""
    scale = BOX / max(crop.shape)
    width = stroke_width(crop > STRONG) * scale  # in pixels of the 20 px box
    if width < THIN:
        radius = round((MNIST_WIDTH - width) / 2 / scale)
        return mo.max_filter(crop, 2 * radius + 1) if radius >= 1 else crop
    if width > THICK:
        radius = round((width - MNIST_WIDTH) / 2 / scale)
        thinner = mo.min_filter(crop, 2 * radius + 1) if radius >= 1 else crop
        # Never thin a stroke away: keep the thinning only if most of the ink survives it.
        return thinner if (thinner > STRONG).sum() >= 0.35 * (crop > STRONG).sum() else crop
    return crop


def fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio, anti-aliased."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    out = np.asarray(crop, np.float32)
    # Pillow's LANCZOS on a float image, pass by pass (the rows, then the columns), as two products.
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    if new_width != width:
        out = (out.astype(np.float64) @ lanczos_weights(width, new_width).T).astype(np.float32)
    if new_height != height:
        out = (lanczos_weights(height, new_height) @ out.astype(np.float64)).astype(np.float32)
    out = np.maximum(out, 0)  # Lanczos rings below zero
    # Thin strokes fade when a large image is reduced; MNIST's strokes reach full white.
    peak = float(out.max())
    return out / peak if peak > 0 else out  # within 0..1: no value is above the peak


def lanczos_weights(size: int, new_size: int) -> np.ndarray:
    """(new_size, size) float64: row i holds the weight of each of `size` pixels in pixel i of their
    LANCZOS resampling to `new_size`, as Pillow computes them (Resample.c, precompute_coeffs)."""
    first, window = lanczos_windows(size, new_size)
    taps = window.shape[1]
    # Written past the last column where a window runs over the edge (its weights there are 0).
    weights = np.zeros((new_size, size + taps))
    weights[np.arange(new_size)[:, None], first[:, None] + np.arange(taps)] = window
    return weights[:, :size]


@functools.lru_cache(maxsize=1024)
def lanczos_windows(size: int, new_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each output pixel's first input pixel and the weights from it on (as many as the widest
    window holds, 0 past its own): the window widened by the reduction, normalised to sum to 1.
    Cached, since a digit's crop sizes repeat and the sines cost more than the resampling."""
    scale = size / new_size
    widening = max(scale, 1.0)
    support = LANCZOS_SUPPORT * widening
    centres = (np.arange(new_size) + 0.5) * scale
    first = np.maximum((centres - support + 0.5).astype(np.int64), 0)  # truncated toward zero, as C's (int)
    last = np.minimum((centres + support + 0.5).astype(np.int64), size)
    x = first[:, None] + np.arange(2 * math.ceil(support) + 1)
    inside = x < last[:, None]
    window = np.where(inside, lanczos((x - centres[:, None] + 0.5) * (1.0 / widening)), 0.0)
    totals = np.cumsum(window, axis=1)[:, -1:]  # summed in order, as Pillow's loop sums them
    np.divide(window, totals, out=window, where=totals != 0)
    first.flags.writeable = window.flags.writeable = False  # shared by every call that hits the cache
    return first, window


def lanczos(x: np.ndarray) -> np.ndarray:
    """The Lanczos kernel of LANCZOS_SUPPORT lobes: sinc(x) sinc(x / 3) inside them, 0 outside."""
    inside = (x >= -LANCZOS_SUPPORT) & (x < LANCZOS_SUPPORT)
    return np.where(inside, sinc(x) * sinc(x / LANCZOS_SUPPORT), 0.0)


def sinc(x: np.ndarray) -> np.ndarray:
    """sin(pi x) / (pi x), 1 at 0, computed in Pillow's order."""
    turned = x * np.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x == 0.0, 1.0, np.sin(turned) / turned)


def centre_of_mass_place(digit: np.ndarray) -> np.ndarray:
    """Place in SIZE x SIZE so the ink's centre of mass lands on the centre, as MNIST did."""
    height, width = digit.shape
    by_row, by_col = digit.sum(1, dtype=np.float64), digit.sum(0, dtype=np.float64)
    total = by_row.sum()
    centre_y, centre_x = (by_row @ INDEX[:height]) / total, (by_col @ INDEX[:width]) / total
    # Pixel centres: the image centre is at (SIZE - 1) / 2 in index coordinates.
    top = min(max(round((SIZE - 1) / 2 - centre_y), 0), SIZE - height)
    left = min(max(round((SIZE - 1) / 2 - centre_x), 0), SIZE - width)
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + height, left:left + width] = digit
    return np.round(out * 255).astype(np.uint8)


def plain_resize(pixels: np.ndarray) -> np.ndarray:
    """The naive way (grey, inverted when light, resized to 28x28): kept to measure against."""
    from PIL import Image

    image_grey = grey(pixels)
    border = np.concatenate([image_grey[0], image_grey[-1], image_grey[:, 0], image_grey[:, -1]])
    ink = 1 - image_grey if np.median(border) > 0.5 else image_grey
    im = Image.fromarray((ink * 255).astype(np.uint8), "L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(im)
