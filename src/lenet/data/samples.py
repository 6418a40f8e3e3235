"""Samples a user taught the model, and image-folder data sets: one subfolder per label.

A sample is the image as the user gave it, the 28x28 the network saw and the
right label. A samples folder is laid out as torchvision's ImageFolder lays out
a data set, plus the images as given and a small manifest:

    DIR/7/20261201T213000Z-1a2b3c4d.png        the 28x28 the network saw (white ink on black)
    DIR/given/20261201T213000Z-1a2b3c4d.png    the image as given (PNG)
    DIR/manifest.json                          one entry per sample: id, label, files, time
    DIR/model.safetensors                      the model `lenet teach` made from them, once there is one

Every file is written atomically and never overwritten (each sample gets a new
name); the folder is bounded in count and size. Reading is careful: links are
never followed, and each entry that is not a usable image under a label folder
is named and skipped, so a folder with junk in it still reads. Torch-free: the
server stores samples, `lenet teach` reads them.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet.errors import DataError, LenetError, TooLarge, UsageError
from lenet.files import MODEL_FILE, write_atomic, write_text_atomic

FORMAT = "lenet-samples/1"
MANIFEST = "manifest.json"
GIVEN = "given"                 # the images as given, apart from the label folders
MODEL = MODEL_FILE  # the personal model `lenet serve --learn` finds here
OURS = {MANIFEST, GIVEN, MODEL, "model.json", ".samples.lock", ".lenet.lock"}  # not junk
SIDE = 28
MAX_SAMPLES = 5_000             # samples in one folder: far more than anyone corrects by hand
MAX_GIVEN_SIDE = 512            # the image as given is kept reduced to this on its longer side
MAX_IMAGE_BYTES = 2 * 1024**2   # one stored or read image file
MAX_FOLDER_IMAGES = 250_000     # images read from one image-folder data set (MNIST as PNGs is 70,000)
MAX_LISTED = 20                 # skipped entries named one by one; the rest are counted


def default_dir() -> Path:
    """Where samples go unless --samples says: the user's data directory."""
    import platformdirs

    return Path(platformdirs.user_data_dir("lenet")) / "samples"


class FolderFull(DataError):
    """A samples folder that holds MAX_SAMPLES already (the server answers 507, Insufficient Storage)."""

    http_status = 507


@dataclass
class Folder:
    """Labelled 28x28 images read from a folder tree, and what was skipped and why."""
    images: np.ndarray                    # (N, 28, 28) uint8, white ink on black
    labels: np.ndarray                    # (N,) int64
    files: list[str]                      # each image's path, relative to the folder
    skipped: list[str] = field(default_factory=list)  # "path: why", one per bad entry

    def __len__(self) -> int:
        return len(self.labels)

    def per_label(self) -> dict[str, int]:
        counts = np.bincount(self.labels) if len(self.labels) else np.zeros(0, int)
        return {str(label): int(n) for label, n in enumerate(counts) if n}

    def skipped_line(self) -> str:
        """The skipped entries in one line ('' when none)."""
        if not self.skipped:
            return ""
        shown = "; ".join(self.skipped[:MAX_LISTED])
        more = f"; and {len(self.skipped) - MAX_LISTED} more" if len(self.skipped) > MAX_LISTED else ""
        return f"skipped {len(self.skipped)}: {shown}{more}"


@contextmanager
def _locked(directory: Path):
    """An exclusive, waiting lock on the samples folder, so two writers never pick one name or
    interleave manifest updates (the kernel drops it if the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(directory / ".samples.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, "PNG")
    return buf.getvalue()


def given_png(pixels: np.ndarray) -> bytes:
    """The image as given, as a PNG of at most MAX_GIVEN_SIDE a side."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(pixels))
    if max(im.size) > MAX_GIVEN_SIDE:
        im.thumbnail((MAX_GIVEN_SIDE, MAX_GIVEN_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def read_manifest(directory: Path) -> dict:
    """The manifest, or a fresh one when it is missing or unreadable (the label folders are the truth)."""
    from lenet.files import read_bounded

    path = directory / MANIFEST
    try:
        manifest = json.loads(read_bounded(path, 16 * 1024**2, "manifest"))
        if isinstance(manifest, dict) and isinstance(manifest.get("samples"), list):
            return manifest
    except (ValueError, RecursionError):
        pass
    return {"format": FORMAT, "samples": []}


def count_samples(directory: Path) -> int:
    """Images in the label folders (links and other entries not counted), stopping past MAX_SAMPLES."""
    n = 0
    for label in _entries(directory):
        if label.name.isdigit() and label.is_dir(follow_symlinks=False):
            for entry in _entries(Path(label.path)):
                n += entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")
                if n > MAX_SAMPLES:
                    return n
    return n


def _entries(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def add_sample(directory: str | Path, given: np.ndarray, seen: np.ndarray, label: int,
               num_classes: int = 10, source: str = "") -> Path:
    """Store one sample in `directory`; returns the path of its 28x28. `given` is the image as given
    (any pixel array), `seen` the 28x28 uint8 the network saw. Refuses a bad label, a full folder."""
    directory = Path(directory).expanduser()
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
        raise UsageError(f"label {label!r}: must be a whole number from 0 to {num_classes - 1}")
    if seen.shape != (SIDE, SIDE) or seen.dtype != np.uint8:
        raise DataError(f"the image the network saw must be 28x28 uint8, got {seen.shape} {seen.dtype}")
    if directory.exists() and not directory.is_dir():
        raise DataError(f"--samples {directory}: is a file, not a folder")
    given_bytes, seen_bytes = given_png(given), png_bytes(seen)
    if len(given_bytes) > MAX_IMAGE_BYTES:
        raise TooLarge(f"the image is {len(given_bytes):,} bytes as a PNG; at most {MAX_IMAGE_BYTES:,} are kept")
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        if count_samples(directory) >= MAX_SAMPLES:
            raise FolderFull(f"{directory}: already holds {MAX_SAMPLES:,} samples, the most one folder keeps; "
                             f"start another with --samples DIR, or remove some")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        while True:  # a new name every time: a sample is never overwritten
            sample_id = f"{stamp}-{secrets.token_hex(4)}"
            seen_path = directory / str(int(label)) / f"{sample_id}.png"
            given_path = directory / GIVEN / f"{sample_id}.png"
            if not seen_path.exists() and not given_path.exists():
                break
        write_atomic(given_path, lambda tmp: Path(tmp).write_bytes(given_bytes))
        write_atomic(seen_path, lambda tmp: Path(tmp).write_bytes(seen_bytes))
        manifest = read_manifest(directory)
        manifest["samples"].append({"id": sample_id, "label": int(label), "seen": f"{int(label)}/{sample_id}.png",
                                    "given": f"{GIVEN}/{sample_id}.png", "created": stamp, "source": source})
        write_text_atomic(directory / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return seen_path


def read_file_nofollow(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, refusing a link even if one was swapped in since it was listed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise DataError("a link, not followed" if os.path.islink(path) else f"cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise DataError("not a regular file")
        data = f.read(limit + 1)  # the size may have grown since fstat
        if max(st.st_size, len(data)) > limit:
            raise TooLarge(f"{max(st.st_size, len(data)):,} bytes, over the limit of {limit:,}")
        return data


def as_seen(pixels: np.ndarray) -> np.ndarray:
    """An image from a folder as the network's 28x28: a 28x28 grey image as it is (inverted when its
    border is light: dark ink on paper); any other image read as `lenet predict` reads it."""
    from lenet.reading.digit import read_digit
    from lenet.reading.ink import grey

    if pixels.shape[:2] == (SIDE, SIDE):
        g = pixels if pixels.ndim == 2 and pixels.dtype == np.uint8 else np.rint(grey(pixels) * 255).astype(np.uint8)
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        return 255 - g if border.mean() > 127 else g
    return read_digit(pixels).image


def read_folder(directory: str | Path, num_classes: int | None = None, limit: int = MAX_SAMPLES) -> Folder:
    """Every usable image under DIR/<label>/ as a 28x28, with each bad entry named and skipped:
    links (never followed), folders that are not labels, files that are not images or cannot be
    decoded. A label folder whose number is `num_classes` or more is an error (the model cannot
    learn it); more than `limit` images is an error."""
    from lenet.reading.image import EXTENSIONS, load_image

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    images: list[np.ndarray] = []
    labels: list[int] = []
    files: list[str] = []
    skipped: list[str] = []
    for entry in _entries(root):
        name = entry.name
        if name in OURS or name.startswith("."):
            continue
        if entry.is_symlink():
            skipped.append(f"{name}: a link, not followed")
            continue
        if not entry.is_dir(follow_symlinks=False):
            skipped.append(f"{name}: not a label folder")
            continue
        if not (name.isascii() and name.isdigit()) or len(name) > 4:
            skipped.append(f"{name}/: not a label (label folders are named 0, 1, 2, ...)")
            continue
        label = int(name)
        if num_classes is not None and label >= num_classes:
            raise DataError(f"{root / name}: label {label} is outside the model's classes 0..{num_classes - 1}")
        for item in _entries(Path(entry.path)):
            rel = f"{name}/{item.name}"
            if item.name.startswith("."):
                continue  # our temporary files, hidden files
            if item.is_symlink():
                skipped.append(f"{rel}: a link, not followed")
                continue
            if not item.is_file(follow_symlinks=False):
                skipped.append(f"{rel}: not a regular file")
                continue
            if Path(item.name).suffix.lower() not in EXTENSIONS:
                skipped.append(f"{rel}: not an image ({', '.join(sorted(EXTENSIONS))})")
                continue
            if len(files) >= limit:
                raise TooLarge(f"{root}: more than {limit:,} images; at most {limit:,} are read")
            try:
                seen = as_seen(load_image(read_file_nofollow(Path(item.path), MAX_IMAGE_BYTES), rel))
            except LenetError as e:
                skipped.append(f"{rel}: {str(e).removeprefix(rel + ': ')}")
                continue
            images.append(seen)
            labels.append(label)
            files.append(rel)
    stack = np.stack(images) if images else np.zeros((0, SIDE, SIDE), np.uint8)
    return Folder(stack, np.asarray(labels, np.int64), files, skipped)
