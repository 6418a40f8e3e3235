"""Order statistics of the reader's arrays: NumPy's medians and percentiles, the same numbers, by
one vectorised sort (np.median's and np.percentile's own overhead is most of their time on arrays
of a few thousand pixels)."""

from __future__ import annotations

import numpy as np


def row_medians(a: np.ndarray) -> np.ndarray:
    """np.median(a, axis=1), the same numbers: NumPy's vectorised sort is quicker than its selection."""
    ordered = np.sort(a, axis=1)
    middle = a.shape[1] // 2
    return ordered[:, middle] if a.shape[1] % 2 else (ordered[:, middle - 1] + ordered[:, middle]) / 2


def median(a: np.ndarray) -> float:
    """np.median of all of `a`, the same number, by one vectorised sort (np.median's own overhead
    is most of its time on the reader's arrays)."""
    if a.size == 0:
        return float(np.median(a))
    ordered = np.sort(a, axis=None)
    middle = ordered.size // 2
    return float(ordered[middle] if ordered.size % 2 else (ordered[middle - 1] + ordered[middle]) / 2)


def percentiles(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """np.percentile(a, qs) (its default, linear method), the same numbers, by one vectorised sort:
    NumPy's own index, weight and interpolation steps, written out (for float arrays, one q at a
    time in Python floats: the same IEEE operations, without a dozen tiny array operations)."""
    if a.size == 0:
        return np.percentile(a, qs)
    ordered = np.sort(a, axis=None)
    n = ordered.size
    if ordered.dtype in (np.float32, np.float64):
        out = []
        for q in qs:
            index = (n - 1) * (float(q) / 100)
            below = -1 if index >= n - 1 else int(np.floor(index))  # at the top: the last value
            gamma = index - below
            lo, hi = ordered[below], ordered[-1 if below == -1 else below + 1]
            step = float(hi - lo)  # in the array's own precision, as NumPy takes it
            out.append(float(hi) - step * (1 - gamma) if gamma >= 0.5 else float(lo) + step * gamma)
        return np.array(out, np.float64)
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
