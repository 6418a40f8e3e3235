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
from lenet.reading.background import (
    MIN_CONTRAST,
    background,
    border_of,
    local_level,
    reduced,
)
from lenet.reading.image import MIN_SIDE, stretched
from lenet.reading.lines import form_lines
from lenet.reading.morphology import Box
from lenet.reading.order import median, percentiles, row_medians
from lenet.reading.paper import framed, off_sheet, sheet, unlined

ANALYSIS_SIDE = 192  # ink is found on a copy at most this big (a small digit: on its crop, again),
LARGE_SIDE = 384     # or this, for images more than twice as big: a small digit in a big photo stays findable
STRONG, WEAK = 0.5, 0.22  # ink: above half the strongest ink, or above WEAK and joined to such ink
LINE_CONTRAST = 0.04  # a paper's ruling is at least this much darker than the paper beside it
DARK_MINORITY = 0.35  # plain paper is dark in less than this share of a canvas (web/lenet.js: the same)
DARK_ON_PAPER = 0.5   # or of a photo or scan: a digit stretched to fill its box is dark in more than a third
AMBIGUOUS = 0.25     # a ring this share of the ink's range from the middle grey is no clear answer
FAINT_PEAK = 0.35    # plain paper's ink this faint at its strongest: the polarity must be weighed
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
    sheet: np.ndarray | None = None  # the note the ink lies on, on a desk (paper.sheet), else None


def selected(labels: np.ndarray, marks: list[Mark]) -> np.ndarray:
    """The pixels of `labels` that belong to `marks` (a lookup table: one pass, no sorting)."""
    if len(marks) == 1:  # most digits are one mark: a comparison is quicker than a lookup
        return labels == marks[0].label
    table = np.zeros(int(labels.max()) + 1, bool)
    table[[m.label for m in marks]] = True
    return np.take(table, labels)


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


def analysis_side(shape: tuple[int, ...]) -> int:
    """The longer side of the copy an image of `shape` is analysed on."""
    return ANALYSIS_SIDE if max(shape) <= 2 * ANALYSIS_SIDE else LARGE_SIDE


def find_ink(image_grey: np.ndarray, side: int | None = None, crop_sized: bool | None = None) -> Ink:
    """Find the ink in a grey image (the module's steps), on a copy at most `side` pixels long
    (by default `analysis_side`). `crop_sized`: whether the image may be a crop of one digit, by
    default when it is analysed at ANALYSIS_SIDE (a closer look inside a photo is not)."""
    small, factor = reduced(image_grey, side or analysis_side(image_grey.shape))
    plain = plain_ink(small)
    framed, inside = False, None
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
        inside = sheet(small, levels)
        on_sheet = small if inside is None else off_sheet(small, inside)
        lined = unruled(unlined(on_sheet, page=not crop_sized))
        ink, mask, contrast, framed = ink_on_paper(lined, crop_sized, levels if lined is small else None)
    labels, marks = marks_of(mask, ink)
    return Ink(ink, mask, marks, labels, contrast, factor, framed, inside)


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
    ink, mask, contrast = ink_and_mask(small, DARK_ON_PAPER, shaded=True)
    if not tight:
        return ink, mask, contrast, False
    lo, hi = levels if levels is not None else percentiles(small, [2, 98])
    if edges_near(mask) < 3 and (edges_near(small < (lo + 3 * hi) / 4) < 4 or not spans_half(mask)):
        return ink, mask, contrast, False  # (the fringe of ink that fills the crop: not a shadow's dark side)
    light = light_corners(small, (lo, hi))
    if light and median(border_of(small)) < (lo + hi) / 2:
        return ink, mask, contrast, False
    inside, pad = framed(small, float(np.percentile(small, 98 if light else 2)))
    try:
        ink, mask, contrast = (a[pad:-pad, pad:-pad] for a in ink_and_mask(inside, DARK_ON_PAPER, shaded=True))
    except NoDigit:
        return (*ink_and_mask(small, DARK_ON_PAPER, shaded=True), False)
    if not mask.any():
        raise NoDigit(NO_INK)
    return ink, mask, contrast, True


def spans_half(mask: np.ndarray) -> bool:
    """Whether the box of `mask` spans at least half the image each way: a digit cut at its fringe
    fills most of its crop; the dark side of a shadow reaching the edges beside a smaller digit
    does not make the crop tight."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (rows.size > 0 and 2 * (rows[-1] + 1 - rows[0]) >= mask.shape[0]
            and 2 * (cols[-1] + 1 - cols[0]) >= mask.shape[1])


def light_corners(small: np.ndarray, levels) -> bool:
    """Whether the paper of a digit that fills the image is light: most of its four corners are
    (a tight crop's corners are mostly paper, whatever the digit); a tie goes to light paper,
    as people's paper mostly is. `levels`: percentiles(small, [2, 98])."""
    lo, hi = levels
    k = max(1, min(small.shape) // 10)
    corners = [small[:k, :k], small[:k, -k:], small[-k:, :k], small[-k:, -k:]]
    return sum(median(c) > (lo + hi) / 2 for c in corners) >= 2


def ink_and_mask(small: np.ndarray, dark_minority: float,
                 shaded: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4: (ink, mask, contrast) of an analysis copy (`dark_minority`: see `backgrounds`;
    `shaded`: see `dark_is_ink`)."""
    paper, board, dark_ink, light_ink, reach = background(small, dark_minority)
    peaks = peak_of(dark_ink), peak_of(light_ink)
    dark = dark_is_ink(small, dark_ink, light_ink, reach, peaks, shaded)
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
        along = out if axis == 0 else mo.transposed(out)  # the columns as contiguous rows
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
    if np.count_nonzero(small < (paper + darkest) / 2) / small.size >= DARK_MINORITY:
        return None  # mostly dark: the plain-paper rule does not hold
    contrast = paper - small
    ink = contrast / max(paper, 0.05)
    peak = peak_of(ink)
    if peak < FAINT_PEAK:
        return None  # faint ink: the polarity must be weighed
    return ink, contrast, peak


def dark_is_ink(small: np.ndarray, dark_ink: np.ndarray, light_ink: np.ndarray, reach: int,
                peaks: tuple[float, float] | None = None, shaded: bool = False) -> bool:
    """Step 2, the polarity. When one way finds far stronger ink than the other, that way.
    Otherwise the background is what surrounds the ink: the ring just outside the region of the
    strongest marks (whatever the marks' own mix of ink and gaps); the image's border only when
    the marks leave no room for a ring. `peaks`: (peak_of(dark_ink), peak_of(light_ink)) when known.
    `shaded` (paper or a board photographed, not a canvas): each pixel is weighed against the
    grey round it (`local_level`), so a shadow across the paper, darkening part of the ring,
    does not pass for the dark side of the marks."""
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
    around = median(small[ring] if ring.sum() >= 20 else border_of(small))
    if shaded and abs(around - (lo + hi) / 2) < AMBIGUOUS * (hi - lo):
        # Near the middle: a shadow may darken part of the ring. Each pixel against the grey round it.
        level = small - local_level(small, 4 * reach + 1)
        lo, hi = percentiles(level[inner], [2, 98])
        around = median(level[ring] if ring.sum() >= 20 else border_of(level))
    return around > (lo + hi) / 2


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
    return ink, joined(ink > WEAK, ink > STRONG)


def joined(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Step 3's mask: the `weak` ink's pieces that hold some `strong` ink."""
    labels, count = mo.label(weak)
    if count == 1:  # one piece: all of it, or none
        mask = weak if strong.any() else np.zeros_like(weak)
    else:
        keep = np.zeros(count + 1, bool)
        keep[labels[strong]] = True
        keep[0] = False
        mask = np.take(keep, labels)
    if not mask.any():
        raise NoDigit(NO_INK)
    return mask


def marks_gap(shape: tuple[int, ...]) -> int:
    """The gap (odd, in pixels) `marks_of` closes by default in an image of `shape`: 1% of it."""
    return max(3, round(min(shape) / 100)) | 1


def marks_of(mask: np.ndarray, ink: np.ndarray, gap: int | None = None) -> tuple[np.ndarray, list[Mark]]:
    """Step 5: the connected marks of `mask`, most ink first, specks left out. A stroke broken by
    a faint stretch (a pencil's light touch) is one mark when its pieces are a few pixels apart,
    so gaps under 1% of the image (`marks_gap`, or `gap`) are closed for the labelling."""
    gap = marks_gap(mask.shape) if gap is None else gap
    labels, count = mo.label(mo.closing(mask, gap))
    np.multiply(labels, mask, out=labels)  # the closing's bridges are no mark's pixels
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


def bounds(marks: list[Mark]) -> Box:
    """The box around all of `marks`."""
    return Box(min(m.box.left for m in marks), min(m.box.top for m in marks),
               max(m.box.right for m in marks), max(m.box.bottom for m in marks))


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
    if found.sheet is not None:
        # The note seen on the whole picture: in the crop its edge and the desk would pass for ink.
        rows = np.minimum((np.arange(y0, y0 + crop.shape[0]) / found.factor).astype(int), found.sheet.shape[0] - 1)
        cols = np.minimum((np.arange(x0, x0 + crop.shape[1]) / found.factor).astype(int), found.sheet.shape[1] - 1)
        inside = found.sheet[np.ix_(rows, cols)]
        if inside.any() and not inside.all():
            crop = off_sheet(crop, inside)
    return find_ink(crop, side, crop_sized=False), y0, x0
