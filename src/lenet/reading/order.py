"""Order statistics of the reader's arrays: NumPy's medians and percentiles, the same numbers, by
one vectorised sort, or on large arrays by sorting one bin of a histogram (np.median's and
np.percentile's own overhead is most of their time on arrays of a few thousand pixels)."""

from __future__ import annotations

import cv2
import numpy as np

# From this many float32 values on, the few values wanted are picked from one bin of a histogram
# (`ranked`), not from sorting them all.
SELECT = 24576


def row_medians(a: np.ndarray) -> np.ndarray:
    """np.median(a, axis=1), the same numbers: NumPy's vectorised sort is quicker than its selection,
    and quicker still on rows that lie contiguous (an image's columns: copied as rows first)."""
    ordered = np.sort(np.ascontiguousarray(a), axis=1)
    middle = a.shape[1] // 2
    return ordered[:, middle] if a.shape[1] % 2 else (ordered[:, middle - 1] + ordered[:, middle]) / 2


def median(a: np.ndarray) -> float:
    """np.median of all of `a`, the same number, by one vectorised sort or `ranked` (np.median's own
    overhead is most of its time on the reader's arrays)."""
    if a.size == 0:
        return float(np.median(a))
    middle = a.size // 2
    if not selects(a):
        ordered = np.sort(a, axis=None)
        return float(ordered[middle] if ordered.size % 2 else (ordered[middle - 1] + ordered[middle]) / 2)
    lower, upper = ranked(a, [middle - 1, middle] if a.size % 2 == 0 else [middle, middle])
    return float(upper if a.size % 2 else (lower + upper) / 2)


def percentiles(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """np.percentile(a, qs) (its default, linear method), the same numbers, by one vectorised sort
    (or `ranked`): NumPy's own index, weight and interpolation steps, written out (for float arrays,
    one q at a time in Python floats: the same IEEE operations, without a dozen tiny array operations)."""
    if a.size == 0:
        return np.percentile(a, qs)
    n = a.size
    if a.dtype in (np.float32, np.float64):
        spans = []  # each q's index and the rank below it (-1: at the top, the last value)
        for q in qs:
            index = (n - 1) * (float(q) / 100)
            spans.append((index, -1 if index >= n - 1 else int(np.floor(index))))
        ranks = [rank for _, below in spans for rank in ((n - 1, n - 1) if below == -1 else (below, below + 1))]
        values = ranked(a, ranks) if selects(a) else np.sort(a, axis=None)[ranks]
        out = []
        for i, (index, below) in enumerate(spans):
            gamma = index - below
            lo, hi = values[2 * i], values[2 * i + 1]
            step = float(hi - lo)  # in the array's own precision, as NumPy takes it
            out.append(float(hi) - step * (1 - gamma) if gamma >= 0.5 else float(lo) + step * gamma)
        return np.array(out, np.float64)
    ordered = np.sort(a, axis=None)
    at = (n - 1) * np.true_divide(np.asarray(qs, np.float64), 100)
    low = np.floor(at)
    low[at >= n - 1] = -1  # at the top: the last value, as NumPy takes it
    low = low.astype(np.intp)
    high = np.where(low == -1, -1, low + 1)
    frac = at - low
    lows, highs = ordered[low], ordered[high]
    steps = highs - lows
    result = np.add(lows, steps * frac)
    np.subtract(highs, steps * (1 - frac), out=result, where=frac >= 0.5, casting="unsafe", dtype=type(result.dtype))
    return result


def selects(a: np.ndarray) -> bool:
    """Whether `ranked` picks the values of `a` (large, float32, finite), rather than one sort."""
    return a.size >= SELECT and a.dtype == np.float32 and a.ndim <= 2 and bool(cv2.checkRange(a)[0])


def ranked(a: np.ndarray, ranks: list[int]) -> np.ndarray:
    """The values at `ranks` (0: the smallest) of all of `a` (`selects(a)`) in sorted order, as
    np.sort places them. The array is mapped to 256 bins by a non-decreasing map (IEEE subtraction and
    multiplication, then rounding), so each bin holds one stretch of the sorted order: the bins'
    counts say which bin holds each rank, and only that bin's values are sorted."""
    lo, hi = cv2.minMaxLoc(a)[:2]
    if lo == hi:
        return np.full(len(ranks), a.flat[0], a.dtype)
    scaled = np.subtract(a, np.float32(lo))
    np.multiply(scaled, np.float32(255 / (hi - lo)), out=scaled)
    bins = cv2.convertScaleAbs(scaled)  # 0 .. 255 and a hair, each rounded to the nearest bin
    bins = bins.reshape(a.shape)
    ends = np.cumsum(cv2.calcHist([bins], [0], None, [256], [0, 256]).ravel().astype(np.int64))
    out = np.empty(len(ranks), a.dtype)
    held: dict[int, np.ndarray] = {}
    for i, (rank, b) in enumerate(zip(ranks, np.searchsorted(ends, ranks, side="right").tolist(), strict=True)):
        if b not in held:
            held[b] = np.sort(a[bins == b])
        out[i] = held[b][rank - (int(ends[b - 1]) if b else 0)]
    return out
