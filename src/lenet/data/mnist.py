"""MNIST (or any dataset in its IDX layout) held in memory as uint8 tensors.

Where the files are looked for, in this order: an explicit directory
(`--data-dir`), the `LENET_DATA_DIR` environment variable, `./data/MNIST`
(the tutorial's path), then the user cache directory. When none has them, the
four files are downloaded from the public mirrors into the cache directory,
each checked against its published MD5 and renamed into place only then.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.data.idx import IMAGES_MAGIC, LABELS_MAGIC, check_pair, read_idx
from lenet.errors import DataError
from lenet.files import write_atomic

ENV_VAR = "LENET_DATA_DIR"
TUTORIAL_DIR = Path("data") / "MNIST"

# The four files under their canonical names (stem) and the MD5 of the
# canonical .gz as the mirrors serve it (torchvision's table).
FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def candidate_names(stem: str) -> list[str]:
    """File names a stem may go by: `train-images-idx3-ubyte[.gz]` or `train-images.idx3-ubyte[.gz]`."""
    dotted = stem.replace("-idx", ".idx")
    return [stem + ".gz", stem, dotted + ".gz", dotted]


def find_file(directory: Path, stem: str) -> Path | None:
    for name in candidate_names(stem):
        if (directory / name).is_file():
            return directory / name
    return None


def has_dataset(directory: Path) -> bool:
    return all(find_file(directory, stem) for stem in FILES)


def cache_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_cache_dir("lenet")) / "MNIST"


def missing_message(places: list[Path]) -> str:
    names = "\n".join(f"  {stem}.gz" for stem in FILES)
    where = "\n".join(f"  {p}" for p in places)
    return (f"MNIST not found. Put these four files (gz or uncompressed) in one directory:\n"
            f"{names}\nand pass it with --data-dir or {ENV_VAR}. Looked in:\n{where}")


def locate(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The directory that holds the four IDX files, downloading them as a last resort."""
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        # A directory the user named is where the data must be; no guessing.
        path = Path(explicit).expanduser()
        missing = [stem for stem in FILES if not find_file(path, stem)]
        if missing:
            raise DataError(f"{path}: missing {', '.join(missing)} (gz or uncompressed); "
                             + ("it does not exist" if not path.is_dir() else "check the names"))
        return path
    places = [TUTORIAL_DIR, cache_dir()]
    for path in places:
        if has_dataset(path):
            return path
    if not download:
        raise DataError(missing_message(places))
    try:
        return download_mnist(cache_dir())
    except OSError as e:
        raise DataError(f"download failed ({e}).\n" + missing_message(places)) from None


def download_mnist(directory: Path, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 30) -> Path:
    """Fetch the four .gz files, verify each MD5, and rename each into place."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem, md5 in FILES.items():
        target = directory / f"{stem}.gz"
        if target.is_file():
            continue
        errors = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + target.name, timeout=timeout) as r:
                    body = r.read(64 * 1024 * 1024)
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{mirror}: {getattr(e, 'reason', e)}")
                continue
            if hashlib.md5(body).hexdigest() != md5:
                errors.append(f"{mirror}: MD5 mismatch for {target.name}")
                continue
            write_atomic(target, lambda tmp, body=body: Path(tmp).write_bytes(body))
            break
        else:
            raise OSError(f"could not fetch {target.name}: " + "; ".join(errors))
    return directory


@dataclass
class Dataset:
    """A train and a test split as uint8 arrays: images (N, H, W), labels (N,)."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    root: Path
    sha256: str  # of the four decompressed files' contents, in FILES order

    @property
    def num_classes(self) -> int:
        # From the labels, so Fashion-MNIST, KMNIST or EMNIST letters need no flag
        # (load() has checked that they are 0..K-1 with every class present).
        return int(self.train_labels.max()) + 1

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])


def load(data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Read the four IDX files into memory and check that they fit together; a folder named
    explicitly that holds an image-folder tree instead is read by `load_image_folder`."""
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit and is_image_folder(Path(explicit).expanduser()):
        return load_image_folder(Path(explicit).expanduser())
    root = locate(data_dir, download)
    arrays, digest = [], hashlib.sha256()
    for stem in FILES:
        path = find_file(root, stem)
        if path is None:
            raise DataError(f"{root}: no {stem} file")
        arr = read_idx(path, IMAGES_MAGIC if "images" in stem else LABELS_MAGIC)
        digest.update(arr.tobytes())
        arrays.append(arr)
    train_x, train_y, test_x, test_y = arrays
    check_pair(train_x, train_y, f"{root} (train)")
    check_pair(test_x, test_y, f"{root} (t10k)")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{root}: train images are {train_x.shape[1:]}, test images {test_x.shape[1:]}")
    for split, labels in (("train", train_y), ("t10k", test_y)):
        if len(labels) == 0:
            raise DataError(f"{root} ({split}): the split holds no images")
    check_classes(train_y, test_y, root)
    return Dataset(train_x, train_y, test_x, test_y, root, digest.hexdigest())


TEST_EVERY = 10  # a tree without train/ and test/: every 10th image of each class is the test split


def label_folders(path: Path) -> bool:
    return path.is_dir() and any(p.is_dir() and p.name.isdigit() for p in path.iterdir())


def is_image_folder(path: Path) -> bool:
    """An image-folder tree (DIR/0, DIR/1, ... or DIR/train/0, ..., DIR/test/0, ...), not IDX files."""
    return path.is_dir() and not any(find_file(path, stem) for stem in FILES) and (
        label_folders(path) or label_folders(path / "train"))


def load_image_folder(root: Path, log=None) -> Dataset:
    """A data set from image files, one subfolder per class named by its label (0, 1, ...): any image
    `predict` reads; 28x28 images are taken as they are, others are read as `predict` reads them.
    DIR/train and DIR/test are the splits when there; else every TEST_EVERY-th image of each class
    is the test split. Entries that are not images of a label are named on stderr and skipped."""
    import sys

    from lenet.data.samples import MAX_FOLDER_IMAGES, read_folder

    log = log or (lambda line: print(line, file=sys.stderr))
    if label_folders(root / "train"):
        if not label_folders(root / "test"):
            raise DataError(f"{root}: has train/ but no test/ with label folders (0, 1, ...); give both, "
                             f"or put the label folders in {root} itself")
        splits = [read_folder(root / "train", limit=MAX_FOLDER_IMAGES), read_folder(root / "test",
                                                                                    limit=MAX_FOLDER_IMAGES)]
        for name, split in zip(("train", "test"), splits, strict=True):
            if split.skipped:
                log(f"{root / name}: {split.skipped_line()}")
        (train_x, train_y), (test_x, test_y) = [(f.images, f.labels) for f in splits]
    else:
        folder = read_folder(root, limit=MAX_FOLDER_IMAGES)
        if folder.skipped:
            log(f"{root}: {folder.skipped_line()}")
        rank = np.zeros(len(folder), np.int64)  # each image's place within its class
        for label in np.unique(folder.labels):
            where = np.flatnonzero(folder.labels == label)
            rank[where] = np.arange(len(where))
        test = rank % TEST_EVERY == TEST_EVERY - 1
        train_x, train_y = folder.images[~test], folder.labels[~test]
        test_x, test_y = folder.images[test], folder.labels[test]
    for split_name, labels in (("train", train_y), ("test", test_y)):
        if len(labels) == 0:
            raise DataError(f"{root} ({split_name}): no readable images in label folders (0, 1, ...)")
    check_classes(train_y, test_y, root)
    digest = hashlib.sha256()
    for arr in (train_x, train_y.astype(np.uint8), test_x, test_y.astype(np.uint8)):
        digest.update(arr.tobytes())
    return Dataset(train_x, train_y, test_x, test_y, root, digest.hexdigest())


def check_classes(train_labels: np.ndarray, test_labels: np.ndarray, root) -> None:
    """Labels must be 0..K-1 with every class in the training split, so K is the number of classes;
    a stray 255 would otherwise make a 256-class model without a word."""
    from lenet.config import MAX_CLASSES

    counts = np.bincount(train_labels, minlength=2)
    k = len(counts)
    if k > MAX_CLASSES:
        raise DataError(f"{root} (train): labels go up to {k - 1}; at most {MAX_CLASSES} classes are supported")
    absent = np.flatnonzero(counts == 0)
    if len(absent):
        raise DataError(f"{root} (train): labels must be 0..K-1 with every class present; labels go up to "
                         f"{k - 1} but {', '.join(map(str, absent[:10]))}{' ...' if len(absent) > 10 else ''} "
                         f"never occur (a corrupt label file?)")
    if int(test_labels.max()) >= k:
        raise DataError(f"{root} (t10k): label {int(test_labels.max())} does not occur in the training labels "
                         f"(0..{k - 1})")


def mnist(data_dir: str | Path | None = None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, train labels), (test images, test labels)) as uint8 arrays, (N, 28, 28) and (N,),
    as Keras's mnist.load_data() gives them; found (or downloaded) as `lenet train` finds them."""
    ds = load(data_dir)
    return (ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)
