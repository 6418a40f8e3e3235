"""Find the ink in people's images: background, polarity, strength, form lines, marks.

0. paper as people have it (paper.py): a note on a desk is read on the note alone, the
   printed lines of squared, ruled or guide-lined paper are lifted out of the grey, and a digit
   that fills a crop is looked at again inside a frame of paper;
1. the background is estimated locally (a morphological closing for dark ink,
   an opening for light ink, on a coarse copy) and taken away, so light
   falling off across a page, or a dark board in a light room, is not ink;
2. the polarity is the majority around the ink (paper is most of what
   surrounds a digit), not the image's border;
3. ink is measured against the light where it is (dark ink: the share of the
   paper's light it takes away); ink is what reaches half the strongest, and
   fainter strokes joined to it (hysteresis), so a calligraphy hairline is kept;
4. long straight lines (form boxes, underlines, ruled lines) are taken out (lines.py);
5. what is left falls into connected marks, specks left out.

Every box here is (left, top, right, bottom), right and bottom exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lenet.errors import ImageError, NoDigit
from lenet.reading import morphology as mo
from lenet.reading.image import MIN_SIDE, stretched
from lenet.reading.lines import form_lines
from lenet.reading.morphology import Box
from lenet.reading.order import median, percentiles, row_medians
from lenet.reading.paper import framed, sheet_only, unlined

ANALYSIS_SIDE = 192  # ink is found on a copy at most this big (a small digit: on its crop, again),
LARGE_SIDE = 384     # or this, for images more than twice as big: a small digit in a big photo stays findable
BACKGROUND_SIDE = 96  # the background is estimated on a copy this small, then smoothly enlarged
MIN_CONTRAST = 0.08  # below this the image is blank paper (or blank canvas)
STRONG, WEAK = 0.5, 0.22  # ink: above half the strongest ink, or above WEAK and joined to such ink
LINE_CONTRAST = 0.04  # a paper's ruling is at least this much darker than the paper beside it
PLAIN = 0.1        # a border whose grey varies less than this is plain paper
DARK_MINORITY = 0.35  # plain paper is dark in less than this share of a canvas (web/lenet.js: the same)
DARK_ON_PAPER = 0.5   # or of a photo or scan: a digit stretched to fill its box is dark in more than a third
NO_INK = "no ink found: nothing stands out from the background"
# grey() of a canvas's alpha, each level as NumPy computes 1 - alpha / 255 in float32: one lookup.
CLEAR = 1 - np.arange(256, dtype=np.float32) / 255



@dataclass(frozen=True)
class Mark:
    """One connected mark of ink, at the analysis scale."""
    label: int      # its number in `Ink.labels`
    pixels: int     # how many pixels it covers
    ink: float      # its summed ink strength: what ranks marks
    box: Box


@dataclass(frozen=True)
class Ink:
    """What `find_ink` saw in one image, at its analysis scale."""
    ink: np.ndarray        # ink strength in [0, 1], 1 = the strongest ink
    mask: np.ndarray       # the ink kept: specks and form lines taken out
    marks: list[Mark]      # connected marks of `mask`, most ink first
    labels: np.ndarray     # their labels (0: no mark)
    contrast: np.ndarray   # ink against its background, in grey levels (0..1)
    factor: float          # image pixels per analysis pixel
    framed: bool = False   # found again inside a frame of paper: the digit fills the image (a tight crop)


def selected(labels: np.ndarray, marks: list[Mark]) -> np.ndarray:
    """The pixels of `labels` that belong to `marks` (a lookup table: one pass, no sorting)."""
    table = np.zeros(int(labels.max()) + 1, bool)
    table[[m.label for m in marks]] = True
    return table[labels]


def grey(pixels: np.ndarray) -> np.ndarray:
    """Float grey in [0, 1] from any grey, grey+alpha, RGB or RGBA array. A drawing on a
    transparent canvas becomes dark ink on white (the strokes are where it is opaque)."""
    values = np.asarray(pixels)
    if (values.dtype == np.uint8 and values.ndim == 3 and values.shape[2] in (2, 4)
            and min(values.shape[:2]) >= MIN_SIDE):
        alpha = np.ascontiguousarray(values[..., -1])
        low, high = cv2.minMaxLoc(alpha)[:2]
        if high - low > 127:  # as below, on the one channel that matters
            return cv2.LUT(alpha, CLEAR)
    values = stretched(values).astype(np.float32) if values.dtype != np.uint8 else values.astype(np.float32) / 255
    if values.ndim == 3 and values.shape[2] in (2, 4):
        alpha = values[..., -1]
        if alpha.max() - alpha.min() > 0.5:
            # Ink drawn on a transparent background (an HTML canvas export), whatever its colour.
            return 1 - alpha
        values = values[..., :-1]
    if values.ndim == 3:
        values = (values[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if values.shape[2] >= 3
                  else values[..., 0])
    if values.ndim != 2:
        raise ImageError(f"expected an image array (H, W) or (H, W, C), got shape {np.shape(pixels)}")
    if min(values.shape) < MIN_SIDE:
        raise ImageError(f"{values.shape[1]}x{values.shape[0]} is too small to hold a digit")
    return values


def resize(values: np.ndarray, shape: tuple[int, int], how=None) -> np.ndarray:
    """A float array resized to (H, W): by area when reducing, bilinear when enlarging."""
    from PIL import Image

    if values.shape == tuple(shape):
        return values
    if how is None:
        how = Image.Resampling.BOX if shape[0] <= values.shape[0] else Image.Resampling.BILINEAR
    image = Image.fromarray(values.astype(np.float32, copy=False), "F")
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
    return np.repeat(np.repeat(coarse, np.diff(ys), axis=0), np.diff(xs), axis=1)


def border_of(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


def analysis_side(shape: tuple[int, ...]) -> int:
    """The longer side of the copy an image of `shape` is analysed on."""
    return ANALYSIS_SIDE if max(shape) <= 2 * ANALYSIS_SIDE else LARGE_SIDE


def find_ink(image_grey: np.ndarray, side: int | None = None, crop_sized: bool | None = None) -> Ink:
    """Find the ink in a grey image (the module's steps), on a copy at most `side` pixels long
    (by default `analysis_side`). `crop_sized`: whether the image may be a crop of one digit, by
    default when it is analysed at ANALYSIS_SIDE (a closer look inside a photo is not)."""
    small, factor = reduced(image_grey, side or analysis_side(image_grey.shape))
    plain = plain_ink(small)
    framed = False
    if plain is not None:  # ink on an even background needs no estimate of it (a canvas export)
        ink, contrast, peak = plain
        ink, mask = strong_ink(ink, peak)
        mask &= ~form_lines(mask)
    elif canvas(small):
        # No paper, lines or desk to take out; and read exactly as the page's own reader
        # (web/lenet.js) reads it.
        ink, mask, contrast = ink_and_mask(unruled(small), DARK_MINORITY)
    else:
        if crop_sized is None:
            crop_sized = analysis_side(image_grey.shape) == ANALYSIS_SIDE
        levels = percentiles(small, [2, 98])  # the sheet's test and, when nothing is painted over, the crop's
        lined = unruled(unlined(sheet_only(small, levels), page=not crop_sized))
        ink, mask, contrast, framed = ink_on_paper(lined, crop_sized, levels if lined is small else None)
    labels, marks = marks_of(mask, ink)
    return Ink(ink, mask, marks, labels, contrast, factor, framed)


def canvas(small: np.ndarray) -> bool:
    """Whether `small` is a drawing on a canvas: one exact grey on at least half its border (paper,
    photographed or scanned, always has some noise)."""
    border = np.sort(border_of(small))
    half = border.size // 2  # the border's length is even: 2 (H + W)
    # A grey on half the border or more covers, once sorted, the place just below or at the middle.
    return any(np.count_nonzero(border == v) >= half for v in (border[half - 1], border[half]))


def ink_on_paper(small: np.ndarray, tight: bool,
                 levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Steps 1-4 on an analysis copy that is not a plain canvas: (ink, mask, contrast, framed). With
    `tight` (an image small enough to be a crop of one digit), a digit that fills the image (its
    ink reaches three edges or more, or its fringe, a quarter of the way from the paper to the
    ink, all four) is found again inside a frame of paper (paper.framed), where the background's
    estimate can see past the edges. Not light paper inside a darker border: that is a sheet on
    a desk, not a crop. `levels`: percentiles(small, [2, 98]) when already known."""
    ink, mask, contrast = ink_and_mask(small, DARK_ON_PAPER)
    if not tight:
        return ink, mask, contrast, False
    lo, hi = levels if levels is not None else percentiles(small, [2, 98])
    if edges_near(mask) < 3 and edges_near(small < (lo + 3 * hi) / 4) < 4:
        return ink, mask, contrast, False
    light = light_corners(small, (lo, hi))
    if light and median(border_of(small)) < (lo + hi) / 2:
        return ink, mask, contrast, False
    inside, pad = framed(small, float(np.percentile(small, 98 if light else 2)))
    try:
        ink, mask, contrast = (a[pad:-pad, pad:-pad] for a in ink_and_mask(inside, DARK_ON_PAPER))
    except NoDigit:
        return (*ink_and_mask(small, DARK_ON_PAPER), False)
    if not mask.any():
        raise NoDigit(NO_INK)
    return ink, mask, contrast, True


def light_corners(small: np.ndarray, levels) -> bool:
    """Whether the paper of a digit that fills the image is light: most of its four corners are
    (a tight crop's corners are mostly paper, whatever the digit); a tie goes to light paper,
    as people's paper mostly is. `levels`: percentiles(small, [2, 98])."""
    lo, hi = levels
    k = max(1, min(small.shape) // 10)
    corners = [small[:k, :k], small[:k, -k:], small[-k:, :k], small[-k:, -k:]]
    return sum(median(c) > (lo + hi) / 2 for c in corners) >= 2


def ink_and_mask(small: np.ndarray, dark_minority: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4: (ink, mask, contrast) of an analysis copy (`dark_minority`: see `backgrounds`)."""
    paper, board, dark_ink, light_ink, reach = background(small, dark_minority)
    peaks = peak_of(dark_ink), peak_of(light_ink)
    dark = dark_is_ink(small, dark_ink, light_ink, reach, peaks)
    ink = dark_ink if dark else light_ink
    contrast = (paper - small) if dark else (small - board)  # grey levels between ink and background
    ink, mask = strong_ink(ink, peaks[0] if dark else peaks[1])
    mask &= ~form_lines(mask)
    return ink, mask, contrast


def unruled(small: np.ndarray) -> np.ndarray:
    """`small` with the lines of squared or ruled paper painted over with the paper beside them:
    three or more thin rows (or columns) darker than their neighbours nearly all the way across. A
    line's pixel takes the lighter of the rows just outside the line, so where a digit's stroke
    crosses the line (dark on both sides) the stroke stays."""
    out = small
    for axis in (0, 1):
        side = out.shape[axis]
        along = out if axis == 0 else out.T
        profile = row_medians(along)
        reach = max(3, side // 16)
        local = mo.max_filter_1d(profile, 2 * reach + 1)
        dark = profile < local - LINE_CONTRAST
        if np.count_nonzero(dark) < 3:
            continue  # fewer dark rows than a ruling's three lines
        dark &= (along < (local - LINE_CONTRAST / 2)[:, None]).mean(1) >= 0.9
        edges = np.flatnonzero(np.diff(np.concatenate([[0], dark.astype(np.int8), [0]])))
        runs = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=False) if b - a <= max(3, side // 24)]
        if len(runs) < 3:
            continue  # a digit's bar, a box's two sides, a board's edges: not a ruling
        along = along.copy()
        for a, b in runs:
            above, below = along[max(a - 1, 0)], along[min(b, side - 1)]
            along[a:b] = np.maximum(along[a:b], np.minimum(above, below))
        out = along if axis == 0 else along.T
    return out


def plain_ink(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(dark ink, contrast, the ink's `peak_of`) when the background is one exact grey, the image's
    lightest, all round the border and under most of the image, with clear dark ink on it (an HTML
    canvas export, a clean scan): what `background` and `dark_is_ink` would find there (the plain-paper rule makes
    the paper that grey everywhere, and such ink wins the polarity), without estimating anything.
    None for any other image."""
    border = border_of(small)
    paper = float(border[0])
    if paper < 0.5 or border.min() != paper or border.max() != paper:
        return None
    darkest, lightest = cv2.minMaxLoc(small)[:2]  # one pass for both
    if lightest != paper:
        return None
    if np.count_nonzero(small < (paper + darkest) / 2) / small.size >= 0.35:
        return None  # mostly dark: the plain-paper rule does not hold
    contrast = paper - small
    ink = contrast / max(paper, 0.05)
    peak = peak_of(ink)
    if peak < 0.35:
        return None  # faint ink: the polarity must be weighed
    return ink, contrast, peak


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


def dark_is_ink(small: np.ndarray, dark_ink: np.ndarray, light_ink: np.ndarray, reach: int,
                peaks: tuple[float, float] | None = None) -> bool:
    """Step 2, the polarity. When one way finds far stronger ink than the other, that way.
    Otherwise the background is what surrounds the ink: the ring just outside the region of the
    strongest marks (whatever the marks' own mix of ink and gaps); the image's border only when
    the marks leave no room for a ring. `peaks`: (peak_of(dark_ink), peak_of(light_ink)) when known."""
    peak_dark, peak_light = peaks if peaks is not None else (peak_of(dark_ink), peak_of(light_ink))
    if min(peak_dark, peak_light) < 0.35 * max(peak_dark, peak_light):
        return peak_dark > peak_light
    if edges_touched(dark_ink > STRONG * peak_dark) == 4 and edges_touched(light_ink > STRONG * peak_light) == 4:
        # A tight crop: both ways' ink reaches every edge (the paper between a digit's thick strokes
        # looks like light ink), so no ring fits round it; the border, mostly paper, decides.
        lo, hi = percentiles(small, [2, 98])
        return median(border_of(small)) > (lo + hi) / 2
    either = np.maximum(dark_ink, light_ink)
    inner = mo.max_filter(either > 0.5 * float(either.max()), reach)
    ring = mo.max_filter(inner, reach) & ~inner
    lo, hi = percentiles(small[inner], [2, 98])
    around = small[ring] if ring.sum() >= 20 else border_of(small)
    return median(around) > (lo + hi) / 2


def edges_near(mask: np.ndarray) -> int:
    """How many of the image's four edges `mask` comes within a few pixels of (a crop cut at the
    ink's faint fringe is tight too)."""
    k = max(2, min(mask.shape) // 25)
    return (int(mask[:k].any()) + int(mask[-k:].any()) + int(mask[:, :k].any())
            + int(mask[:, -k:].any()))


def edges_touched(mask: np.ndarray) -> int:
    """How many of the image's four edges `mask` reaches."""
    return int(mask[0].any()) + int(mask[-1].any()) + int(mask[:, 0].any()) + int(mask[:, -1].any())


def peak_of(ink: np.ndarray) -> float:
    """The strongest ink as a 3x3 mean, so one hot pixel does not set the scale."""
    return cv2.minMaxLoc(mo.box_blur(ink, 3))[1]


def strong_ink(ink: np.ndarray, peak: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: ink relative to its strongest (`peak_of`, given as `peak` when known), and the
    mask of what reaches STRONG with the fainter strokes joined to it."""
    peak = peak_of(ink) if peak is None else peak
    if peak < MIN_CONTRAST:
        raise NoDigit(NO_INK)
    ink = np.divide(ink, peak)
    np.clip(ink, 0, 1, out=ink)
    weak, strong = ink > WEAK, ink > STRONG
    labels, count = mo.label(weak)
    if count == 1:  # one piece: all of it, or none
        mask = weak if strong.any() else np.zeros_like(weak)
    else:
        keep = np.zeros(count + 1, bool)
        keep[labels[strong]] = True
        keep[0] = False
        mask = keep[labels]
    if not mask.any():
        raise NoDigit(NO_INK)
    return ink, mask


def marks_of(mask: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, list[Mark]]:
    """Step 5: the connected marks of `mask`, most ink first, specks left out. A stroke broken by
    a faint stretch (a pencil's light touch) is one mark when its pieces are a few pixels apart,
    so gaps under 1% of the image are closed for the labelling."""
    gap = max(3, round(min(mask.shape) / 100)) | 1
    labels, count = mo.label(mo.min_filter(mo.max_filter(mask, gap), gap))
    labels[~mask] = 0
    marks = sorted(components(labels, count, ink), key=lambda mark: -mark.ink)
    biggest = marks[0].pixels if marks else 0
    marks = [mark for mark in marks if mark.pixels >= max(3, 0.01 * biggest)]  # specks are not ink
    if not marks:
        raise NoDigit(NO_INK)
    return labels, marks


def as_box(values) -> Box:
    """Four numbers as a box of ints: left, top, right, bottom."""
    left, top, right, bottom = (int(v) for v in values)
    return Box(left, top, right, bottom)


def components(labels: np.ndarray, count: int, weight: np.ndarray | None = None) -> list[Mark]:
    """The Marks of labels 1..count (`weight`: the ink summed per mark; none: the pixel count)."""
    pixels, ink, boxes = mo.components(labels, count, weight)
    return [Mark(i + 1, int(pixels[i]), float(ink[i]), as_box(boxes[i])) for i in range(count)]


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


def bounds(marks: list[Mark]) -> Box:
    """The box around all of `marks`."""
    return Box(min(m.box.left for m in marks), min(m.box.top for m in marks),
               max(m.box.right for m in marks), max(m.box.bottom for m in marks))


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / length of the ink's edges (a stroke of width w and
    length L has area wL and edges about 2L)."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)  # a border of background (np.pad costs more)
    padded[1:-1, 1:-1] = mask
    # Each ink pixel's side on background is one change between neighbours along a row or a column.
    edges = (np.count_nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])
             + np.count_nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1]))
    return 2 * float(np.count_nonzero(mask)) / max(edges, 1)


def closer_look(image_grey: np.ndarray, found: Ink, marks: list[Mark],
                side: int | None = None) -> tuple[Ink, int, int] | None:
    """When the marks are small in a reduced image, the crop around them at higher resolution,
    analysed again, and its offset (top, left) in the image: crop, then reduce."""
    left, top, right, bottom = (round(v * found.factor) for v in bounds(marks))
    size = max(bottom - top, right - left)
    if found.factor <= 1 or size * 2.5 > max(image_grey.shape):
        return None
    margin = int(size * 0.6) + 4
    y0, x0 = max(0, top - margin), max(0, left - margin)
    crop = image_grey[y0:min(image_grey.shape[0], bottom + margin), x0:min(image_grey.shape[1], right + margin)]
    return find_ink(crop, side, crop_sized=False), y0, x0
