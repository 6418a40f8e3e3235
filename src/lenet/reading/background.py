"""The paper's (or the board's) light under the ink, estimated on a small copy of the image.

A morphological closing of the copy's block minima is the paper under dark ink; an opening of its
block maxima is the board under light ink (chalk). The window is wider than a pen's stroke and
narrower than the light's changes, so light falling off across a page, or a dark board in a light
room, is taken away and not read as ink (ink.py, step 1).
"""

from __future__ import annotations

import cv2
import numpy as np

from lenet.errors import NoDigit
from lenet.reading import morphology as mo
from lenet.reading.order import median, percentiles

BACKGROUND_SIDE = 96  # the background is estimated on a copy this small, then smoothly enlarged
MIN_CONTRAST = 0.08  # below this the image is blank paper (or blank canvas)
PLAIN = 0.1        # a border whose grey varies less than this is plain paper


def resize(values: np.ndarray, shape: tuple[int, int], how=None) -> np.ndarray:
    """A float array resized to (H, W): by area when reducing, bilinear when enlarging."""
    from PIL import Image

    if values.shape == tuple(shape):
        return values
    if how is None:
        how = Image.Resampling.BOX if shape[0] <= values.shape[0] else Image.Resampling.BILINEAR
    floats = np.ascontiguousarray(values, np.float32)
    # Pillow reads the array where it lies (no copy), as its "F" mode lays floats out.
    image = Image.frombuffer("F", (floats.shape[1], floats.shape[0]), floats, "raw", "F", 0, 1)
    return np.asarray(image.resize((shape[1], shape[0]), how))



def reduced(values: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`values` reduced by area so its longer side is at most `side`, and the factor it was reduced by."""
    shape, factor = reduced_shape(values.shape, side)
    return (values, factor) if factor == 1 else (resize(values, shape), factor)



def reduced_shape(shape: tuple[int, ...], side: int) -> tuple[tuple[int, int], float]:
    """The (H, W) `reduced` gives an array of `shape`, and its factor."""
    factor = max(shape) / side
    if factor <= 1:
        return (shape[0], shape[1]), 1.0
    return (max(1, round(shape[0] / factor)), max(1, round(shape[1] / factor))), factor



def pooled(values: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """`values` reduced to `shape` by block maximum and by block minimum (blocks cover it evenly),
    and the blocks' edges, for `expand`."""
    ys = np.linspace(0, values.shape[0], shape[0] + 1).round().astype(int)
    xs = np.linspace(0, values.shape[1], shape[1] + 1).round().astype(int)
    if tuple(shape) == values.shape:  # blocks of one pixel: the image itself
        return values, values, (ys, xs)
    if values.dtype == np.float32 and values.shape[0] % shape[0] == 0 and values.shape[1] % shape[1] == 0:
        # Blocks of one size: each block's extreme is OpenCV's filter at the block's first pixel.
        size = (values.shape[0] // shape[0], values.shape[1] // shape[1])
        kernel = np.ones(size, np.uint8)
        hi = cv2.dilate(values, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[::size[0], ::size[1]]
        lo = cv2.erode(values, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[::size[0], ::size[1]]
        return np.ascontiguousarray(hi), np.ascontiguousarray(lo), (ys, xs)
    # Each block's rows (and columns) gathered at once, the last repeated where a block is shorter:
    # a few whole-array reductions instead of reduceat's slow walk along the second axis.
    rows, cols = block_index(ys), block_index(xs)
    by_rows = values[rows]  # (blocks down, rows in a block, width)
    hi = by_rows.max(1)[:, cols].max(2)
    lo = by_rows.min(1)[:, cols].min(2)
    return hi, lo, (ys, xs)



def block_index(edges: np.ndarray) -> np.ndarray:
    """(blocks, longest block) indices of each block's members, its last member repeated to fill."""
    starts, ends = edges[:-1], edges[1:]
    return np.minimum(starts[:, None] + np.arange(int((ends - starts).max()))[None], (ends - 1)[:, None])



def expand(coarse: np.ndarray, edges: tuple) -> np.ndarray:
    """Each block's value over the block's pixels (the inverse of `pooled`'s layout). Blocks, not a
    smooth enlargement: a smooth one would spread a board's edge into a band that looks like ink."""
    ys, xs = edges
    if coarse.shape == (len(ys) - 1, len(xs) - 1) and ys[-1] == len(ys) - 1 and xs[-1] == len(xs) - 1:
        return coarse  # blocks of one pixel
    # Each pixel's block by index, the columns gathered first (on the small array), then whole
    # rows: quicker than repeating along both axes.
    rows, cols = np.repeat(np.arange(len(ys) - 1), np.diff(ys)), np.repeat(np.arange(len(xs) - 1), np.diff(xs))
    return np.take(coarse[:, cols], rows, 0)



def local_level(values: np.ndarray, size: int) -> np.ndarray:
    """The median grey within a `size`-wide square round each pixel (on a copy reduced to a few
    pixels a window, then enlarged): the paper (or board) where it is, as the majority of what
    lies round the ink. A median keeps a shadow's edge where it is, as a mean would not."""
    step = max(1, size // 8)
    shape = (max(1, round(values.shape[0] / step)), max(1, round(values.shape[1] / step)))
    coarse = resize(values, shape)
    grey = cv2.medianBlur(np.clip(coarse * 255, 0, 255).astype(np.uint8), max(3, round(size / step)) | 1)
    return resize(grey.astype(np.float32) / 255, values.shape)



def border_of(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])



def background(small: np.ndarray, dark_minority: float):
    """(paper, board, dark ink, light ink, reach) of the analysis copy: step 1.

    The window is an eighth of the image: wider than a pen's stroke, narrower than the light's
    changes (and its error at the image's edge, where a closing cannot see past the border, stays
    small). A marker's strokes can be wider: measured around the ink found, they widen the window
    (up to a third). `reach` is half the window at the analysis scale."""
    coarse = reduced_shape(small.shape, BACKGROUND_SIDE)[0]
    window = max(3, round(max(coarse) / 8)) | 1
    copies, floor = pooled(small, coarse), plain_floor(small, dark_minority)  # the same for any window
    paper, board, dark_ink, light_ink = backgrounds(small, copies, window, floor)
    either = np.maximum(dark_ink, light_ink)
    if float(mo.box_blur(either, 3).max()) < MIN_CONTRAST:
        raise NoDigit("no ink found: the image is blank or has too little contrast")
    near = mo.max_filter(either > 0.5 * float(either.max()), max(3, window * small.shape[0] // coarse[0] // 2) | 1)
    lo, hi = percentiles(small[near], [2, 98])
    dark_side = (small < (lo + hi) / 2) & near
    # Either side may be the ink: the window must be wider than the wider one's strokes (their
    # mean width, x2.2 for the thickest places: corners and crossings).
    width = max(stroke_width(dark_side), stroke_width(near & ~dark_side))
    broad = round(2.2 * width * coarse[0] / small.shape[0]) | 1
    if broad > window:
        window = min(broad, max(3, max(coarse) // 3) | 1)
        paper, board, dark_ink, light_ink = backgrounds(small, copies, window, floor)
    reach = max(3, window * small.shape[0] // coarse[0] // 2) | 1
    return paper, board, dark_ink, light_ink, reach



def backgrounds(small: np.ndarray, copies: tuple, window: int, floor: float | None):
    """(paper, board, dark ink, light ink) of `small` with a window-wide filter on its coarse
    `copies` (`pooled`'s block maxima, minima and blocks), the paper at least `floor` (`plain_floor`).

    The closing of the copy's block minima is the paper under dark ink, the opening of its block
    maxima the board under light ink. Pooling by the minimum keeps the paper estimate on the dark
    side of any edge (a board's, a shadow's), so an edge is never taken for ink; the maximum does the
    same for the board. Ink either way is relative to the light where it is: light falls on paper
    and ink alike, so dark ink is the share of the paper's light it takes away; light ink (chalk)
    is measured against the brightest within reach."""
    light, darkest, blocks = copies
    paper = expand(mo.closing(darkest, window), blocks)
    if floor is not None:
        paper = np.maximum(paper, floor)
    coarse_board = mo.opening(light, window)
    board = expand(coarse_board, blocks)
    dark_ink = np.divide(paper - small, np.maximum(paper, 0.05))
    np.clip(dark_ink, 0, None, out=dark_ink)
    # Where there is no chalk within reach, top - board is only the board's noise: a floor of a
    # third of the strongest contrast keeps that noise from counting as ink. (Block by block: the
    # same numbers as on the expanded arrays, with fewer of them.)
    spread = mo.max_filter(light, window) - coarse_board
    light_ink = np.divide(small - board, expand(np.maximum(spread, max(MIN_CONTRAST, float(spread.max()) / 3)), blocks))
    np.clip(light_ink, 0, None, out=light_ink)
    return paper, board, dark_ink, light_ink



def plain_floor(small: np.ndarray, dark_minority: float):
    """The least the paper can be on plain paper (an even, light border all round, and dark in less
    than `dark_minority` of the image: not a board on a wall): the border's level, so the paper is
    at least that even inside a marker's blot wider than the window. None on other images."""
    lo, mid, hi = percentiles(border_of(small), [5, 50, 95])
    if (hi - lo < PLAIN and mid > median(small) - PLAIN / 2
            and (small < (lo + small.min()) / 2).mean() < dark_minority):
        return lo
    return None



def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / length of the ink's edges (a stroke of width w and
    length L has area wL and edges about 2L)."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)  # a border of background (np.pad costs more)
    padded[1:-1, 1:-1] = mask
    # Each ink pixel's side on background is one change between neighbours along a row or a column.
    edges = (np.count_nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])
             + np.count_nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1]))
    return 2 * float(np.count_nonzero(mask)) / max(edges, 1)
