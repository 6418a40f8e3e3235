"""Form lines: the long thin straight runs of a form's boxes, underlines and ruled lines.

They are taken out of the ink before its marks are found; a digit's own straight strokes (a 7's
bar, a 2's foot, a 1's stem) are kept. Boxes are (left, top, right, bottom), right and bottom
exclusive, at the analysis scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenet.reading import morphology as mo
from lenet.reading.morphology import Box

MIN_LINE = 16      # a form line is at least this long (pixels at the analysis scale)


def form_lines(mask: np.ndarray) -> np.ndarray:
    """Step 4, the pixels of form lines: long thin straight runs that make a frame with each other
    (a box: horizontal and vertical lines meeting at their ends), cross the whole image (ruled
    lines), or run past the rest of the ink at both ends below its middle (an underline). A 7's
    bar, a 2's foot or a 1's stem does none of these (or is all the ink there is), so it stays."""
    height, width = mask.shape
    lines = np.zeros_like(mask)
    candidates = line_candidates(mask)
    if not candidates:
        return lines
    # Squared or ruled paper: two or more parallel lines across the whole image are the paper's, even
    # when they are most of the ink (a digit's stroke spans a tight crop once, not twice in parallel).
    comb = [line for line in candidates if spans(line, mask.shape)]
    comb = [line for line in comb if sum(other.axis == line.axis for other in comb) >= 2]
    if comb:
        for line in comb:
            lines[line.region] |= line.pixels
        mask = mask & ~lines
        candidates = [line for line in candidates if not any(line is other for other in comb)]
        if not candidates or not mask.any():
            return lines
    # The rest: the ink off the longest runs (a form's lines are longer than a digit's strokes).
    longest = max(line.length for line in candidates)
    rest = mask.copy()
    for line in candidates:
        if line.length >= 0.75 * longest:
            rest[line.region] &= ~line.pixels
    if np.count_nonzero(rest) < 0.15 * np.count_nonzero(mask):
        return lines  # lines are all there is: a 1, a 7 of straight strokes
    rows, cols = np.flatnonzero(rest.any(1)), np.flatnonzero(rest.any(0))
    extent = {1: cols[-1] + 1 - cols[0], 0: rows[-1] + 1 - rows[0]}  # the rest's, along each axis
    # Frame lines reach across the rest: at least 90% of its extent their way.
    framing = [line for line in candidates if line.length >= 0.9 * extent[line.axis]]
    for line in candidates:
        axis, box = line.axis, line.box
        if line.length >= 0.9 * extent[axis] and any(
                axis != other.axis and corner(box, other.box) for other in framing if other.box != box):
            lines[line.region] |= line.pixels
            continue
        start, end = (box.left, box.right) if axis == 1 else (box.top, box.bottom)
        if start == 0 and end == (width if axis == 1 else height):  # across the whole image: a ruled line
            lines[line.region] |= line.pixels
            continue
        if axis == 0 or box.top < (rows[0] + rows[-1]) / 2:
            continue  # alone, only a line under the digit's middle is a form's (a 7's bar is above it)
        ink_start, ink_end = cols[0], cols[-1] + 1
        # A line joined to the digit (a 2's foot) must run well past it to be taken for an underline.
        margin = (0.25 if touches(line, rest) else 0.08) * (ink_end - ink_start)
        if start <= ink_start - margin and end >= ink_end + margin:
            lines[line.region] |= line.pixels
    return lines


def spans(line: Line, shape: tuple[int, int]) -> bool:
    """Whether `line` runs from one edge of an image of `shape` to the opposite one."""
    start, end = (line.box.left, line.box.right) if line.axis == 1 else (line.box.top, line.box.bottom)
    return start == 0 and end == (shape[1] if line.axis == 1 else shape[0])


@dataclass(frozen=True)
class Line:
    """A long thin straight run of ink, its pixels held within its box."""
    axis: int              # 1: horizontal, 0: vertical
    box: Box
    length: int
    pixels: np.ndarray     # the run's pixels within `box`

    @property
    def region(self) -> tuple[slice, slice]:
        left, top, right, bottom = self.box
        return slice(top, bottom), slice(left, right)


def touches(line: Line, rest: np.ndarray) -> bool:
    """Whether `line`'s pixels are next to (8-connected with) any of `rest`."""
    left, top, right, bottom = line.box
    y0, x0 = max(0, top - 1), max(0, left - 1)
    around = np.zeros((min(rest.shape[0], bottom + 1) - y0, min(rest.shape[1], right + 1) - x0), bool)
    around[top - y0:bottom - y0, left - x0:right - x0] = line.pixels
    return bool((mo.max_filter(around, 3) & rest[y0:y0 + around.shape[0], x0:x0 + around.shape[1]]).any())


def line_candidates(mask: np.ndarray) -> list[Line]:
    """Each long thin straight run in `mask`: at least a quarter of the image (and MIN_LINE) long,
    8 times longer than thick."""
    candidates = []
    for axis, side in ((1, mask.shape[1]), (0, mask.shape[0])):
        run = mo.line_opening(mask, max(MIN_LINE, side // 4), axis)
        if not run.any():
            continue
        labels, count, pixels, boxes = mo.label_with_boxes(run, lines=True)
        for number, (left, top, right, bottom), area in zip(range(count), boxes.tolist(), pixels.tolist(), strict=True):
            length = right - left if axis == 1 else bottom - top
            if length >= 8 * area / max(1, length):  # thin: 8 times longer than thick
                candidates.append(Line(axis, Box(left, top, right, bottom), length,
                                       labels[top:bottom, left:right] == number + 1))
    return candidates


def corner(one: Box, other: Box) -> bool:
    """Whether two line boxes, one horizontal and one vertical, meet at an end of each: a frame's
    corner, not a cross (a 4's bar through its stem)."""
    if (one[2] - one[0]) < (one[3] - one[1]):  # make `one` the horizontal line
        one, other = other, one
    h_left, h_top, h_right, h_bottom = one
    v_left, v_top, v_right, v_bottom = other
    tolerance = 3 + max(h_bottom - h_top, v_right - v_left)
    ends_across = min(abs(h_left - v_left), abs(h_left - v_right), abs(h_right - v_left), abs(h_right - v_right))
    ends_down = min(abs(v_top - h_top), abs(v_top - h_bottom), abs(v_bottom - h_top), abs(v_bottom - h_bottom))
    return ends_across <= tolerance and ends_down <= tolerance
