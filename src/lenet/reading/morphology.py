"""Grey and binary morphology and connected components on NumPy arrays, for the preprocessing.

SciPy's `ndimage` does all of this, but importing it costs about half a second,
and `lenet predict one.png` must stay under a second without torch; these are
the few operations the preprocessing needs, on images of at most a few hundred
pixels a side, written with vectorised NumPy.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _edges(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """`a` with its first row repeated `before` times above and its last `after` times below (by
    hand, into one new array: np.pad costs more than the filters themselves on small images, and
    concatenating broadcast views 3-4 times more than this, ~30 calls an image)."""
    n = a.shape[0]
    out = np.empty((before + n + after,) + a.shape[1:], a.dtype)
    out[:before] = a[0]
    out[before:before + n] = a
    out[before + n:] = a[-1]
    return out


def _filter(a: np.ndarray, size: int, reduce, axes=(0, 1)) -> np.ndarray:
    """`reduce` (np.maximum or np.minimum) over a size x size window of a 2-D array, edges repeated;
    separable, so one pass per axis (axis 1 as axis 0 of the transpose). A window of 1 changes nothing."""
    if size <= 1:
        return a
    before, after = (size - 1) // 2, size // 2
    for axis in axes:
        a = a.T if axis == 1 else a
        n = a.shape[0]
        p = _edges(a, before, after)
        if size <= 16:  # a few shifted copies: cheapest for small windows
            out = p[:n].copy()
            for i in range(1, size):
                reduce(out, p[i:i + n], out=out)
        else:
            out = reduce.reduce(sliding_window_view(p, size, axis=0), axis=-1)
        a = out.T if axis == 1 else out
    return a


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation with a size x size square, size odd (a binary mask works too)."""
    return _filter(a, size, np.maximum)


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey erosion with a size x size square."""
    return _filter(a, size, np.minimum)


def closing(a: np.ndarray, size: int) -> np.ndarray:
    """Removes dark features narrower than `size`: on light paper, the paper under the ink."""
    return min_filter(max_filter(a, size), size)


def opening(a: np.ndarray, size: int) -> np.ndarray:
    """Removes light features narrower than `size`: on a dark board, the board under the chalk."""
    return max_filter(min_filter(a, size), size)


def line_opening(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The pixels of `mask` that lie on a straight run of at least `length` along `axis`
    (1: horizontal, 0: vertical): binary opening with a 1 x length line."""
    if length > mask.shape[axis]:
        return np.zeros_like(mask)
    # Erode (outside the image counts as background), then dilate back with the mirrored window:
    # a run's pixels are those within reach of an eroded pixel.
    m = mask.T if axis == 1 else mask
    n, zeros = m.shape[0], np.zeros((length,) + m.shape[1:], bool)
    p = np.concatenate([zeros[:(length - 1) // 2], m, zeros[:length // 2]])
    eroded = p[:n].copy()
    for i in range(1, length):
        eroded &= p[i:i + n]
    p = np.concatenate([zeros[:length // 2], eroded, zeros[:(length - 1) // 2]])
    run = p[:n].copy()
    for i in range(1, length):
        run |= p[i:i + n]
    return run.T if axis == 1 else run


def box_blur(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window (size odd, edges repeated): cumulative sums along each axis,
    so the cost does not grow with the window."""
    if size <= 1:
        return a
    out = a.astype(np.float32)
    half = size // 2
    for axis in (0, 1):
        out = out.T if axis == 1 else out
        n = out.shape[0]
        c = np.cumsum(_edges(out, half + 1, half), axis=0, dtype=np.float64)
        out = ((c[size:size + n] - c[:n]) / size).astype(np.float32)
        out = out.T if axis == 1 else out
    return out


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask, 8-connected: (labels, count), labels 1..count in
    order of first pixel (row-major), 0 for the background.

    Union-find done on all edges at once: each round hooks every edge's two roots to the smaller
    one, then compresses paths by pointer jumping, until nothing changes; a few rounds suffice."""
    h, w = mask.shape
    where = np.flatnonzero(mask)
    out = np.zeros((h, w), np.int32)
    if where.size == 0:
        return out, 0
    index = np.full(h * w, -1, np.int64)
    index[where] = np.arange(where.size)
    grid = index.reshape(h, w)
    edges = []
    for a, b in ((grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :]),
                 (grid[:-1, :-1], grid[1:, 1:]), (grid[:-1, 1:], grid[1:, :-1])):
        both = (a >= 0) & (b >= 0)
        edges.append((a[both], b[both]))
    a = np.concatenate([e[0] for e in edges])
    b = np.concatenate([e[1] for e in edges])
    parent = np.arange(where.size)
    while True:
        pa, pb = parent[a], parent[b]
        low = np.minimum(pa, pb)
        before = parent.copy()
        np.minimum.at(parent, pa, low)
        np.minimum.at(parent, pb, low)
        while True:  # pointer jumping: every node straight to its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if np.array_equal(parent, before):
            break
    roots, labels = np.unique(parent, return_inverse=True)
    out.flat[where] = labels + 1
    return out, len(roots)


def components(labels: np.ndarray, count: int, weight: np.ndarray | None = None):
    """Per component 1..count: (pixels, ink, boxes): its pixel count, the sum of `weight` over it
    (its pixel count without one), and its box (left, top, right, bottom), right and bottom exclusive,
    as arrays of `count` rows."""
    rows, cols = np.nonzero(labels)
    index = labels[rows, cols] - 1
    pixels = np.bincount(index, minlength=count)
    ink = np.bincount(index, weights=weight[rows, cols] if weight is not None else None, minlength=count)
    boxes = np.empty((count, 4), np.int64)
    boxes[:, 0], boxes[:, 1] = labels.shape[1], labels.shape[0]
    boxes[:, 2:] = 0
    np.minimum.at(boxes[:, 0], index, cols)
    np.minimum.at(boxes[:, 1], index, rows)
    np.maximum.at(boxes[:, 2], index, cols + 1)
    np.maximum.at(boxes[:, 3], index, rows + 1)
    return pixels, ink, boxes
