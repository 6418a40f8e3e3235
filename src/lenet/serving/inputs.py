"""What a request sends, read and bounded before any work: content type (415), form files, JSON
pixels, the pixels the images declare (413), then decoding; each refusal a `RequestError` with its
HTTP status and a message."""

from __future__ import annotations

import json

import numpy as np
from fastapi import Request

from lenet.errors import LenetError, OverBudget, TooLarge
from lenet.reading.digit import read_digit
from lenet.reading.image import declared_pixels, decode_image
from lenet.reading.values import as_uint8
from lenet.serving.guard import BodyTooLarge

MAX_BATCH = 64               # images per /predict/batch request
# Work per request, bounded before decoding: pixels the images' headers declare, all images
# together (a small compressed file can declare far more pixels than memory holds), and the time
# decoding may take; the rest of a batch past that is answered with an error each.
MAX_REQUEST_PIXELS = 24_000_000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "image/tiff",
               "application/octet-stream"}


class RequestError(LenetError):
    """A refused request, with the HTTP status it is answered with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.http_status, self.message = status, message


def decode(data: bytes, name: str = "upload", read=read_digit):
    """Image bytes -> what `read` makes of them (a Reading), with the HTTP status of each failure."""
    try:
        pixels, scale = decode_image(data, name)
    except LenetError as e:  # its type says which: TooLarge 413, ImageError 400
        raise RequestError(e.http_status, str(e)) from None
    return from_pixels(pixels, lambda pixels: read(pixels, scale=scale))  # boxes in the upload's coordinates


def from_pixels(pixels: np.ndarray, read=read_digit):
    try:
        return read(pixels)
    except LenetError as e:
        # A decoded image it cannot read is a 422, unless the type says more (too many digits, out of time).
        raise RequestError(e.http_status if isinstance(e, (TooLarge, OverBudget)) else 422, str(e)) from None


def pixels_from_json(body: bytes) -> np.ndarray:
    """A JSON body {"pixels": rows of numbers 0..255 or 0..1} -> uint8 array; bad JSON is a 400, a bad shape a 422."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # also nesting past Python's stack, integers too long to parse
        raise RequestError(400, "the body is not valid JSON (or nests too deep, or has too long numbers)") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, 'expected a JSON object {"pixels": [[...28 numbers...], ...28 rows]}')
    try:
        arr = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise RequestError(422, "pixels must be rows of numbers") from None
    if arr.ndim != 2 or not (8 <= arr.shape[0] <= 512 and 8 <= arr.shape[1] <= 512):
        raise RequestError(422, f"pixels must be a 2-D grid, 28x28 (8 to 512 a side); got shape {arr.shape}")
    try:
        return as_uint8(arr)  # 0..255, or 0..1: the Python API's contract (values.py)
    except LenetError as e:
        raise RequestError(422, str(e)) from None


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def form_files(request: Request) -> list[tuple[bytes, str]]:
    try:
        form = await request.form(max_files=MAX_BATCH + 1, max_fields=MAX_BATCH + 10)
    except BodyTooLarge:
        raise  # Guard answers 413
    except Exception as e:  # the multipart parser's errors vary by version
        raise RequestError(400, f"malformed multipart form ({e})") from None
    files = []
    for _, value in form.multi_items():
        if not isinstance(value, str):  # a file part; the others are plain fields
            files.append((await value.read(), value.filename or "upload"))
    return files


def check_pixel_budget(files: list[tuple[bytes, str]]) -> int:
    """The pixels the images declare together; 413 before any decoding when over MAX_REQUEST_PIXELS."""
    total = sum(declared_pixels(data) for data, _ in files)
    if total > MAX_REQUEST_PIXELS:
        raise RequestError(413, f"the images declare {total:,} pixels together; at most "
                                f"{MAX_REQUEST_PIXELS:,} per request")
    return total



async def prepared(request: Request):
    """(prepare, args, pixels) for the one image of a /predict-style request: prepare(*args) is the
    Reading; pixels what the image declares (the work it will take). Reads the body; refuses bad
    content types and pixel budgets."""
    kind = content_type(request)
    if kind == "application/json":
        image = pixels_from_json(await request.body())
        return from_pixels, (image,), image.size
    if kind == "multipart/form-data":
        files = await form_files(request)
        if len(files) != 1:
            raise RequestError(422, f"expected one file in the form, got {len(files)}")
        return decode, files[0], check_pixel_budget(files)
    if kind in IMAGE_TYPES:
        data = await request.body()
        return decode, (data,), check_pixel_budget([(data, "upload")])
    raise RequestError(415, f"unsupported content type {kind or '(none)'}: send an image "
                            "(image/png, image/jpeg, ...), multipart/form-data or application/json")
