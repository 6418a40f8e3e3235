"""Paper as people have it: the printed lines of squared, ruled and guide-lined paper taken out of
the grey before the ink is found, and a digit that fills its image given a frame of paper.

Measured, not guessed: a paper's line is a thin dark feature that runs straight (or nearly:
a sheet photographed a little turned) across the whole image, two or more of them parallel; a
digit's stroke spans a crop once, never twice in parallel. Dots and dashes count when the gaps
between them are short beside the line. Where a stroke crosses a line it is darker than the line
alone, so it stays.
"""

from __future__ import annotations

import cv2
import numpy as np

TILT = 5           # a line may drift this many pixels (across its length) and still be one line
GAP = 1 / 24       # dots and dashes closer than this share of the side make a line
MIN_LINES = 2      # parallel lines across the whole image: the paper's, not a digit's
SPAN = 0.9         # a line crosses at least this share of the image
LINE_CONTRAST = 0.04  # a printed line is at least this much darker than the paper beside it
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
    opened with a run SPAN of the image long, at each pixel the weakest darkness along the run."""
    length = dark.shape[axis]
    gap = max(1, round(length * GAP))
    run = max(3, round(length * SPAN * 0.6))
    across, along_gap, along_run = ((TILT, 1), (1, gap), (1, run)) if axis == 1 else ((1, TILT), (gap, 1), (run, 1))
    spread = cv2.dilate(dark, np.ones(across, np.uint8), borderType=cv2.BORDER_REPLICATE)
    spread = cv2.dilate(spread, np.ones(along_gap, np.uint8), borderType=cv2.BORDER_REPLICATE)
    return cv2.morphologyEx(spread, cv2.MORPH_OPEN, np.ones(along_run, np.uint8), borderType=cv2.BORDER_REPLICATE)


def paper_lines(small: np.ndarray) -> np.ndarray:
    """The darkness the paper's printed lines add to each pixel of `small` (0 elsewhere): runs
    found by `lines_along` that cross the whole image, MIN_LINES or more parallel, and only where
    a pixel is no darker than the line itself (a stroke over the line keeps its ink)."""
    dark, _ = thin_dark(small.astype(np.float32))
    added = np.zeros_like(dark)
    for axis in (1, 0):
        line = lines_along(dark, axis)
        found = (line > LINE_CONTRAST).view(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
        extent = stats[1:, cv2.CC_STAT_WIDTH if axis == 1 else cv2.CC_STAT_HEIGHT]
        thick = stats[1:, cv2.CC_STAT_HEIGHT if axis == 1 else cv2.CC_STAT_WIDTH]
        crossing = (extent >= SPAN * dark.shape[axis]) & (thick <= dark.shape[1 - axis] / 4)
        if int(crossing.sum()) < MIN_LINES:
            continue
        keep = np.concatenate([[False], crossing])[labels]
        on_line = keep & (dark <= 1.6 * line)
        added = np.maximum(added, np.where(on_line, np.minimum(line, dark), 0))
    return added


def unlined(small: np.ndarray) -> np.ndarray:
    """`small` with the paper's printed lines (`paper_lines`) lifted to the paper beside them."""
    added = paper_lines(small)
    return small + added if added.any() else small


def framed(small: np.ndarray, paper: float) -> tuple[np.ndarray, int]:
    """`small` inside a frame of `paper`, FRAME of its longer side wide, and the frame's width: a
    digit that fills its image then has paper all round, as a framed one does (the background's
    estimate sees past the edge; a stroke from edge to edge is not a line across the image)."""
    pad = max(4, round(FRAME * max(small.shape)))
    out = np.full((small.shape[0] + 2 * pad, small.shape[1] + 2 * pad), paper, np.float32)
    out[pad:-pad, pad:-pad] = small
    return out, pad
