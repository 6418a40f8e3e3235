"""Read a row of digits: the marks on one row, grouped, and the ways to cut touching digits.

The marks on the row of the main mark are its digits; a mark mostly above or below another (a
5's flag, a broken stroke) joins it; touching digits are cut at the columns with the least ink.
Every way of reading a group is returned; the network decides between them
(`predict.read_digits`): it is sure of real digits and unsure of halves of one.

The row's candidate cuts form a graph (LeCun et al. 1998's segmentation graph): its nodes are the
groups' edges and the cuts inside them, its pieces run from one node to a later one, and every way
of reading the row is a path through it. A piece may bridge two neighbouring groups (the end of
one, cut or whole, with the start of the next): a digit broken into parts whose part lies nearer
its neighbour, or a 5's flag apart from its body.

The work is bounded whatever the image: at most MAX_DIGITS groups (more is refused, never read
short), at most MAX_VALLEYS cuts tried in a group, and each piece between two cuts is read once
however many ways share it; bridges are read only while the row's readings stay within
MAX_DIGITS x MAX_PIECES, so an image costs at most that many readings.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from lenet.errors import OverBudget, TooLarge
from lenet.reading import morphology as mo
from lenet.reading.digit import Reading, read_marks
from lenet.reading.image import WORK_SIDE
from lenet.reading.ink import Ink, Mark, analysis_side, bounds, closer_look, find_ink, grey, selected

MAX_DIGITS = 20    # the longest row read; a longer one is refused (never read short)
MAX_TOUCHING = 6   # the most digits one connected mark of a number is tried as
MAX_VALLEYS = 7    # the deepest valleys of its ink profile tried as cuts
MAX_PIECES = (MAX_VALLEYS + 2) * (MAX_VALLEYS + 1) // 2  # distinct pieces between two of a group's edges
MIN_PIECE = 3      # no piece cut narrower than this (analysis pixels)
NARROWEST = 0.12   # nor narrower than this times the row's height
MIN_CUT_HEIGHT = 12  # nor a row lower than this cut at all: a dash or a speck is not touching digits
JOIN_GAP = 0.25    # two groups at most this far apart (times the row's height) may be one broken digit,
JOIN_WIDTH = 1.1   # when together they are at most this wide
MAX_READINGS = MAX_DIGITS * MAX_PIECES  # the most pieces one row is read as, bridges included

Columns = tuple[int, int] | None  # a piece's column range at the analysis scale; None: the group whole


class TooManyDigits(TooLarge):
    """A row longer than MAX_DIGITS: refused, so it is never read short in silence."""


class OutOfTime(OverBudget):
    """The time given to read one image was spent before it was read."""


def check_time(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OutOfTime("not read: the time for reading this image was spent (try a smaller or plainer image)")


def read_number(pixels: np.ndarray, deadline: float | None = None) -> list[list[list[Reading]]]:
    """An image of a row of digits -> its digits, left to right, as alternatives to choose from:
    one entry per group of marks, each a list of ways to read that group (as one digit; and, when it
    is wide enough to be touching digits, as two or more cut apart). Ways that share a piece share
    its Reading object. `deadline` (time.monotonic()) bounds the time taken: OutOfTime after it.
    A leading minus and decimal points or commas are left out (`read_row` says where they are)."""
    return read_row(pixels, deadline).groups


Signs = list[tuple[int, str]]  # (the group a sign stands before, "-", "." or ","), left to right


@dataclass(frozen=True)
class Piece:
    """One candidate digit of a row: the ink between two of the row's nodes (candidate cuts)."""
    start: int         # the node it begins at: nodes number the row's cuts left to right
    end: int           # the node it ends at (> start)
    reading: Reading
    group: int         # the group of marks it begins in
    joins: bool        # whether it joins two groups (a bridge): marks apart read as one digit
    cut: bool          # whether it ends or begins at a cut inside a group (not at a group's edge)


@dataclass(frozen=True)
class Row:
    """What a row of digits may be, for the network to choose from (`predict.read_digits`)."""
    groups: list[list[list[Reading]]]  # per group of marks, the ways to read it (see read_number)
    signs: Signs                       # a leading minus, decimal points and commas
    pieces: list[Piece]                # every distinct piece of every way, and the bridges between groups
    nodes: int                         # node 0 is the row's left end, nodes - 1 its right end


def read_row(pixels: np.ndarray, deadline: float | None = None) -> Row:
    """`read_number`'s groups; the signs between them: a leading minus (a short bar at mid height
    before the first digit) and decimal points or commas (a small mark at the baseline between two
    digits); and each two neighbouring groups close enough to be one digit broken apart, read as one."""
    image_grey = grey(pixels)
    # A row is long and low: its analysis copy is bounded by pixels, not by its longer side, so a
    # long row keeps the resolution its digits need.
    height, width = image_grey.shape
    base = analysis_side(image_grey.shape)
    side = min(WORK_SIDE, round(base * math.sqrt(max(height, width) / min(height, width))))
    found = find_ink(image_grey, side)
    row = number_marks(found)
    offset = (0, 0)
    check_time(deadline)
    closer = closer_look(image_grey, found, row, side)
    if closer is not None:
        found, offset = closer[0], (closer[1], closer[2])
        row = number_marks(found)
    row, signs = signs_of(found, row)
    groups = digit_groups(found, row)
    if len(groups) > MAX_DIGITS:
        raise TooManyDigits(f"more than {MAX_DIGITS} marks in a row: at most {MAX_DIGITS} digits are read; "
                            f"crop the image to fewer digits")
    out: list[list[list[Reading]]] = []
    pieces: list[Piece] = []
    nodes: list[dict[int, int]] = []  # per group, the node at each column where one of its pieces begins or ends
    node = 0  # the node at the current group's left edge, which is also the last group's right edge
    for g, (marks, ways) in enumerate(groups):
        check_time(deadline)
        left, _, right, _ = bounds(marks)
        read: dict[Columns, Reading] = {}
        for way in ways:
            for columns in way:
                if columns not in read:
                    read[columns] = read_marks(image_grey.shape, found, marks, offset, columns=columns)
        out.append([[read[columns] for columns in way] for way in ways])
        spans = {columns: columns or (left, right) for columns in read}
        edges = sorted({x for span in spans.values() for x in span})
        nodes.append({x: node + i for i, x in enumerate(edges)})
        pieces += [Piece(nodes[g][a], nodes[g][b], read[columns], g, False, columns is not None)
                   for columns, (a, b) in spans.items()]
        node += len(edges) - 1
    pieces += bridges(image_grey.shape, found, offset, [marks for marks, _ in groups], nodes,
                      MAX_READINGS - len(pieces), deadline)
    edges = [bounds(marks)[2] for marks, _ in groups]
    placed = [(sum(right <= x for right in edges), char) for x, char in signs]
    placed = [(g, char) for g, char in placed if (char == "-" and g == 0) or (char != "-" and 0 < g < len(groups))]
    return Row(out, placed, pieces, node + 1)


def bridges(shape: tuple[int, int], found: Ink, offset: tuple[int, int], groups: list[list[Mark]],
            nodes: list[dict[int, int]], room: int, deadline: float | None) -> list[Piece]:
    """Pieces that join the end of a group (from one of its cuts, or whole) with the start of the
    next (to one of its cuts, or whole), when the two are close and together no wider than one
    digit: a digit broken into parts, one of which lies nearer its neighbour. The whole groups'
    joins first, then the narrowest, at most `room` of them."""
    row_height = max(m.box.height for marks in groups for m in marks)
    candidates = []
    for g, (left_marks, right_marks) in enumerate(itertools.pairwise(groups)):
        left, _, left_end, _ = bounds(left_marks)
        right_start, _, right, _ = bounds(right_marks)
        if right_start - left_end > JOIN_GAP * row_height:
            continue
        for a in nodes[g]:
            for b in nodes[g + 1]:
                # From a cut of this group (not its right edge) to a cut of the next (not its left
                # edge), holding all of both groups' ink between the two.
                holds = a <= right_start and b >= left_end
                if a < left_end and b > right_start and holds and b - a <= JOIN_WIDTH * row_height:
                    candidates.append(((a, b) != (left, right), b - a, g, a, b))  # whole joins first
    out: list[Piece] = []
    for partial, _, g, a, b in sorted(candidates)[:max(0, room)]:
        check_time(deadline)
        columns = (a, b) if partial else None
        reading = read_marks(shape, found, groups[g] + groups[g + 1], offset, columns=columns)
        out.append(Piece(nodes[g][a], nodes[g + 1][b], reading, g, True, partial))
    return out


def number_marks(found: Ink) -> list[Mark]:
    """The marks on the main mark's row, specks left out."""
    main = found.marks[0]
    _, top, _, bottom = main.box
    height = bottom - top
    row = []
    for mark in found.marks:
        centre = (mark.box.top + mark.box.bottom) / 2
        if top - 0.5 * height <= centre <= bottom + 0.5 * height and mark.pixels >= 0.04 * main.pixels:
            row.append(mark)
    return row


def signs_of(found: Ink, row: list[Mark]) -> tuple[list[Mark], list[tuple[float, str]]]:
    """The row without its signs, and the signs as (centre column, character): a minus is the
    leftmost mark, a bar under a third of the row's height and at least twice as wide as high,
    at mid height; a point or comma is a small mark (at most a third of the row's height each
    way) low on the row, its bottom near the baseline (a comma's below it, or taller than wide)."""
    if len(row) < 2:
        return row, []
    tops, bottoms = np.array([m.box.top for m in row]), np.array([m.box.bottom for m in row])
    height = float(np.median(bottoms - tops))
    top, baseline = float(np.median(tops)), float(np.median(bottoms))
    signs: list[tuple[float, str]] = []
    left_first = sorted(row, key=lambda m: m.box.left)
    first = left_first[0]
    f_left, f_top, f_right, f_bottom = first.box
    f_high, f_wide = f_bottom - f_top, f_right - f_left
    middle = (f_top + f_bottom) / 2
    if (f_high < height / 3 and f_wide >= 2 * f_high and f_wide >= 0.25 * height
            and top + 0.25 * height <= middle <= baseline - 0.25 * height and f_right <= left_first[1].box.left):
        signs.append(((f_left + f_right) / 2, "-"))
        row = [m for m in row if m is not first]
    rest = []
    candidates = row + [m for m in found.marks if m not in row and m.box.top >= top]
    for mark in candidates:
        left, m_top, right, bottom = mark.box
        wide, high = right - left, bottom - m_top
        small = max(wide, high) <= height / 3 and min(wide, high) >= 0.05 * height
        low = m_top >= top + 0.55 * height and abs(bottom - baseline) <= 0.25 * height
        beside = not any(o is not mark and o.box.left < right and o.box.right > left and o.box.height > height / 2
                         for o in row)
        if small and low and beside:
            signs.append(((left + right) / 2, "," if high > 1.4 * wide or bottom > baseline + 0.12 * height else "."))
        elif mark in row:
            rest.append(mark)
    return rest, sorted(signs)


def digit_groups(found: Ink, row: list[Mark]) -> list[tuple[list[Mark], list[list[Columns]]]]:
    """The row's marks grouped, left to right: (marks, ways to cut them)."""
    height = max(m.box.height for m in row)
    groups: list[list[Mark]] = []
    for mark in sorted(row, key=lambda m: m.box.left):
        if groups:
            left, top, right, bottom = bounds(groups[-1])
            m_left, m_top, m_right, m_bottom = mark.box
            overlap = min(right, m_right) - max(left, m_left)
            # A piece of a digit (a flag, a broken stroke) over or under another mark joins it; a
            # whole digit that only leans into its neighbour (row-tall, with ink) stays apart.
            piece = (m_bottom - m_top) < 0.6 * height or (bottom - top) < 0.6 * height
            if overlap >= 0.5 * min(m_right - m_left, right - left) and piece:
                groups[-1].append(mark)
                continue
        groups.append([mark])
        if len(groups) > MAX_DIGITS:
            break  # refused by the caller: no need to group the rest
    return [(marks, cuts(found, marks, height)) for marks in groups]


def cuts(found: Ink, marks: list[Mark], height: int) -> list[list[Columns]]:
    """Ways to read a group: whole, and cut at the valleys of the ink's column profile, every way
    that leaves pieces at least NARROWEST of the row's height wide, each with ink; the network then says
    which reads best."""
    left, _, right, _ = bounds(marks)
    width = right - left
    ways: list[list[Columns]] = [[None]]
    if height < MIN_CUT_HEIGHT:
        return ways
    keep = selected(found.labels[:, left:right], marks)
    column_ink = (found.ink[:, left:right] * keep).sum(0)
    profile = mo.box_blur(column_ink[None], 3)[0]
    least = max(int(NARROWEST * height), MIN_PIECE)
    inner = np.arange(least, width - least)
    valleys = [int(x) for x in inner if profile[x] <= profile[max(0, x - least // 2):x + least // 2 + 1].min()]
    valleys = sorted(sorted(valleys, key=lambda x: profile[x])[:MAX_VALLEYS])
    inked = np.concatenate([[0], np.cumsum(column_ink > 0)])  # inked columns before each column
    for n in range(1, min(MAX_TOUCHING, len(valleys) + 1)):
        for cut in itertools.combinations(valleys, n):
            edges = [0, *cut, width]
            pieces = list(itertools.pairwise(edges))
            if all(end - start >= least and inked[end] > inked[start] for start, end in pieces):
                ways.append([(left + start, left + end) for start, end in pieces])
    return ways
