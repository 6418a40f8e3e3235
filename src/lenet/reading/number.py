"""Read a row of digits: the marks on one row, grouped, and the ways to cut touching digits.

The marks on the row of the main mark are its digits; a mark mostly above or below another (a
5's flag, a broken stroke) joins it; touching digits are cut at the columns with the least ink.
Every way of reading a group is returned; the network decides between them
(`predict.read_digits`): it is sure of real digits and unsure of halves of one.
"""

from __future__ import annotations

import itertools

import numpy as np

from lenet.reading import morphology as mo
from lenet.reading.digit import Reading, read_marks
from lenet.reading.ink import Ink, Mark, bounds, closer_look, find_ink, grey

MAX_TOUCHING = 6   # the most digits one connected mark of a number is tried as
MAX_VALLEYS = 7    # the deepest valleys of its ink profile tried as cuts

Way = list  # column ranges (start, end) at the analysis scale, [None] for the group whole


def read_number(pixels: np.ndarray) -> list[list[list[Reading]]]:
    """An image of a row of digits -> its digits, left to right, as alternatives to choose from:
    one entry per group of marks, each a list of readings of that group (as one digit; and, when it
    is wide enough to be touching digits, as two or more cut apart)."""
    image_grey = grey(pixels)
    found = find_ink(image_grey)
    row = number_marks(found)
    offset = (0, 0)
    closer = closer_look(image_grey, found, row)
    if closer is not None:
        found, *offset = closer
        row = number_marks(found)
    return [[[read_marks(image_grey.shape, found, marks, tuple(offset), columns=columns) for columns in way]
             for way in ways]
            for marks, ways in digit_groups(found, row)]


def number_marks(found: Ink) -> list[Mark]:
    """The marks on the main mark's row, specks left out."""
    main = found.marks[0]
    _, top, _, bottom = main.box
    height = bottom - top
    row = []
    for mark in found.marks:
        centre = (mark.box[1] + mark.box[3]) / 2
        if top - 0.5 * height <= centre <= bottom + 0.5 * height and mark.pixels >= 0.04 * main.pixels:
            row.append(mark)
    return row


def digit_groups(found: Ink, row: list[Mark]) -> list[tuple[list[Mark], list[Way]]]:
    """The row's marks grouped, left to right: (marks, ways to cut them)."""
    height = max(m.box[3] - m.box[1] for m in row)
    groups: list[list[Mark]] = []
    for mark in sorted(row, key=lambda m: m.box[0]):
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
    return [(marks, cuts(found, marks, height)) for marks in groups]


def cuts(found: Ink, marks: list[Mark], height: int) -> list[Way]:
    """Ways to read a group: whole, and cut at the valleys of the ink's column profile, every way
    that leaves pieces at least 0.2 of the row's height wide; the network then says which reads best."""
    left, _, right, _ = bounds(marks)
    width = right - left
    ways: list[Way] = [[None]]
    keep = np.isin(found.labels[:, left:right], [m.label for m in marks])
    profile = mo.box_blur((found.ink[:, left:right] * keep).sum(0, keepdims=True), 3)[0]
    least = int(0.2 * height)
    inner = np.arange(least, width - least)
    valleys = [int(x) for x in inner if profile[x] <= profile[max(0, x - least // 2):x + least // 2 + 1].min()]
    valleys = sorted(sorted(valleys, key=lambda x: profile[x])[:MAX_VALLEYS])
    for n in range(1, min(MAX_TOUCHING, len(valleys) + 1)):
        for cut in itertools.combinations(valleys, n):
            edges = [left, *(left + x for x in cut), right]
            if min(b - a for a, b in zip(edges, edges[1:])) >= least:
                ways.append(list(zip(edges, edges[1:])))
    return ways
