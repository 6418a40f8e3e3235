"""What numbers an array of pixels may hold, written once for the Python API and the HTTP API.

uint8 is 0..255. Floating-point pixels are 0..255 too, or 0..1 (matplotlib's and PIL's "F"
images, torchvision's ToTensor): a float image whose values all lie within 0..1 is read as 0..1.
Anything else is an error that says so, never a silent stretch or an all-black image.
"""

from __future__ import annotations

import numpy as np

from lenet.errors import ImageError


def as_uint8(pixels, what: str = "pixel values") -> np.ndarray:
    """`pixels` as uint8 0..255 by the contract above; other integer types are left to the reader."""
    a = np.asarray(pixels)
    if a.dtype == np.uint8 or a.dtype.kind not in "fb":
        return a
    a = a.astype(np.float64)
    if a.size == 0:
        raise ImageError("empty image (no pixels)")
    if not np.isfinite(a).all():
        raise ImageError("image has non-finite pixels (NaN or infinity)")
    if a.min() < 0 or a.max() > 255:
        raise ImageError(f"{what} must be numbers from 0 to 255, or from 0 to 1")
    if a.max() <= 1:
        a = a * 255
    return a.round().astype(np.uint8)
