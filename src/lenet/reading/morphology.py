"""Grey and binary morphology, box blur and connected components, for the reader.

OpenCV does each in C, in a few tens of microseconds on the images the reader works on (a few
hundred pixels a side); the definitions (edges repeated; outside the image is background for
`line_opening`; 8-connected components) are checked against plain NumPy and flood-fill
references in the tests. SciPy's `ndimage` would do the same, but takes far longer to import.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# The reader's images are small and a folder is spread over one process per core: OpenCV's own
# threads would only fight those processes.
cv2.setNumThreads(1)


class Box(NamedTuple):
    """A rectangle of an image: the reader's one convention (OpenCV's x, y, width, height is turned
    into it where OpenCV answers). A tuple, so it is written to JSON as [left, top, right, bottom]."""
    left: int
    top: int
    right: int   # exclusive
    bottom: int  # exclusive

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


# Grana's block-based labelling numbers components as the default (Spaghetti) does, and gathers
# the statistics in a fraction of the default's time.
LABELLING = cv2.CCL_GRANA
FEW = 4  # up to this many lines, `label_with_boxes` measures each one itself

_SQUARES: dict[int, np.ndarray] = {}


def _square(size: int) -> np.ndarray:
    kernel = _SQUARES.get(size)
    if kernel is None:
        kernel = _SQUARES[size] = np.ones((size, size), np.uint8)
    return kernel


def _as_cv(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """`a` as an array OpenCV filters (uint8 for masks, float32 for grey), and whether it was a mask."""
    if a.dtype == bool:
        return a.view(np.uint8), True
    if a.dtype in (np.uint8, np.float32):
        return a, False
    return a.astype(np.float32), False


def _morph(a: np.ndarray, size: int, op) -> np.ndarray:
    if size <= 1:
        return a
    src, mask = _as_cv(np.ascontiguousarray(a))
    out = op(src, _square(size), borderType=cv2.BORDER_REPLICATE)
    return out.view(bool) if mask else out


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation with a size x size square, size odd, edges repeated (a binary mask works too)."""
    return _morph(a, size, cv2.dilate)


def max_filter_1d(a: np.ndarray, size: int) -> np.ndarray:
    """The maximum over a window of `size` (odd) along a 1-D array, its ends repeated."""
    if size <= 1:
        return a
    src, _ = _as_cv(np.ascontiguousarray(a))
    out = cv2.dilate(src.reshape(1, -1), np.ones((1, size), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return out.reshape(-1)


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Grey erosion with a size x size square, edges repeated."""
    return _morph(a, size, cv2.erode)


def closing(a: np.ndarray, size: int) -> np.ndarray:
    """Removes dark features narrower than `size`: on light paper, the paper under the ink
    (`max_filter`, then `min_filter`, in one OpenCV call)."""
    return _morph(a, size, lambda src, kernel, borderType: cv2.morphologyEx(src, cv2.MORPH_CLOSE, kernel,
                                                                             borderType=borderType))


def opening(a: np.ndarray, size: int) -> np.ndarray:
    """Removes light features narrower than `size`: on a dark board, the board under the chalk
    (`min_filter`, then `max_filter`, in one OpenCV call)."""
    return _morph(a, size, lambda src, kernel, borderType: cv2.morphologyEx(src, cv2.MORPH_OPEN, kernel,
                                                                             borderType=borderType))


def line_opening(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The pixels of `mask` that lie on a straight run of at least `length` along `axis`
    (1: horizontal, 0: vertical): binary opening with a 1 x length line, outside the image
    counting as background."""
    if length > mask.shape[axis]:
        return np.zeros_like(mask)
    if axis == 0:  # OpenCV opens rows of contiguous pixels faster than columns: by rows of the transpose
        return transposed(line_opening(transposed(mask), length, 1))
    # Each row (column) is opened on its own: only those holding `length` pixels can keep any.
    counts = cv2.reduce(np.ascontiguousarray(mask).view(np.uint8), axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    full = np.flatnonzero(counts.ravel() >= length)
    out = np.zeros_like(mask)
    if full.size:
        if axis == 1:
            out[full] = _line_opening(mask[full], length, axis)
        else:
            out[:, full] = _line_opening(mask[:, full], length, axis)
    return out


def transposed(a: np.ndarray) -> np.ndarray:
    """`a.T` as a contiguous array (OpenCV's transpose for masks and float32: a fraction of NumPy's copy)."""
    if a.ndim == 2 and a.dtype in (np.bool_, np.uint8, np.float32):
        out = cv2.transpose(np.ascontiguousarray(a).view(np.uint8) if a.dtype == np.bool_ else np.ascontiguousarray(a))
        return out.view(bool) if a.dtype == np.bool_ else out
    return np.ascontiguousarray(a.T)


def _line_opening(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    kernel = np.ones((1, length) if axis == 1 else (length, 1), np.uint8)
    # Erode, then dilate back with the mirrored window: a run's pixels are those within reach of
    # an eroded pixel (the anchors mirror each other, so even lengths line up too).
    first, second = ((length - 1) // 2, 0), (length // 2, 0)
    if axis == 0:
        first, second = first[::-1], second[::-1]
    src = np.ascontiguousarray(mask).view(np.uint8)
    eroded = cv2.erode(src, kernel, anchor=first, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(eroded, kernel, anchor=second, borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)


def box_blur(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window (size odd, edges repeated), float32."""
    if size <= 1:
        return a
    return cv2.blur(np.ascontiguousarray(a, np.float32), (size, size), borderType=cv2.BORDER_REPLICATE)


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask, 8-connected: (labels, count), labels 1..count
    (in no promised order), 0 for the background."""
    src = np.ascontiguousarray(mask).view(np.uint8)
    # Labelled on the pixels' bounding box from an even row and column: Grana's 2x2 blocks then
    # fall as on the whole image, so the components are numbered as there, on less.
    x0, y0, w, h = cv2.boundingRect(src)
    if w == 0:
        return np.zeros(mask.shape, np.int32), 0
    x1, y1, x0, y0 = x0 + w, y0 + h, x0 & ~1, y0 & ~1
    count, part = cv2.connectedComponentsWithAlgorithm(src[y0:y1, x0:x1], 8, cv2.CV_32S, LABELLING)
    if part.shape == mask.shape:
        return part, count - 1
    labels = np.zeros(mask.shape, np.int32)
    labels[y0:y1, x0:x1] = part
    return labels, count - 1


def label_with_boxes(mask: np.ndarray, lines: bool = False) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """`label`'s (labels, count) with each component's pixel count and box (left, top, right,
    bottom), in one pass. `lines`: the mask holds a few lines, most likely (runs of a line
    opening): up to FEW components are then measured apart, quicker than OpenCV's statistics."""
    src = np.ascontiguousarray(mask).view(np.uint8)
    # Labelled on the pixels' bounding box (in no promised order, so any offset will do).
    x0, y0, w, h = cv2.boundingRect(src)
    if w == 0:
        return np.zeros(mask.shape, np.int32), 0, np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    crop = src[y0:y0 + h, x0:x0 + w]
    n = FEW + 2
    if lines:
        n, part = cv2.connectedComponentsWithAlgorithm(crop, 8, cv2.CV_32S, LABELLING)
    if n - 1 > FEW:
        n, part, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(crop, 8, cv2.CV_32S, LABELLING)
    labels = np.zeros(mask.shape, np.int32)
    labels[y0:y0 + h, x0:x0 + w] = part
    if n - 1 <= FEW:  # each line's box and count directly
        pieces = [crop] if n == 2 else [(part == i).view(np.uint8) for i in range(1, n)]
        rects = [cv2.boundingRect(p) for p in pieces]
        boxes = np.array([(x0 + x, y0 + y, x0 + x + bw, y0 + y + bh) for x, y, bw, bh in rects], np.int64)
        return labels, n - 1, np.array([cv2.countNonZero(p) for p in pieces], np.int64), boxes
    boxes = stats[1:, :4].astype(np.int64)  # left, top, width, height
    boxes[:, :2] += (x0, y0)
    boxes[:, 2:] += boxes[:, :2]
    return labels, n - 1, stats[1:, cv2.CC_STAT_AREA].astype(np.int64), boxes


def components(labels: np.ndarray, count: int, weight: np.ndarray | None = None):
    """Per component 1..count of `labels` (which may leave gaps inside a component): (pixels, ink,
    boxes): its pixel count, the sum of `weight` over it (its pixel count without one), and its box
    (left, top, right, bottom), right and bottom exclusive, as arrays of `count` rows."""
    boxes = np.empty((count, 4), np.int64)
    boxes[:, 0], boxes[:, 1] = labels.shape[1], labels.shape[0]
    boxes[:, 2:] = 0
    # Everything on the labelled pixels' bounding box: raster order, so the same sums, on less.
    inked = labels > 0  # found once, used for the box, the one component's sums and the pieces
    x0, y0, w, h = cv2.boundingRect(inked.view(np.uint8))
    if count == 0 or w == 0:
        return np.zeros(count, np.int64), np.zeros(count), boxes
    labels, inked = labels[y0:y0 + h, x0:x0 + w], inked[y0:y0 + h, x0:x0 + w]
    if count == 1:  # one component: its box is the bounding box, its sums need no binning
        box = np.array([[x0, y0, x0 + w, y0 + h]], np.int64)
        pixels = np.array([cv2.countNonZero(inked.view(np.uint8))], np.int64)
        ink = (np.array([float(weight[y0:y0 + h, x0:x0 + w][inked].sum(dtype=np.float64))])
               if weight is not None else pixels.astype(np.float64))
        return pixels, ink, box
    flat = labels.ravel()
    pixels = np.bincount(flat, minlength=count + 1)[1:]
    ink = (np.bincount(flat, weights=weight[y0:y0 + h, x0:x0 + w].ravel(), minlength=count + 1)[1:]
           if weight is not None else pixels.astype(np.float64))
    # Boxes from OpenCV's statistics of the connected pieces: each piece lies in one component,
    # so a component's box spans its pieces' boxes.
    n, pieces, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(np.ascontiguousarray(inked).view(np.uint8),
                                                                        8, cv2.CV_32S, LABELLING)
    stats = stats[1:].astype(np.int64)
    corners = np.stack([x0 + stats[:, cv2.CC_STAT_LEFT], y0 + stats[:, cv2.CC_STAT_TOP],
                        x0 + stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH],
                        y0 + stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]], 1)
    owner = np.zeros(n, np.int64)
    owner[pieces.ravel()] = flat
    owner = owner[1:] - 1
    np.minimum.at(boxes[:, 0], owner, corners[:, 0])
    np.minimum.at(boxes[:, 1], owner, corners[:, 1])
    np.maximum.at(boxes[:, 2], owner, corners[:, 2])
    np.maximum.at(boxes[:, 3], owner, corners[:, 3])
    return pixels, ink, boxes
