"""The best path through a row's segmentation graph: which pieces of the row are its digits.

LeCun, Bottou, Bengio & Haffner (1998), recognition-based segmentation: every candidate piece
(number.py's graph: groups whole or cut, neighbours bridged) is scored by how much it looks like one
digit (the network's probability and the rejector's p(one digit), less what its shape costs), and
dynamic programming over the graph's nodes finds the path whose pieces score best. Pure functions
of the scores: the networks run in predict.weigh_row.
"""

from __future__ import annotations

import math

import numpy as np

from lenet.reading.morphology import Box
from lenet.reading.number import Piece
from lenet.reading.prediction import Prediction

SPLIT_COST = 0.1  # log-probability each digit costs a path: one more digit must earn its place
JUNK_WEIGHT = 1.0  # weight of a piece's log p(one digit) against log p(its digit) in a way's score
MARGIN_SEEN = 1.0  # rivals farther behind than this are not looked for (predict.CUT_MARGIN is less)
NARROW, NARROW_COST = 0.15, 1.0  # a piece narrower than NARROW x the row's height scores NARROW_COST less
# A piece wider than BROAD x the row's height scores BROAD_COST less per row height beyond: the
# rejector often takes a 1 run into its neighbour for one digit.
BROAD, BROAD_COST = 0.9, 2.0
SHORT, SHORT_COST = 0.7, 1.0  # a piece lower than SHORT x the row's height (a fragment) scores SHORT_COST less
BRIDGE_COST = 0.25  # a piece joining two groups scores this less: marks apart need more evidence to be one digit


def piece_score(prediction: Prediction, p_junk: float, weight: float = JUNK_WEIGHT) -> float:
    """How much a piece looks like one digit: log p(its digit) + weight x log p(one digit),
    so a confident answer on a half or a pair (which the rejector calls junk) scores low."""
    return float(np.log(max(prediction.probability, 1e-9)) + weight * np.log(max(1.0 - p_junk, 1e-9)))


def shape_cost(box: Box, height: int) -> float:
    """What a piece's shape takes off its score, in a row `height` tall: a sliver cut off a digit's
    side reads as a confident 1, a broken-off stroke as a confident anything, and two digits run
    together as one."""
    wide = box.width / height
    cost = NARROW_COST if wide < NARROW else 0.0
    cost += BROAD_COST * max(0.0, wide - BROAD)
    return cost + (SHORT_COST if box.height < SHORT * height else 0.0)


def best_path(pieces: list[Piece], nodes: int, scores: dict[int, float],
              predictions: dict[int, Prediction]) -> list[tuple[Piece, str | None, float]]:
    """The row's digits as (piece, what the nearest other path reads there or None, how far that
    path scores behind): the path through the row's pieces, from its left end to its
    right, whose pieces look most like digits (recognition-based segmentation, LeCun et al. 1998),
    by dynamic programming over the nodes. Of the paths through each piece off the best path that
    score within MARGIN_SEEN of it, one that reads otherwise over the same marks is the best path's
    rival there: the nearer such rival gives each digit's `other` and its margin (inf: none)."""
    def score(p: Piece) -> float:
        return scores[id(p.reading)] - SPLIT_COST

    ahead = forward(pieces, nodes, score)
    behind: list[float] = [-math.inf] * (nodes - 1) + [0.0]
    onward: list[Piece | None] = [None] * nodes  # the best piece to go on with from each node
    for p in sorted(pieces, key=lambda p: -p.end):
        if score(p) + behind[p.end] > behind[p.start]:
            behind[p.start], onward[p.start] = score(p) + behind[p.end], p
    path = trace(ahead, nodes - 1)
    best = ahead[-1][0]
    rivals: dict[int, tuple[float, str]] = {}
    on_path = {id(p) for p in path}
    for p in pieces:
        gap = best - (ahead[p.start][0] + score(p) + behind[p.end])
        if id(p) in on_path or not gap <= MARGIN_SEEN:
            continue
        other = [*trace(ahead, p.start), p, *ahead_from(onward, p.end)]
        here = [q for q in path if q.start < p.end and q.end > p.start]
        lo, hi = min(q.start for q in here), max(q.end for q in here)
        there = [q for q in other if q.start < hi and q.end > lo]
        text = "".join(str(predictions[id(q.reading)].digit) for q in there)
        if text != "".join(str(predictions[id(q.reading)].digit) for q in here):
            for q in here:
                if gap < rivals.get(id(q), (math.inf, ""))[0]:
                    rivals[id(q)] = (gap, text)
    return [(p, rivals[id(p)][1] if id(p) in rivals else None, rivals.get(id(p), (math.inf, ""))[0]) for p in path]


def forward(pieces: list[Piece], nodes: int, score) -> list[tuple[float, Piece | None]]:
    """Per node, the best score of a path from the row's left end to it and that path's last piece."""
    ahead: list[tuple[float, Piece | None]] = [(0.0, None), *[(-math.inf, None)] * (nodes - 1)]
    for p in sorted(pieces, key=lambda p: p.start):  # every piece's start settled before it is used
        if ahead[p.start][0] + score(p) > ahead[p.end][0]:
            ahead[p.end] = (ahead[p.start][0] + score(p), p)
    return ahead


def plain_path(pieces: list[Piece], nodes: int, scores: dict[int, float]) -> list[Piece]:
    """The best path alone, as `best_path` finds it, without looking for rivals."""
    return trace(forward(pieces, nodes, lambda p: scores[id(p.reading)] - SPLIT_COST), nodes - 1)


def differences(path: list[Piece], other: list[Piece], predictions: dict[int, Prediction]) -> dict[int, str]:
    """Where `other` reads otherwise than `path` (two paths across one row): between two nodes both
    pass through, what `other` reads when its digits there differ, for each of `path`'s pieces
    there (by the piece's id)."""
    shared = ({0} | {p.end for p in path}) & ({0} | {p.end for p in other})

    def stretches(pieces: list[Piece]) -> dict[int, list[Piece]]:
        out: dict[int, list[Piece]] = {}
        start, run = 0, []
        for p in pieces:
            run.append(p)
            if p.end in shared:
                out[start], start, run = run, p.end, []
        return out

    def text(pieces: list[Piece]) -> str:
        return "".join(str(predictions[id(p.reading)].digit) for p in pieces)

    theirs = stretches(other)
    return {id(q): text(theirs[start]) for start, mine in stretches(path).items()
            if text(mine) != text(theirs[start]) for q in mine}


def trace(ahead: list[tuple[float, Piece | None]], node: int) -> list[Piece]:
    """The best path's pieces from the row's left end to `node`."""
    path: list[Piece] = []
    while (piece := ahead[node][1]) is not None:
        path.append(piece)
        node = piece.start
    return path[::-1]


def ahead_from(onward: list[Piece | None], node: int) -> list[Piece]:
    """The best path's pieces from `node` to the row's right end."""
    path: list[Piece] = []
    while (piece := onward[node]) is not None:
        path.append(piece)
        node = piece.end
    return path
