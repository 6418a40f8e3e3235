"""Turn people's own digit images into what MNIST looks like, so the network sees what it learned.

MNIST's recipe (LeCun et al., the MNIST page): white ink on black, the ink
fitted into a 20x20 box keeping its aspect ratio, anti-aliased to grey, and
placed in 28x28 so that its centre of mass sits at the centre. A plain resize
of a photo gives the network something else; this module does the recipe, and
first finds the digit in what people really have:

1. the background is estimated locally (a morphological closing for dark ink,
   an opening for light ink, on a coarse copy) and taken away, so light
   falling off across a page, or a dark board in a light room, is not ink;
2. the polarity is the majority around the ink (paper is most of what
   surrounds a digit), not the image's border;
3. ink is measured against the light where it is (dark ink: the share of the
   paper's light it takes away); ink is what reaches half the strongest, and
   fainter strokes joined to it (hysteresis), so a calligraphy hairline is kept;
4. long straight lines (form boxes, underlines, ruled lines) are taken out;
5. the digit is the main connected mark with the pieces beside it (a 5's
   flag); other marks and specks are left out, and said;
6. a small digit in a big photo is found on a reduced copy, then read again
   from a crop at higher resolution: crop, then reduce;
7. strokes far thinner or thicker than MNIST's are thickened or thinned.

`read_digit` / `preprocess` and `read_number` are pure: a pixel array in, 28x28
uint8 arrays out. `load_image` decodes a file or bytes with bounds on size and
pixel count. All raise `ValueError` with a message for the user.
"""

from __future__ import annotations

import io
import itertools
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.reading import morphology as mo

SIZE = 28          # MNIST's image side
BOX = 20           # MNIST fitted each digit's ink into a 20x20 box
WORK_SIDE = 1600   # decoded images are reduced to this: a 60 px digit in a 4000 px photo is 24 px
ANALYSIS_SIDE = 384  # ink is found on a copy at most this big (a small digit: on its crop, again)
BACKGROUND_SIDE = 96  # the background is estimated on a copy this small, then smoothly enlarged
MIN_SIDE = 8       # smaller than this holds no legible digit
MAX_PIXELS = 40_000_000  # our own decompression-bomb limit (a 48 MP phone photo is rejected)
MAX_FILE_BYTES = 20 * 1024**2
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # what Pillow may decode for us
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

MIN_CONTRAST = 0.08  # below this the image is blank paper (or blank canvas)
STRONG, WEAK = 0.5, 0.22  # ink: above half the strongest ink, or above WEAK and joined to such ink
FAINT = 0.15       # a digit whose contrast is below this is read, but doubted
MIN_HEIGHT = 10    # nor is a digit less tall than this (pixels) trusted
MAX_TOUCHING = 6   # the most digits one connected mark of a number is tried as
MAX_VALLEYS = 7    # the deepest valleys of its ink profile tried as cuts
MIN_LINE = 16      # a form line is at least this long (pixels at the analysis scale)
PLAIN = 0.1        # a border whose grey varies less than this is plain paper
# Stroke width as 2 x ink area / ink edge length, at MNIST's 20 px box: MNIST's median is 1.95,
# its 5th and 98th percentiles 1.3 and 3.4 (measured on 5,000 training digits).
MNIST_WIDTH, THIN, THICK = 1.95, 1.3, 3.4
INDEX = np.arange(SIZE)  # row and column numbers of a 28x28, for centres of mass

# Reasons to doubt an answer whatever the network's probability (see Reading.doubts).
SEVERAL = "several separate marks: looks like more than one digit (use --number)"
SMALL = "ink too small"
FAINT_INK = "ink too faint"
BORDER = "ink touches the border"


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) into an array: (H, W) grey, (H, W, 2|3|4) colour/alpha.

    Bounded: at most MAX_FILE_BYTES, MAX_PIXELS pixels, formats in FORMATS.
    Larger images are reduced (anti-aliased) to WORK_SIDE on the longer side."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "<bytes>"
    else:
        from lenet.files import read_bounded

        # Regular files only, read with a bound: a FIFO or /dev/zero is an error, not a hang.
        data = read_bounded(source, MAX_FILE_BYTES, "image")
        name = name or str(source)
    if not data:
        raise ValueError(f"{name}: empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name}: larger than {MAX_FILE_BYTES // 1024**2} MB")
    try:
        with warnings.catch_warnings():
            # Our pixel limit is checked from the header, before any decoding; Pillow's own
            # bomb check would fire later and differently, so it is made an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"{name}: {w}x{h} is {w * h:,} pixels, over the limit of {MAX_PIXELS:,}")
            if min(w, h) < MIN_SIDE:
                raise ValueError(f"{name}: {w}x{h} is too small to hold a digit (at least {MIN_SIDE}x{MIN_SIDE})")
            im.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced scale when it is big
            im.load()
            im = ImageOps.exif_transpose(im)  # phone photos: honour the orientation tag
            try:
                im = to_array_mode(im)
            except ValueError as e:  # its pixels: not finite
                raise ValueError(f"{name}: {e}") from None
            if max(im.size) > WORK_SIDE:
                im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    except ValueError:
        raise
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image this tool reads ({', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own check fires first for images far over its default; ours is lower.
        raise ValueError(f"{name}: over the limit of {MAX_PIXELS:,} pixels ({e})") from None
    except (OSError, SyntaxError, EOFError) as e:  # truncated or corrupt data, found while decoding
        raise ValueError(f"{name}: cannot decode the image ({e})") from None
    return np.asarray(im)


def declared_pixels(data: bytes) -> int:
    """The pixel count an image's header declares, read without decoding (0 when unreadable:
    decoding will then say what is wrong). A PNG's size is read straight from its IHDR chunk, where
    Pillow reads it too: opening the file with Pillow costs 0.1 ms, a tenth of serving a 28x28."""
    from PIL import Image

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w * h
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w, h = Image.open(io.BytesIO(data), formats=FORMATS).size
    except Exception:  # noqa: BLE001 - any header Pillow cannot read
        return 0
    return w * h


def to_array_mode(im):
    """Reduce Pillow's many modes to L, LA, RGB or RGBA of 8 bits."""
    from PIL import Image

    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return Image.fromarray((stretched(np.asarray(im)) * 255).astype(np.uint8), "L")
    if im.mode == "1":
        return im.convert("L")
    has_alpha = im.mode in ("PA", "La") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


@dataclass(frozen=True)
class Reading:
    """One digit as found in an image."""
    image: np.ndarray                 # (28, 28) uint8, white ink on black: what the network sees
    box: tuple[int, int, int, int]    # the digit's ink in the image given: left, top, width, height
    doubts: tuple[str, ...] = ()      # reasons not to trust an answer, whatever its probability


def stretched(a: np.ndarray) -> np.ndarray:
    """Numbers of any range as float64 0..1, the darkest 0 and the lightest 1 (a flat image: 0).
    Pixels that are not numbers, or not finite (a NaN in a float TIFF), are a ValueError."""
    if a.dtype.kind not in "biuf":
        raise ValueError(f"image pixels must be numbers, got an array of {a.dtype}")
    if a.size == 0:
        raise ValueError("empty image (no pixels)")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("image has non-finite pixels (NaN or infinity)")
    lo, hi = float(a.min()), float(a.max())
    # Halves first: hi - lo of values near the float limit would overflow to infinity.
    span = hi / 2 - lo / 2
    if span <= 0:
        return np.zeros(a.shape)
    return np.clip((a / 2 - lo / 2) / span, 0, 1)


def grey(pixels: np.ndarray) -> np.ndarray:
    """Float grey in [0, 1] from any grey, grey+alpha, RGB or RGBA array. A drawing on a
    transparent canvas becomes dark ink on white (the strokes are where it is opaque)."""
    a = np.asarray(pixels)
    a = stretched(a).astype(np.float32) if a.dtype != np.uint8 else a.astype(np.float32) / 255
    if a.ndim == 3 and a.shape[2] in (2, 4):
        alpha = a[..., -1]
        if alpha.max() - alpha.min() > 0.5:
            # Ink drawn on a transparent background (an HTML canvas export), whatever its colour.
            return 1 - alpha
        a = a[..., :-1]
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if a.shape[2] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {np.shape(pixels)}")
    if min(a.shape) < MIN_SIDE:
        raise ValueError(f"{a.shape[1]}x{a.shape[0]} is too small to hold a digit")
    return a


def resize(a: np.ndarray, shape: tuple[int, int], how=None) -> np.ndarray:
    """A float array resized to (H, W): by area when reducing, bilinear when enlarging."""
    from PIL import Image

    if a.shape == tuple(shape):
        return a
    if how is None:
        how = Image.Resampling.BOX if shape[0] <= a.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((shape[1], shape[0]), how))


def pooled(a: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """`a` reduced to `shape` by block maximum and by block minimum (blocks cover `a` evenly),
    and the blocks' edges, for `expand`."""
    ys = np.linspace(0, a.shape[0], shape[0] + 1).round().astype(int)
    xs = np.linspace(0, a.shape[1], shape[1] + 1).round().astype(int)
    hi = np.maximum.reduceat(np.maximum.reduceat(a, ys[:-1], axis=0), xs[:-1], axis=1)
    lo = np.minimum.reduceat(np.minimum.reduceat(a, ys[:-1], axis=0), xs[:-1], axis=1)
    return hi, lo, (ys, xs)


def expand(coarse: np.ndarray, edges: tuple) -> np.ndarray:
    """Each block's value over the block's pixels (the inverse of `pooled`'s layout). Blocks, not a
    smooth enlargement: a smooth one would spread a board's edge into a band that looks like ink."""
    ys, xs = edges
    return np.repeat(np.repeat(coarse, np.diff(ys), axis=0), np.diff(xs), axis=1)


def reduced(a: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`a` reduced by area so its longer side is at most `side`, and the factor it was reduced by."""
    factor = max(a.shape) / side
    if factor <= 1:
        return a, 1.0
    return resize(a, (max(1, round(a.shape[0] / factor)), max(1, round(a.shape[1] / factor)))), factor


@dataclass
class Ink:
    """What `find_ink` saw in one image, at its analysis scale."""
    ink: np.ndarray       # ink strength in [0, 1], 1 = the strongest ink
    mask: np.ndarray      # the ink kept: specks and form lines taken out
    marks: list           # connected marks of `mask` (morphology.components), largest first
    labels: np.ndarray    # their labels
    contrast: np.ndarray  # ink against its background, in grey levels (0..1)
    factor: float         # image pixels per analysis pixel


def find_ink(g: np.ndarray) -> Ink:
    """Find the ink in a grey image (see the module's steps 1-4)."""
    s, factor = reduced(g, ANALYSIS_SIDE)
    # 1. Background, both ways, on a coarse copy (see `backgrounds`). The window is an eighth of the
    # image: wider than a pen's stroke, narrower than the light's changes (and its error at the
    # image's edge, where a closing cannot see past the border, stays small). A marker's strokes
    # can be wider: measured around the ink found, they widen the window (up to a third).
    c = reduced(s, BACKGROUND_SIDE)[0]
    k = max(3, round(max(c.shape) / 8)) | 1
    paper, board, dark_ink, light_ink = backgrounds(s, c.shape, k)
    either = np.maximum(dark_ink, light_ink)
    if float(mo.box_blur(either, 3).max()) < MIN_CONTRAST:
        raise ValueError("no ink found: the image is blank or has too little contrast")
    near = mo.max_filter(either > 0.5 * float(either.max()), max(3, k * s.shape[0] // c.shape[0] // 2) | 1)
    lo, hi = np.percentile(s[near], [2, 98])
    dark_side = (s < (lo + hi) / 2) & near
    # Either side may be the ink: the window must be wider than the wider one's strokes (their
    # mean width, x2.2 for the thickest places: corners and crossings).
    width = max(stroke_width(dark_side), stroke_width(near & ~dark_side))
    broad = round(2.2 * width * c.shape[0] / s.shape[0]) | 1
    if broad > k:
        k = min(broad, max(3, max(c.shape) // 3) | 1)
        paper, board, dark_ink, light_ink = backgrounds(s, c.shape, k)
        either = np.maximum(dark_ink, light_ink)
    # 2. Polarity. When one way finds far stronger ink than the other, that way. Otherwise the
    # background is what surrounds the ink: the ring just outside the region of the strongest
    # marks (whatever the marks' own mix of ink and gaps); the image's border only when the marks
    # leave no room for a ring.
    peak_dark, peak_light = float(mo.box_blur(dark_ink, 3).max()), float(mo.box_blur(light_ink, 3).max())
    if min(peak_dark, peak_light) < 0.35 * max(peak_dark, peak_light):
        dark = peak_dark > peak_light
    else:
        reach = max(3, k * s.shape[0] // c.shape[0] // 2) | 1
        inner = mo.max_filter(either > 0.5 * float(either.max()), reach)
        ring = mo.max_filter(inner, reach) & ~inner
        lo, hi = np.percentile(s[inner], [2, 98])
        around = s[ring] if ring.sum() >= 20 else np.concatenate([s[0], s[-1], s[:, 0], s[:, -1]])
        dark = float(np.median(around)) > (lo + hi) / 2
    ink = dark_ink if dark else light_ink
    contrast = (paper - s) if dark else (s - board)  # grey levels between ink and background
    # 3. Ink relative to its strongest (a 3x3 mean, so one hot pixel does not set the scale), with
    # hysteresis for faint strokes.
    peak = float(mo.box_blur(ink, 3).max())
    if peak < MIN_CONTRAST:
        raise ValueError("no ink found: nothing stands out from the background")
    ink = np.clip(ink / peak, 0, 1)
    strong = ink > STRONG
    labels, count = mo.label(ink > WEAK)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    mask = keep[labels]
    if not mask.any():
        raise ValueError("no ink found: nothing stands out from the background")
    # 4. Form lines out, then the marks.
    mask &= ~form_lines(mask)
    # Marks: a stroke broken by a faint stretch (a pencil's light touch) is one mark when its
    # pieces are a few pixels apart, so gaps under 1% of the image are closed for the labelling.
    gap = max(3, round(min(s.shape) / 100)) | 1
    labels, count = mo.label(mo.min_filter(mo.max_filter(mask, gap), gap))
    labels[~mask] = 0
    marks = sorted(mo.components(labels, count, ink), key=lambda m: -m["ink"])
    big = marks[0]["area"] if marks else 0
    marks = [m for m in marks if m["area"] >= max(3, 0.01 * big)]  # specks are not ink
    if not marks:
        raise ValueError("no ink found: nothing stands out from the background")
    return Ink(ink, mask, marks, labels, contrast, factor)


def backgrounds(s: np.ndarray, shape: tuple[int, int], k: int):
    """(paper, board, dark ink, light ink) of `s` with a k-wide window on a copy of `shape`.

    The closing of the copy's block minima is the paper under dark ink, the opening of its block
    maxima the board under light ink. Pooling by the minimum keeps the paper estimate on the dark
    side of any edge (a board's, a shadow's), so an edge is never taken for ink; the maximum does the
    same for the board. Ink either way is relative to the light where it is: light falls on paper
    and ink alike, so dark ink is the share of the paper's light it takes away; light ink (chalk)
    is measured against the brightest within reach."""
    light, darkest, blocks = pooled(s, shape)
    paper = expand(mo.closing(darkest, k), blocks)
    # Plain paper (an even, light border all round, and dark only in a minority of the image: not
    # a board on a wall): the paper is at least the border's level, even inside a marker's blot
    # wider than the window.
    border = np.concatenate([s[0], s[-1], s[:, 0], s[:, -1]])
    lo, mid, hi = np.percentile(border, [5, 50, 95])
    if hi - lo < PLAIN and mid > float(np.median(s)) - PLAIN / 2 and (s < (lo + s.min()) / 2).mean() < 0.35:
        paper = np.maximum(paper, lo)
    board = expand(mo.opening(light, k), blocks)
    top = expand(mo.max_filter(light, k), blocks)
    dark_ink = np.clip((paper - s) / np.maximum(paper, 0.05), 0, None)
    # Where there is no chalk within reach, top - board is only the board's noise: a floor of a
    # third of the strongest contrast keeps that noise from counting as ink.
    reach = top - board
    light_ink = np.clip((s - board) / np.maximum(reach, max(MIN_CONTRAST, float(reach.max()) / 3)), 0, None)
    return paper, board, dark_ink, light_ink


def form_lines(mask: np.ndarray) -> np.ndarray:
    """The pixels of form lines: long thin straight runs that make a frame with each other (a box:
    horizontal and vertical lines meeting at their ends), cross the whole image (ruled lines), or
    run past the rest of the ink at both ends below its middle (an underline). A 7's bar, a 2's
    foot or a 1's stem does none of these (or is all the ink there is), so it stays."""
    h, w = mask.shape
    lines = np.zeros_like(mask)
    candidates = []  # (axis, pixels, box, length)
    for axis, side in ((1, w), (0, h)):
        run = mo.line_opening(mask, max(MIN_LINE, side // 4), axis)
        if not run.any():
            continue
        labels, count = mo.label(run)
        for m in mo.components(labels, count):
            top, left, bottom, right = m["box"]
            length = right - left if axis == 1 else bottom - top
            if length >= 8 * m["area"] / max(1, length):  # thin: 8 times longer than thick
                candidates.append((axis, labels == m["label"], m["box"], length))
    if not candidates:
        return lines
    # The rest: the ink off the longest runs (a form's lines are longer than a digit's strokes).
    longest = max(c[3] for c in candidates)
    rest = mask.copy()
    for _, pixels, _, length in candidates:
        if length >= 0.75 * longest:
            rest &= ~pixels
    if rest.sum() < 0.15 * mask.sum():
        return lines  # lines are all there is: a 1, a 7 of straight strokes
    rows, cols = np.flatnonzero(rest.any(1)), np.flatnonzero(rest.any(0))
    extent = {1: cols[-1] + 1 - cols[0], 0: rows[-1] + 1 - rows[0]}  # the rest's, along each axis
    # Frame lines reach across the rest: at least 90% of its extent their way.
    framing = [c for c in candidates if c[3] >= 0.9 * extent[c[0]]]
    for i, (axis, pixels, box, length) in enumerate(candidates):
        if length >= 0.9 * extent[axis] and any(
                axis != other[0] and corner(box, other[2]) for other in framing if other[2] != box):
            lines |= pixels
            continue
        a, b = (box[1], box[3]) if axis == 1 else (box[0], box[2])
        if a == 0 and b == (w if axis == 1 else h):  # across the whole image: a ruled line
            lines |= pixels
            continue
        if axis == 0 or box[0] < (rows[0] + rows[-1]) / 2:
            continue  # alone, only a line under the digit's middle is a form's (a 7's bar is above it)
        start, end = cols[0], cols[-1] + 1
        # A line joined to the digit (a 2's foot) must run well past it to be taken for an underline.
        joined = bool((mo.max_filter(pixels, 3) & rest).any())
        margin = (0.25 if joined else 0.08) * (end - start)
        if a <= start - margin and b >= end + margin:
            lines |= pixels
    return lines


def corner(one: tuple, other: tuple) -> bool:
    """Whether two line boxes (top, left, bottom, right), one horizontal and one vertical, meet
    at an end of each: a frame's corner, not a cross (a 4's bar through its stem)."""
    (t1, l1, b1, r1), (t2, l2, b2, r2) = one, other
    if (r1 - l1) < (b1 - t1):  # make `one` the horizontal line
        (t1, l1, b1, r1), (t2, l2, b2, r2) = other, one
    tol = 3 + max(b1 - t1, r2 - l2)
    ends_h = min(abs(l1 - l2), abs(l1 - r2), abs(r1 - l2), abs(r1 - r2)) <= tol
    ends_v = min(abs(t2 - t1), abs(t2 - b1), abs(b2 - t1), abs(b2 - b1)) <= tol
    return ends_h and ends_v


def digit_marks(marks: list) -> tuple[list, list]:
    """Of `marks` (largest first): the main mark with the pieces close to it (one digit: a 5's flag, a broken stroke), and the
    other marks big enough to be digits themselves. A piece joins when it lies within a third of
    the main mark's size from the digit and is either small beside it or stacked over it (a mark as
    big as the main one beside it is another digit)."""
    main = marks[0]
    t0, l0, b0, r0 = main["box"]
    reach = max(b0 - t0, r0 - l0) / 3
    digit, rest = [main], marks[1:]

    def piece(m, left, right):
        t, l_, b, r = m["box"]
        stacked = min(r, right) - max(l_, left) >= 0.5 * (r - l_)
        return stacked or m["area"] < 0.3 * main["area"] or (b - t) < 0.45 * (b0 - t0)

    while True:
        top, left, bottom, right = bounds(digit)
        close = [m for m in rest if m["box"][0] < bottom + reach and m["box"][2] > top - reach
                 and m["box"][1] < right + reach and m["box"][3] > left - reach and piece(m, left, right)]
        if not close:
            break
        digit += close
        rest = [m for m in rest if m not in close]
    top, _, bottom, _ = bounds(digit)
    others = [m for m in rest if m["area"] >= 0.25 * main["area"] and m["box"][2] - m["box"][0] >= 0.4 * (bottom - top)]
    return digit, others


def bounds(marks: list) -> tuple[int, int, int, int]:
    return (min(m["box"][0] for m in marks), min(m["box"][1] for m in marks),
            max(m["box"][2] for m in marks), max(m["box"][3] for m in marks))


def closer_look(g: np.ndarray, found: Ink, marks: list) -> tuple[Ink, int, int] | None:
    """When the marks are small in a reduced image, the crop around them at higher resolution,
    analysed again, and its offset in `g`: crop, then reduce."""
    top, left, bottom, right = (round(v * found.factor) for v in bounds(marks))
    size = max(bottom - top, right - left)
    if found.factor <= 1 or size * 2.5 > max(g.shape):
        return None
    margin = int(size * 0.6) + 4
    y0, x0 = max(0, top - margin), max(0, left - margin)
    crop = g[y0:min(g.shape[0], bottom + margin), x0:min(g.shape[1], right + margin)]
    return find_ink(crop), y0, x0


def read_digit(pixels: np.ndarray) -> Reading:
    """An image of one digit -> the 28x28 the network should see, where the digit is, and doubts."""
    box = mnist_form(pixels)
    return as_is(pixels, box) if box is not None else find_digit(pixels)


def find_digit(pixels: np.ndarray) -> Reading:
    """`read_digit`'s full path: find the digit, whatever the image (the module's steps)."""
    g = grey(pixels)
    found = find_ink(g)
    digit, others = digit_marks(found.marks)
    y0 = x0 = 0
    closer = closer_look(g, found, digit)
    if closer is not None:
        found, y0, x0 = closer
        digit, _ = digit_marks(found.marks)  # the others were counted on the whole image
    return reading(g, found, digit, (y0, x0), several=bool(others))


def mnist_form(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """The ink's box (left, top, width, height) when `pixels` is already in MNIST's form, else None.

    MNIST's form, as measured on its 60,000 training digits: 28x28 grey, a background of exact
    zeros, the ink's longer side 20 px (19 in 13 of them), its centre of mass within one pixel of
    the image's centre, strokes reaching full white (254-255). Grey uint8 only (a PNG saved from
    MNIST, or by a tool that did MNIST's recipe): anything else takes the full path."""
    a = pixels
    if a.shape != (SIZE, SIZE) or a.dtype != np.uint8 or a.max() < 250:
        return None
    # Everything from the ink's sums along rows and columns (exact in integers): a few passes
    # over 784 bytes, a third less time than testing rows and columns and weighting apart.
    by_row, by_col = a.sum(1, dtype=np.int64), a.sum(0, dtype=np.int64)
    rows, cols = np.flatnonzero(by_row), np.flatnonzero(by_col)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) not in (BOX - 1, BOX):
        return None
    total = int(by_row.sum())
    cy = int(by_row @ INDEX) / total
    cx = int(by_col @ INDEX) / total
    if max(abs(cy - (SIZE - 1) / 2), abs(cx - (SIZE - 1) / 2)) > 1:
        return None
    return int(left), int(top), int(right - left), int(bottom - top)


def as_is(pixels: np.ndarray, box: tuple[int, int, int, int]) -> Reading:
    """The Reading of an image in MNIST's form: the image itself. The full path (`find_digit`) would
    find the same ink and fit it to the same box, but resample it on the way: on MNIST's 10,000 test
    digits it changes them by 17 grey levels a pixel (median) and the bundled model then reads
    98.64% of them, against 99.60% as they are (benchmarks/preprocess_accuracy.py), at about 20
    times the cost. Only "several marks" can be doubted here (the form rules out faint, small and
    border ink), by `digit_marks`'s rule read off the columns: the strokes above half the strongest
    fall into groups of columns with empty columns between; a group beside the largest one with at
    least 0.3 of its ink and 0.45 of its height is another digit. (Marks that share a column are
    not told apart: labelling them would cost as much as the rest of the reading.)"""
    ink = pixels > 127
    used = np.flatnonzero(ink.any(0))
    gaps = np.flatnonzero(np.diff(used) > 1)
    several = False
    if gaps.size:  # more than one group of columns
        groups = np.split(used, gaps + 1)
        parts = [ink[:, g[0]:g[-1] + 1] for g in groups]
        areas = [int(part.sum()) for part in parts]
        heights = [int(np.ptp(np.flatnonzero(part.any(1)))) + 1 for part in parts]
        main = int(np.argmax(areas))
        several = any(a >= 0.3 * areas[main] and h >= 0.45 * heights[main]
                      for i, (a, h) in enumerate(zip(areas, heights)) if i != main)
    return Reading(pixels.copy(), box, (SEVERAL,) if several else ())


def reading(g: np.ndarray, found: Ink, marks: list, offset: tuple[int, int], several: bool = False,
            columns: tuple[int, int] | None = None) -> Reading:
    """The Reading of `marks` in `found` (only `columns` of them, when a touching pair is split)."""
    keep = np.isin(found.labels, [m["label"] for m in marks])
    if columns is not None:
        keep[:, :columns[0]] = False
        keep[:, columns[1]:] = False
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    f, (y0, x0) = found.factor, offset
    box = (int(x0 + left * f), int(y0 + top * f), max(1, round((right - left) * f)), max(1, round((bottom - top) * f)))
    doubts = [SEVERAL] if several else []
    strong = keep & (found.ink > STRONG)
    if not strong.any() or float(np.median(found.contrast[strong])) < FAINT:
        doubts.append(FAINT_INK)
    if box[3] < MIN_HEIGHT and box[2] < MIN_HEIGHT:
        doubts.append(SMALL)
    if box[0] <= 0 or box[1] <= 0 or box[0] + box[2] >= g.shape[1] or box[1] + box[3] >= g.shape[0]:
        doubts.append(BORDER)
    near = mo.max_filter(keep, 3)[top:bottom, left:right]
    crop = np.where(near, found.ink[top:bottom, left:right], 0)
    return Reading(centre_of_mass_place(fit_box(even_strokes(crop))), box, tuple(doubts))


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """An image array of one digit -> the 28x28 uint8 MNIST-style image (white ink on black)."""
    return read_digit(pixels).image


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x area / length of the ink's edges (a stroke of width w and
    length L has area wL and edges about 2L)."""
    p = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)  # a border of background (np.pad: 10x the time)
    p[1:-1, 1:-1] = mask
    edges = sum(int((mask & ~q).sum()) for q in (p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]))
    return 2 * float(mask.sum()) / max(edges, 1)


def even_strokes(crop: np.ndarray) -> np.ndarray:
    """Thicken strokes that would be far thinner than MNIST's once fitted to the 20 px box (a fine
    pen in a big image fades to grey) and thin far thicker ones (a marker), by grey dilation or
    erosion at the crop's own resolution."""
    scale = BOX / max(crop.shape)
    width = stroke_width(crop > STRONG) * scale  # in pixels of the 20 px box
    if width < THIN:
        r = round((MNIST_WIDTH - width) / 2 / scale)
        return mo.max_filter(crop, 2 * r + 1) if r >= 1 else crop
    if width > THICK:
        r = round((width - MNIST_WIDTH) / 2 / scale)
        thinner = mo.min_filter(crop, 2 * r + 1) if r >= 1 else crop
        # Never thin a stroke away: keep the thinning only if most of the ink survives it.
        return thinner if (thinner > STRONG).sum() >= 0.35 * (crop > STRONG).sum() else crop
    return crop


def read_number(pixels: np.ndarray) -> list[list[list[Reading]]]:
    """An image of a row of digits -> its digits, left to right, as alternatives to choose from:
    one entry per group of marks, each a list of readings of that group (as one digit; and, when it
    is wide enough to be touching digits, as two or three cut apart). The network decides between
    them (`predict.read_digits`): it is sure of real digits and unsure of halves of one.

    The marks on the row of the main mark are its digits; a mark mostly above or below another
    (a 5's flag, a broken stroke) joins it; touching digits are cut at the columns with the least ink."""
    g = grey(pixels)
    found = find_ink(g)
    row = number_marks(found)
    y0 = x0 = 0
    closer = closer_look(g, found, row)
    if closer is not None:
        found, y0, x0 = closer
        row = number_marks(found)
    return [[[reading(g, found, marks, (y0, x0), columns=columns) for columns in cut] for cut in cuts]
            for marks, cuts in digit_groups(found, row)]


def number_marks(found: Ink) -> list:
    """The marks on the main mark's row, specks left out."""
    main = found.marks[0]
    top, _, bottom, _ = main["box"]
    height = bottom - top
    row = []
    for m in found.marks:
        t, _, b, _ = m["box"]
        centre = (t + b) / 2
        if top - 0.5 * height <= centre <= bottom + 0.5 * height and m["area"] >= 0.04 * main["area"]:
            row.append(m)
    return row


def digit_groups(found: Ink, row: list) -> list[tuple[list, list]]:
    """The row's marks grouped, left to right: (marks, ways to cut them), each way a list of column
    ranges (None: the group whole)."""
    height = max(m["box"][2] - m["box"][0] for m in row)
    groups: list[list] = []
    for m in sorted(row, key=lambda m: m["box"][1]):
        if groups:
            top, left, bottom, right = bounds(groups[-1])
            t, l_, b, r = m["box"]
            overlap = min(right, r) - max(left, l_)
            # A piece of a digit (a flag, a broken stroke) over or under another mark joins it; a
            # whole digit that only leans into its neighbour (row-tall, with ink) stays apart.
            piece = (b - t) < 0.6 * height or (bottom - top) < 0.6 * height
            if overlap >= 0.5 * min(r - l_, right - left) and piece:
                groups[-1].append(m)
                continue
        groups.append([m])
    out = []
    for marks in groups:
        top, left, bottom, right = bounds(marks)
        width = right - left
        ways: list = [[None]]
        # Touching digits: cut at the valleys of the ink's column profile, every way that leaves
        # pieces at least 0.2 of the row's height wide; the network then says which reads best.
        keep = np.isin(found.labels[:, left:right], [m["label"] for m in marks])
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
        out.append((marks, ways))
    return out


def fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio, anti-aliased."""
    from PIL import Image

    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS)
    out = np.clip(np.asarray(im), 0, None)
    # Thin strokes fade when a large image is reduced; MNIST's strokes reach full white.
    peak = float(out.max())
    return np.clip(out / peak, 0, 1) if peak > 0 else out


def centre_of_mass_place(digit: np.ndarray) -> np.ndarray:
    """Place in SIZE x SIZE so the ink's centre of mass lands on the centre, as MNIST did."""
    h, w = digit.shape
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy, cx = (ys * digit).sum() / total, (xs * digit).sum() / total
    # Pixel centres: the image centre is at (SIZE - 1) / 2 in index coordinates.
    top = int(np.clip(round((SIZE - 1) / 2 - cy), 0, SIZE - h))
    left = int(np.clip(round((SIZE - 1) / 2 - cx), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top:top + h, left:left + w] = digit
    return np.round(out * 255).astype(np.uint8)


def plain_resize(pixels: np.ndarray) -> np.ndarray:
    """The naive way (grey, inverted when light, resized to 28x28): kept to measure against."""
    from PIL import Image

    g = grey(pixels)
    ink = 1 - g if np.median(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])) > 0.5 else g
    im = Image.fromarray((ink * 255).astype(np.uint8), "L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(im)
