"""Decode people's image files into arrays, with bounds on bytes, pixels and formats.

Bounded: at most MAX_FILE_BYTES, MAX_PIXELS pixels (checked from the header, before any
decoding), formats in FORMATS. Larger images are reduced (anti-aliased) to WORK_SIDE on the
longer side; a larger JPEG is first decoded at a reduced scale (draft mode), never below
DRAFT_SIDE. Every failure is a `ValueError` that names the file.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from lenet.errors import ImageError, LenetError, TooLarge

WORK_SIDE = 1600   # decoded images are reduced to this: a 60 px digit in a 4000 px photo is 24 px
DRAFT_SIDE = 1000  # a JPEG over WORK_SIDE is decoded at a DCT scale that keeps this: a 60 px digit in 2000 stays 30
MIN_SIDE = 8       # smaller than this holds no legible digit
MAX_PIXELS = 40_000_000  # our own decompression-bomb limit (a 48 MP phone photo is rejected)
MAX_FILE_BYTES = 20 * 1024**2
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # what Pillow may decode for us
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) into an array: (H, W) grey, (H, W, 2|3|4) colour/alpha."""
    return decode_image(source, name)[0]


def decode_image(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, float]:
    """`load_image`'s array, and the scale it was reduced by (pixels of the image as given per
    pixel of the array, 1.0 when not reduced): boxes found in the array times the scale are in
    the coordinates of the image as given."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "<bytes>"
    else:
        from lenet.files import read_bounded

        # Regular files only, read with a bound: a FIFO or /dev/zero is an error, not a hang.
        data = read_bounded(source, MAX_FILE_BYTES, "image")
        name = name or str(source)
    if not data:
        raise ImageError(f"{name}: empty file")
    if len(data) > MAX_FILE_BYTES:
        raise TooLarge(f"{name}: larger than {MAX_FILE_BYTES // 1024**2} MB")
    plain = plain_png(data)
    if plain is not None:  # the header read here, the pixels by libspng: no Pillow image at all
        width, height, channels = plain
        check_size(name, width, height)
        pixels = spng_decode(data)
        if pixels is not None and plain_pixels(pixels, width, height, channels):
            return pixels, 1.0
    try:
        with warnings.catch_warnings():
            # Our pixel limit is checked from the header, before any decoding; Pillow's own
            # bomb check would fire later and differently, so it is made an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = im.size
            check_size(name, width, height)
            im.draft("L", draft_size(width, height))  # JPEG: decoded at a reduced scale when it is big
            quick = quick_decode(im, data) if im.size == (width, height) else None
            if quick is not None:
                return quick, 1.0
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # phone photos: honour the orientation tag
            try:
                im = to_array_mode(im)
            except ValueError as e:  # its pixels: not finite
                raise ImageError(f"{name}: {e}") from None
            given = max(width, height)  # the side as given; draft() may already have reduced it
            if max(im.size) > WORK_SIDE:
                im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    except LenetError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image this tool reads ({', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own check fires first for images far over its default; ours is lower.
        raise TooLarge(f"{name}: over the limit of {MAX_PIXELS:,} pixels ({e})") from None
    except (OSError, SyntaxError, EOFError, ValueError) as e:  # truncated or corrupt (some plugins: ValueError)
        raise ImageError(f"{name}: cannot decode the image ({e})") from None
    return np.asarray(im), given / max(im.size)


def check_size(name: str, width: int, height: int) -> None:
    """Refuse an image whose header declares more than MAX_PIXELS, or a side under MIN_SIDE."""
    if width * height > MAX_PIXELS:
        raise TooLarge(f"{name}: {width}x{height} is {width * height:,} pixels, "
                       f"over the limit of {MAX_PIXELS:,}")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} is too small to hold a digit "
                         f"(at least {MIN_SIDE}x{MIN_SIDE})")


PNG_MODES = {0: 1, 2: 3, 6: 4}  # a PNG's colour type -> its channels: grey (L), RGB, RGBA


def plain_png(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, channels) of the plainest PNG, read from its IHDR chunk: 8 bits a channel,
    grey, RGB or RGBA, no transparency or orientation chunk, not to be reduced (what `quick_decode`
    takes from Pillow's header); None for any other file, or a header that does not parse."""
    if len(data) < 33 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if (depth != 8 or colour not in PNG_MODES or compression or filtering or interlace > 1
            or max(width, height) > WORK_SIDE or b"tRNS" in data or b"eXIf" in data):
        return None
    return width, height, PNG_MODES[colour]


def draft_size(width: int, height: int) -> tuple[int, int]:
    """The size to ask of a JPEG's draft mode (decoding at 1/2, 1/4 or 1/8 scale in the DCT, far
    cheaper than decoding whole and reducing after): for an image over WORK_SIDE, one whose longer
    side stays at least DRAFT_SIDE, which draft mode never goes below; else the image's own size."""
    if max(width, height) <= WORK_SIDE:
        return width, height
    factor = max(width, height) / DRAFT_SIDE
    # A long thin image keeps the short side the working size would leave it, up to 2 * MIN_SIDE:
    # reduced further it would be too small to read.
    keep = [min(side, 2 * MIN_SIDE, math.ceil(side * WORK_SIDE / max(width, height))) for side in (width, height)]
    return max(keep[0], math.ceil(width / factor)), max(keep[1], math.ceil(height / factor))


def quick_decode(im, data: bytes) -> np.ndarray | None:
    """The pixels Pillow would give for the plainest files (an 8-bit grey, RGB or RGBA PNG with no
    orientation or transparency chunk; a grey-decoded JPEG, whole, upright, not to be reduced),
    decoded by OpenCV, which does the same decoding with less around it (libspng, when installed,
    has had its try in `decode_image` already). None for anything else, or when it fails: Pillow
    then decodes it, and says what is wrong."""
    import cv2

    width, height = im.size
    if max(width, height) > WORK_SIDE:
        return None
    if im.format == "PNG" and im.mode in ("L", "RGB", "RGBA") and "transparency" not in im.info \
            and b"eXIf" not in data and im.info.get("bits", 8) == 8:
        flag, channels = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION, len(im.mode)
    elif (im.format == "JPEG" and im.mode == "L" and data.endswith(b"\xff\xd9")
          and im.getexif().get(0x0112, 1) == 1):
        flag, channels = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION, 1
    else:
        return None
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if pixels is None or not plain_pixels(pixels, width, height, channels):
        return None
    if channels == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels


def plain_pixels(pixels: np.ndarray | None, width: int, height: int, channels: int) -> bool:
    """Whether a decoder's `pixels` are what the header promised: 8 bits, its size, its channels."""
    return pixels is not None and pixels.dtype == np.uint8 and pixels.shape[:2] == (height, width) \
        and (pixels.shape[2] if pixels.ndim == 3 else 1) == channels


def spng_decode(data: bytes) -> np.ndarray | None:
    """A PNG's pixels by libspng (pyspng), faster than libpng on a canvas drawing; None when pyspng
    is not installed, the chunks' checksums do not hold, or it cannot decode it."""
    spng = pyspng()
    if spng is None or not chunks_intact(data):
        return None
    try:
        return spng.load(data)
    except (RuntimeError, ValueError):  # corrupt or unusual: Pillow says what is wrong
        return None


def chunks_intact(data: bytes) -> bool:
    """Whether every chunk of a PNG holds its CRC: pyspng decodes without checking them, so a
    damaged file would give wrong pixels instead of the error Pillow gives."""
    at = 8  # past the signature
    while at + 12 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        end = at + 8 + length
        if end + 4 > len(data) or zlib.crc32(data[at + 4:end]) != int.from_bytes(data[end:end + 4], "big"):
            return False
        if data[at + 4:at + 8] == b"IEND":
            return True
        at = end + 4
    return False


@functools.cache
def pyspng():
    """The pyspng module, or None: looked for once, since a failed import searches the path each time."""
    try:
        import pyspng
    except ImportError:  # optional (lenet[png]): OpenCV decodes the same pixels
        return None
    return pyspng


def declared_pixels(data: bytes) -> int:
    """The pixel count an image's header declares, read without decoding (0 when unreadable:
    decoding will then say what is wrong). A PNG's size is read straight from its IHDR chunk, where
    Pillow reads it too, because opening the file with Pillow costs more than serving a small image."""
    from PIL import Image

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(data), formats=FORMATS).size
    except Exception:  # any header Pillow cannot read
        return 0
    return width * height


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


def stretched(a: np.ndarray) -> np.ndarray:
    """Numbers of any range as float64 0..1, the darkest 0 and the lightest 1 (a flat image: 0).
    Pixels that are not numbers, or not finite (a NaN in a float TIFF), are a ValueError."""
    if a.dtype.kind not in "biuf":
        raise ImageError(f"image pixels must be numbers, got an array of {a.dtype}")
    if a.size == 0:
        raise ImageError("empty image (no pixels)")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError("image has non-finite pixels (NaN or infinity)")
    lo, hi = float(a.min()), float(a.max())
    # Halves first: hi - lo of values near the float limit would overflow to infinity.
    span = hi / 2 - lo / 2
    if span <= 0:
        return np.zeros(a.shape)
    return np.clip((a / 2 - lo / 2) / span, 0, 1)
