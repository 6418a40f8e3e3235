"""Read a drawing on a clean canvas at its own size: a transparent one (an HTML canvas export: ink
where it is opaque, nothing at all round its edges) on its alpha, or the page's white pad (filled
white, grey strokes, R = G = B, a pure white edge) on 255 - its grey.

A canvas holds no paper, ruled or form lines and no uneven light, so `ink.find_ink`'s steps
for them (the background's estimate, the line search, the form lines) are skipped, and a canvas
small enough to be analysed whole is not reduced (nor looked at again closer). Only where the
image really is such a canvas (`drawn_ink`): an RGBA photo, a scan whose paper is not exactly
white, colour, a drawing that runs off the edge, or a white image with a ruled line across it
(`ruled`) takes the full path. web/lenet.js reads a canvas the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from lenet.reading.background import reduced_shape
from lenet.reading.image import MIN_SIDE
from lenet.reading.ink import (
    ANALYSIS_SIDE,
    DARK_MINORITY,
    FAINT_PEAK,
    STRONG,
    WEAK,
    Ink,
    analysis_side,
    joined,
    marks_gap,
    marks_of,
    peak_of,
)

OPAQUE = np.arange(256, dtype=np.float32) / 255  # a clean canvas's ink: its alpha, 0..1
RULE_INK = 63  # ruled() counts ink above this (a light ruled line too)
RULE_SPAN, RULE_STEP = 0.25, 0.2  # ruled(): a line (a box side, an underline) spans a quarter of the width
RULE_REACH = 4  # ruled(): a line is thinner than twice this, a drawn stroke thicker (the page's pen: 22 px)
CANVAS_MARGIN = 8  # the ink is found on its box and this much clear canvas round it (over marks_of's gap)


def transparent_canvas(pixels: np.ndarray) -> np.ndarray | None:
    """The alpha channel of a drawing on a clean transparent canvas (an HTML canvas export: ink
    where it is opaque, every pixel of the edge fully transparent, alpha spanning over half its
    range), small enough to be read whole; else None. An RGBA photo (opaque everywhere), a
    drawing that runs off the edge, or any other image takes the full path."""
    values = np.asarray(pixels)
    if (values.dtype != np.uint8 or values.ndim != 3 or values.shape[2] not in (2, 4)
            or min(values.shape[:2]) < MIN_SIDE or max(values.shape[:2]) > 2 * ANALYSIS_SIDE):
        return None
    edge = values[..., -1]  # a view: the edges are looked at before the channel is copied out
    if edge[0].any() or edge[-1].any() or edge[:, 0].any() or edge[:, -1].any():
        return None
    alpha = cv2.extractChannel(values, values.shape[2] - 1) if values.flags.c_contiguous \
        else np.ascontiguousarray(edge)
    return alpha if cv2.minMaxLoc(alpha)[1] > 127 else None  # grey()'s rule for reading the alpha


def white_pad(pixels: np.ndarray) -> np.ndarray | None:
    """The ink (255 - grey) of a drawing on a clean white pad (the page's canvas: filled white,
    grey strokes, so every pixel has R = G = B and is opaque, every pixel of the edge pure white,
    some ink darker than mid grey), small enough to be read whole; else None. A scan or photo (a
    border not exactly white, channels not exactly equal) takes the full path."""
    values = np.asarray(pixels)
    if (values.dtype != np.uint8 or values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] > 4)
            or min(values.shape[:2]) < MIN_SIDE or max(values.shape[:2]) > 2 * ANALYSIS_SIDE):
        return None
    first = values if values.ndim == 2 else values[..., 0]
    if not ((first[0] == 255).all() and (first[-1] == 255).all()
            and (first[:, 0] == 255).all() and (first[:, -1] == 255).all()):
        return None  # paper not exactly white, or ink running off the edge: looked at before any copy
    if not values.flags.c_contiguous:  # OpenCV reads rows of pixels side by side
        values = np.ascontiguousarray(values)
        first = values if values.ndim == 2 else first
    if values.ndim == 3:
        first = cv2.extractChannel(values, 0)
        if values.shape[2] == 2:  # grey + alpha: opaque everywhere
            if cv2.minMaxLoc(cv2.extractChannel(values, 1))[0] < 255:
                return None
        elif values.shape[2] > 1:  # the grey pixel rebuilt (alpha 255) is the pixel: opaque grey everywhere
            rebuilt = cv2.cvtColor(first, cv2.COLOR_GRAY2RGBA if values.shape[2] == 4 else cv2.COLOR_GRAY2RGB)
            if cv2.norm(values, rebuilt, cv2.NORM_INF) != 0:
                return None  # colour (a photo), or not opaque
    if cv2.minMaxLoc(first)[0] >= 128:
        return None  # no ink darker than mid grey: as transparent_canvas's alpha above 127
    ink = cv2.bitwise_not(first)
    return None if ruled(ink) else ink


def ruled(ink: np.ndarray) -> bool:
    """Whether `ink` holds a ruled line (a white scan's, stopping short of the edge): a row (or
    column) inked over RULE_SPAN of the image's width (height) whose rows RULE_REACH away on both
    sides hold RULE_STEP of the width less ink. A drawn stroke is thicker, so its rows' neighbours are
    inked alike. The canvas path takes no lines out: such an image takes the full path."""
    marked = cv2.threshold(ink, RULE_INK, 1, cv2.THRESH_BINARY)[1]
    for axis in (1, 0):
        counts = cv2.reduce(marked, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        side = ink.shape[axis]
        if counts.max() < RULE_SPAN * side:
            continue
        padded = np.zeros(counts.size + 2 * RULE_REACH, counts.dtype)  # clear canvas past the edges (np.pad costs more)
        padded[RULE_REACH:-RULE_REACH] = counts
        near = np.maximum(padded[:-2 * RULE_REACH], padded[2 * RULE_REACH:])
        if ((counts >= RULE_SPAN * side) & (counts - near >= RULE_STEP * side)).any():
            return True
    return False


def drawn_ink(pixels: np.ndarray) -> np.ndarray | None:
    """The ink of a drawing on a clean canvas, transparent (`transparent_canvas`) or white
    (`white_pad`), 0..255; else None."""
    alpha = transparent_canvas(pixels)
    return alpha if alpha is not None else white_pad(pixels)


def canvas_ink(alpha: np.ndarray) -> tuple[Ink, tuple[int, int]] | None:
    """`find_ink`'s result for a clean transparent canvas (`transparent_canvas`'s alpha), and where
    (top, left) its copy lies in the canvas. A canvas holds no paper, ruled or form lines and no
    uneven light, so the ink is the alpha (`strong_ink`'s steps done on its 256 levels), found on
    the ink's box and a margin of clear canvas round it, not reduced (nor looked at again closer)
    when it needs no reducing. None when the plain-paper rule does not hold (mostly ink, or faint
    ink): the full path weighs those."""
    x, y, w, h = cv2.boundingRect(alpha)  # the box of every pixel with any ink
    y0, x0 = max(0, y - CANVAS_MARGIN), max(0, x - CANVAS_MARGIN)
    part = alpha[y0:y + h + CANVAS_MARGIN, x0:x + w + CANVAS_MARGIN]
    # On whole levels, "over half the strongest" is "over its half rounded down" (0/1 masks: OpenCV's threshold).
    dark = cv2.threshold(part, int(cv2.minMaxLoc(part)[1]) // 2, 1, cv2.THRESH_BINARY)[1]
    if cv2.countNonZero(dark) / alpha.size >= DARK_MINORITY:
        return None  # mostly ink: the polarity must be weighed, as plain_ink says
    contrast = cv2.LUT(part, OPAQUE)  # also plain_ink's ink: the canvas is clear, 1.0 in grey
    peak = peak_of(contrast)
    if peak < FAINT_PEAK:
        return None  # faint ink: as plain_ink says
    levels = np.minimum(OPAQUE / np.float32(peak), 1)  # strong_ink's ink, level by level
    ink = cv2.LUT(part, levels)
    # Levels rise with alpha: WEAK and STRONG are each reached from one alpha on.
    weak = at_least(part, int(np.count_nonzero(levels <= WEAK)))
    strong = at_least(part, int(np.count_nonzero(levels <= STRONG)))
    mask = joined(weak, strong)
    labels, marks = marks_of(mask, ink, canvas_gap(alpha.shape))
    return Ink(ink, mask, marks, labels, contrast, 1.0), (y0, x0)


def at_least(part: np.ndarray, level: int) -> np.ndarray:
    """The mask of `part`'s (uint8) pixels at `level` or over, as `part >= level` gives it."""
    return cv2.threshold(part, level - 1, 1, cv2.THRESH_BINARY)[1].view(bool) if level > 0 \
        else np.ones(part.shape, bool)


def canvas_gap(shape: tuple[int, int]) -> int:
    """The gap `marks_of` closes on a canvas read at its own size: the one it closes on the
    canvas's analysis copy, in the canvas's pixels (odd), so a stroke's pieces join as they did."""
    small, factor = reduced_shape(shape, analysis_side(shape))
    return round(marks_gap(small) * factor) | 1
