"""Paper as people have it: the printed lines of squared, ruled and guide-lined paper taken out of
the grey before the ink is found; a note lying on a desk read on the note alone; a digit that
fills its image given a frame of paper.

Measured, not guessed: a paper's line is a thin dark feature that runs straight (or nearly:
a sheet photographed a little turned) across the whole image, two or more of them parallel (on
a whole page, one is enough: no digit spans a page); a digit's stroke spans a crop once, never
twice in parallel. Dots and dashes count when the gaps between them are short beside the line.
Where a stroke crosses a line it is darker than the line alone, so it stays. A sheet on a desk is
a convex light region well inside the picture; its edge and its shadow are not ink.
"""

from __future__ import annotations

import cv2
import numpy as np

from lenet.reading.morphology import LABELLING, label_with_boxes
from lenet.reading.order import median, percentiles

TILT = 5           # a line may drift this many pixels (across its length) and still be one line
GAP = 1 / 24       # dots and dashes closer than this share of the side make a line
MIN_LINES = 2      # parallel lines across the whole image: the paper's, not a digit's
SPAN = 0.9         # a line crosses at least this share of the image
LINE_CONTRAST = 0.04  # a printed line is at least this much darker than the paper beside it
DESK_LIGHT = 0.2   # at most this share of the desk round a sheet is as light as the sheet
FRAME = 0.25       # a digit that fills its image gets paper this share of the side round it


def thin_dark(small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(how much darker than the paper within a few pixels each pixel is, that paper): a closing
    narrow enough to leave a digit's strokes and blots as they are but lift a printed line."""
    size = max(3, round(min(small.shape) / 40)) | 1
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8),
                             borderType=cv2.BORDER_REPLICATE)
    return paper - small, paper


def lines_along(dark: np.ndarray, axis: int) -> np.ndarray:
    """The darkness of straight runs along `axis` (1: horizontal) that cross the image: `dark`
    spread TILT pixels across the run (a turned sheet) and GAP along it (dots, dashes), then
    opened with a run SPAN of the image long, at each pixel the weakest darkness along the run.
    Along the run, on blocks of a few pixels (their strongest darkness): a line is as dark in the
    block as in its pixels, and the long opening costs a fraction."""
    spread, block, run = spread_along(dark, axis)
    opened = cv2.morphologyEx(spread, cv2.MORPH_OPEN, np.ones(run, np.uint8), borderType=cv2.BORDER_REPLICATE)
    return np.repeat(opened, block, axis)[:dark.shape[0], :dark.shape[1]] if block > 1 else opened


def runs_above(dark: np.ndarray, axis: int, floor: float) -> np.ndarray | None:
    """Where `lines_along(dark, axis)` is above `floor`, found on the mask of the spread darkness
    above it (the opening's minimum and maximum are above the floor where all or any of their
    pixels are: the same pixels, in bytes); None when no row (column) holds enough of the mask for
    a run's window at the image's ends, half a run: then nothing is."""
    spread, block, run = spread_along(dark, axis)
    above = spread > floor
    counts = cv2.reduce(above.view(np.uint8), axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S)  # per row (column)
    if int(counts.max()) < min(spread.shape[axis], max(run) - max(run) // 2):
        return None
    opened = cv2.morphologyEx(above.view(np.uint8), cv2.MORPH_OPEN, np.ones(run, np.uint8),
                              borderType=cv2.BORDER_REPLICATE).view(bool)
    return np.repeat(opened, block, axis)[:dark.shape[0], :dark.shape[1]] if block > 1 else opened


def spread_along(dark: np.ndarray, axis: int) -> tuple[np.ndarray, int, tuple[int, int]]:
    """`lines_along`'s darkness before the opening: pooled along `axis` in blocks, and spread
    across and along; with the block's length and the run's (rows, columns) for the opening."""
    block = max(1, dark.shape[axis] // 96)
    pooled = pool_along(dark, axis, block)
    length = pooled.shape[axis]
    gap = max(1, round(length * GAP))
    run = max(3, round(length * SPAN * 0.6))
    # Spread across and along at once: a rectangle's maximum is its rows' maximum of its columns'.
    spread_by, along_run = ((TILT, gap), (1, run)) if axis == 1 else ((gap, TILT), (run, 1))
    return cv2.dilate(pooled, np.ones(spread_by, np.uint8), borderType=cv2.BORDER_REPLICATE), block, along_run


def pool_along(values: np.ndarray, axis: int, block: int) -> np.ndarray:
    """`values` reduced `block` times along `axis` by block maximum (the last block repeated to fill)."""
    if block == 1:
        return values
    if values.dtype in (np.float32, np.uint8):
        # The maximum over the `block` pixels from each one on (edges repeated), at each block's start.
        kernel = np.ones((1, block) if axis == 1 else (block, 1), np.uint8)
        spread = cv2.dilate(values, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(spread[:, ::block] if axis == 1 else spread[::block])
    n = values.shape[axis]
    blocks = -(-n // block)
    index = np.minimum(np.arange(blocks * block), n - 1)
    taken = np.take(values, index, axis)
    shape = (blocks, block, values.shape[1]) if axis == 0 else (values.shape[0], blocks, block)
    return np.ascontiguousarray(taken.reshape(shape).max(1 if axis == 0 else 2))


def paper_lines(small: np.ndarray, min_lines: int = MIN_LINES) -> np.ndarray:
    """The darkness the paper's printed lines add to each pixel of `small` (0 elsewhere): runs
    found by `lines_along` that cross the whole image, `min_lines` or more parallel, and only where
    a pixel is no darker than the line itself (a stroke over the line keeps its ink)."""
    dark, _ = thin_dark(small.astype(np.float32))
    added = np.zeros_like(dark)
    rows, ruling = 0, 0  # lines found across, and the thickest
    for axis in (1, 0):
        # A ruling's lines first taken out: bridged along a run, ruled lines close together would
        # merge into one broad region that crosses nothing. Not a box's two (its sides stay whole).
        # Each of its pixels takes the lighter of the darkness just above and just below it: a
        # square's upright lines (and a stroke) stay whole where they cross the ruling.
        dark = across_lines(dark, added > 0, ruling) if axis == 0 and rows > 2 else dark
        marked = runs_above(dark, axis, LINE_CONTRAST)  # the runs darker than a printed line
        # A run crosses the image only over as many rows (columns) holding some of it: without
        # them, nothing to label.
        if marked is None or np.count_nonzero(marked.any(1 - axis)) < SPAN * dark.shape[axis]:
            continue
        labels, _, _, boxes = label_with_boxes(marked)
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        extent, thick = (width, height) if axis == 1 else (height, width)
        crossing = (extent >= SPAN * dark.shape[axis]) & (thick <= dark.shape[1 - axis] / 4)
        if int(crossing.sum()) < min_lines:
            continue
        rows = int(crossing.sum()) if axis == 1 else rows
        ruling = int(thick[crossing].max()) if axis == 1 else 0
        line = lines_along(dark, axis)
        keep = np.concatenate([[False], crossing])[labels]
        on_line = keep & (dark <= 1.6 * line)
        # Lifted all the way to the paper: a faint remainder joined to a stroke would pass as ink.
        pieces = broken_lines(dark, axis, median(line[on_line]) if on_line.any() else 0.0)
        added = np.maximum(added, np.where(on_line | pieces, dark, 0))
    return added


def across_lines(dark: np.ndarray, lines: np.ndarray, thick: int) -> np.ndarray:
    """`dark` with the pixels of horizontal `lines` (a mask, each line at most `thick` pixels
    thick) given the lesser of the strongest darkness within `thick` above and below them."""
    out = np.where(lines, np.float32(0), dark)
    kernel = np.ones((thick + 1, 1), np.uint8)
    above = cv2.dilate(out, kernel, anchor=(0, thick), borderType=cv2.BORDER_REPLICATE)
    below = cv2.dilate(out, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    return np.where(lines, np.minimum(above, below), out)


def broken_lines(dark: np.ndarray, axis: int, strength: float) -> np.ndarray:
    """On paper known to be ruled along `axis`, the pieces of its lines that a digit's strokes cut
    short: thin straight runs a sixth of the image long, no darker than the whole lines
    (`strength`) by half again, so a pen's straight stroke, darker than the printing, stays."""
    if strength <= 0:
        return np.zeros(dark.shape, bool)
    block = max(1, dark.shape[axis] // 96)
    pooled = pool_along(dark, axis, block)
    run = max(3, pooled.shape[axis] // 6)
    across, along_run = ((TILT, 1), (1, run)) if axis == 1 else ((1, TILT), (run, 1))
    spread = cv2.dilate(pooled, np.ones(across, np.uint8), borderType=cv2.BORDER_REPLICATE)
    piece = cv2.morphologyEx(spread, cv2.MORPH_OPEN, np.ones(along_run, np.uint8), borderType=cv2.BORDER_REPLICATE)
    if block > 1:
        piece = np.repeat(piece, block, axis)[:dark.shape[0], :dark.shape[1]]
    return (piece > LINE_CONTRAST) & (dark > LINE_CONTRAST) & (dark <= 1.5 * strength) & (dark <= 1.6 * piece)


def unlined(small: np.ndarray, page: bool = False) -> np.ndarray:
    """`small` with the paper's printed lines (`paper_lines`) lifted to the paper beside them. On a
    `page` (a photo too large to be one digit's crop) a single line across it is the paper's too
    (a notebook's margin line): no digit spans a whole page."""
    added = paper_lines(small, 1 if page else MIN_LINES)
    return small + added if added.any() else small


def framed(small: np.ndarray, paper: float) -> tuple[np.ndarray, int]:
    """`small` inside a frame of `paper`, FRAME of its longer side wide, and the frame's width: a
    digit that fills its image then has paper all round, as a framed one does (the background's
    estimate sees past the edge; a stroke from edge to edge is not a line across the image)."""
    pad = max(4, round(FRAME * max(small.shape)))
    out = np.full((small.shape[0] + 2 * pad, small.shape[1] + 2 * pad), paper, np.float32)
    out[pad:-pad, pad:-pad] = small
    return out, pad


def sheet(small: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray | None:
    """The sheet a digit is written on when it lies on a darker desk inside the picture (a sticky
    note photographed on a table), a little inside its edge; None when there is no such sheet.

    The sheet is the largest region lighter than the middle grey, filled out to its convex hull
    (a sheet is convex; the ink on it is not a hole), when the hull is well inside the picture
    (it touches at most one edge), covers at least a tenth of it, is mostly light inside (a chalk
    digit's hull is mostly board) and is clearly lighter than what lies around it. Its edge and
    its shadow then are not ink: only what lies inside counts. Nor is there a sheet when much of
    what lies round the hull is light too, or two of the picture's corners are (a sheet touching
    one edge leaves at least two corners to the desk): that is the paper beside a digit that
    fills its crop. `levels`: percentiles(small, [2, 98]) when already known."""
    lo, hi = levels if levels is not None else percentiles(small, [2, 98])
    light = (small > (lo + hi) / 2).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(light, 8, cv2.CV_32S, LABELLING)
    if count < 2:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    left, top, width, height = (int(v) for v in stats[biggest, :4])
    box_edges = (int(left == 0) + int(top == 0) + int(left + width == small.shape[1])
                 + int(top + height == small.shape[0]))
    if box_edges > 1 or width * height < 0.1 * small.size:
        return None  # the hull lies within the region's box: it would reach those edges too
    points = cv2.findNonZero((labels == biggest).view(np.uint8))
    hull = np.zeros(small.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    inside = hull.view(bool)
    share = float(inside.mean())
    edges = int(inside[0].any()) + int(inside[-1].any()) + int(inside[:, 0].any()) + int(inside[:, -1].any())
    if edges > 1 or not 0.1 <= share <= 0.85:
        return None
    if float(light.view(bool)[inside].mean()) < 0.75:
        return None  # mostly dark inside: light strokes on a board (chalk), not a sheet
    if float(light.view(bool)[~inside].mean()) > DESK_LIGHT or corners_light(light) > 1:
        return None  # paper round it: the paper beside a digit that fills its crop, not a sheet
    if median(small[inside]) - median(small[~inside]) < 0.15:
        return None
    edge = max(3, round(min(small.shape) / 40)) | 1
    return cv2.erode(hull, np.ones((edge, edge), np.uint8)).view(bool)


def corners_light(light: np.ndarray) -> int:
    """How many of the four corners of `light` (a mask) are mostly light."""
    k = max(1, min(light.shape) // 10)
    corners = (light[:k, :k], light[:k, -k:], light[-k:, :k], light[-k:, -k:])
    return sum(int(float(c.mean()) > 0.5) for c in corners)


def sheet_only(small: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
    """`small` with everything off the `sheet` (the desk, the sheet's edge and shadow) painted the
    sheet's own paper grey; `small` itself when there is no such sheet (`levels` as for `sheet`)."""
    inside = sheet(small, levels)
    return small if inside is None else off_sheet(small, inside)


def off_sheet(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """`values` with everything off the sheet (`inside`: a mask of the same shape, some of it
    True) painted the sheet's own paper grey: its median there."""
    return np.where(inside, values, np.float32(median(values[inside]))).astype(values.dtype)
