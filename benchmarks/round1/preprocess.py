"""Turn people's own digit images into what MNIST looks like, so the network sees what it learned.

MNIST's recipe (LeCun et al., the MNIST page): white ink on black, the ink
fitted into a 20x20 box keeping its aspect ratio, anti-aliased to grey, and
placed in 28x28 so that its centre of mass sits at the centre. A plain resize
of a photo gives the network something else; this module does the recipe.

`preprocess` is pure: a pixel array in, a 28x28 uint8 array out. `load_image`
decodes a file or bytes with bounds on size and pixel count. Both raise
`ValueError` with a message for the user.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

SIZE = 28          # MNIST's image side
BOX = 20           # MNIST fitted each digit's ink into a 20x20 box
WORK_SIDE = 256    # big inputs are reduced to this before the numpy work; far above 20 px
MIN_SIDE = 8       # smaller than this holds no legible digit
MAX_PIXELS = 40_000_000  # our own decompression-bomb limit (a 48 MP phone photo is rejected)
MAX_FILE_BYTES = 20 * 1024**2
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # what Pillow may decode for us
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

INK_LEVEL = 0.5    # after stretching, ink is what is above half the contrast
MIN_CONTRAST = 0.08  # below this the image is blank paper (or blank canvas)


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) into an array: (H, W) grey, (H, W, 2|3|4) colour/alpha.

    Bounded: at most MAX_FILE_BYTES, MAX_PIXELS pixels, formats in FORMATS.
    Large images are reduced (anti-aliased) to at most WORK_SIDE on the longer side."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "<bytes>"
    else:
        from .files import read_bounded

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
            im = to_array_mode(im)
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
    decoding will then say what is wrong)."""
    from PIL import Image

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
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.astype(np.uint8), "L")
    if im.mode == "1":
        return im.convert("L")
    has_alpha = im.mode in ("PA", "La") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def ink_map(pixels: np.ndarray) -> np.ndarray:
    """Float ink in [0, 1] (1 = ink) from any grey, grey+alpha, RGB or RGBA array, polarity found."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12) * 255
    a = a.astype(np.float32) / 255
    if a.ndim == 3 and a.shape[2] in (2, 4):
        alpha = a[..., -1]
        if alpha.max() - alpha.min() > 0.5:
            # Ink drawn on a transparent background (an HTML canvas export): the strokes are
            # where the image is opaque, whatever their colour.
            return alpha
        a = a[..., :-1]
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if a.shape[2] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {np.shape(pixels)}")
    # Polarity from the border, which is paper in any photo or scan of a single digit:
    # light paper means dark ink, which is inverted to MNIST's white on black.
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return 1 - a if np.median(border) > 0.5 else a


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """An image array of one digit -> the 28x28 uint8 MNIST-style image (white ink on black)."""
    ink = ink_map(pixels)
    h, w = ink.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{w}x{h} is too small to hold a digit")
    # Level the background (paper is the most common value) and stretch the contrast to 0..1,
    # using a high percentile rather than the maximum so one hot pixel does not set the scale.
    ink = ink - np.median(ink)
    top = float(np.percentile(ink, 99.5)) if ink.size > 400 else float(ink.max())
    top = max(top, float(ink.max()) * 0.5)
    if top < MIN_CONTRAST:
        raise ValueError("no ink found: the image is blank or has too little contrast")
    ink = np.clip(ink / top, 0, 1)
    mask = ink > INK_LEVEL
    # Light noise is not ink: drop mask pixels with fewer than two neighbours in the mask.
    p = np.pad(mask, 1).astype(np.uint8)
    h2, w2 = mask.shape
    neighbours = sum(p[dy:dy + h2, dx:dx + w2] for dy in (0, 1, 2) for dx in (0, 1, 2) if (dy, dx) != (1, 1))
    mask &= neighbours >= 2
    if not mask.any():
        raise ValueError("no ink found: nothing stands out from the background")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top_, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.where(ink[top_:bottom, left:right] > INK_LEVEL * 0.4, ink[top_:bottom, left:right], 0)
    digit = fit_box(crop)
    return centre_of_mass_place(digit)


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

    ink = ink_map(pixels)
    im = Image.fromarray((ink * 255).astype(np.uint8), "L").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(im)
