"""Read IDX files, the format MNIST and its look-alikes are published in.

The layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian
header of a magic number whose third byte is the element type and fourth the
number of dimensions, one int32 per dimension, then the elements row-major.
Images are unsigned bytes with magic 2051 (0x00000803, three dimensions),
labels unsigned bytes with magic 2049 (0x00000801, one dimension).

`parse_idx` is pure (bytes in, array out); `read_idx` adds the file system and
gzip. Every problem is a `ValueError` that names the file and what was wrong.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lenet.errors import DataError
from lenet.files import open_regular

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension (count)
KINDS = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
GZIP_MAGIC = b"\x1f\x8b"

# A generous cap on the decompressed size, so a hostile .gz cannot fill memory:
# EMNIST's largest split (byclass, 697,932 images) is 547 MB.
MAX_BYTES = 2 * 1024**3


def parse_idx(data: bytes, name: str = "<bytes>", expect: int | None = None) -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file of unsigned bytes.

    `expect` is IMAGES_MAGIC or LABELS_MAGIC to insist on one kind. Returns a
    read-only uint8 array shaped as the header says.
    """
    if len(data) == 0:
        raise DataError(f"{name}: the file is empty")
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (magic number {magic:#010x}; "
                         f"expected {IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels)")
    if data[2] != 0x08:
        raise DataError(f"{name}: element type {data[2]:#04x} is not unsigned byte (0x08)")
    if magic not in KINDS:
        raise DataError(f"{name}: magic number {magic} is neither images "
                         f"({IMAGES_MAGIC}) nor labels ({LABELS_MAGIC})")
    if expect is not None and magic != expect:
        raise DataError(f"{name}: this is a {KINDS[magic]} file (magic {magic}), "
                         f"expected {KINDS[expect]} (magic {expect})")
    ndim = data[3]  # 3 for images, 1 for labels: part of the magic number checked above
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: the header needs {header} bytes, the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in shape[1:]):
        raise DataError(f"{name}: zero-sized dimension in shape {shape}")
    count = int(np.prod(shape, dtype=np.int64))
    if header + count != len(data):
        raise DataError(f"{name}: header shape {shape} needs {header + count:,} bytes, "
                         f"the file has {len(data):,} (truncated or padded)")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(shape)


def read_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed when it is gzip (detected by its magic, not its name)."""
    with open_regular(path) as f:  # a FIFO or device is an error, not a hang
        head = f.read(2)
        f.seek(0)
        if head != GZIP_MAGIC:
            data = f.read(MAX_BYTES + 1)
        else:
            try:
                with gzip.GzipFile(fileobj=f) as g:
                    data = g.read(MAX_BYTES + 1)
            except EOFError:
                raise DataError(f"{path}: the gzip stream is truncated (download it again)") from None
            except (gzip.BadGzipFile, zlib.error) as e:
                raise DataError(f"{path}: corrupt gzip data ({e})") from None
    if len(data) > MAX_BYTES:
        raise DataError(f"{path}: more than {MAX_BYTES:,} bytes decompressed; refusing")
    return data


def read_idx(path: str | Path, expect: int | None = None) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw."""
    return parse_idx(read_bytes(path), str(path), expect)


def check_pair(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    """Images and labels of one split must agree in number."""
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images):,} images but {len(labels):,} labels")
