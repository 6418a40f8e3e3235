"""Shared fixtures: hand-built IDX bytes, and the real MNIST where a test needs it."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, built by hand: magic, dimensions, data."""
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_dataset(directory: Path, n_train=20, n_test=10, classes=10, size=28, gz=True, dotted=False, seed=0):
    """A small IDX dataset in MNIST's layout, with random pixels and labels 0..classes-1."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size)),
        "train-labels-idx1-ubyte": np.arange(n_train) % classes,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % classes,
    }
    for stem, arr in parts.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        data = idx_bytes(arr)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return parts


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST. Tests that need it fail, never skip, when it is missing: CI must provide it."""
    path = os.environ.get("LENET_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.fail("LENET_DATA_DIR must point at the four MNIST IDX files (.ci/run sets it)")
    return Path(path)


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from lenet.data import mnist as data
    return data.load(mnist_dir, download=False)


@pytest.fixture
def digits(tmp_path, mnist):
    """Three MNIST test digits disguised as ink on paper, in a folder of PNGs (the hostile tests' inputs)."""
    from PIL import Image

    from lenet.data.disguise import disguise

    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(disguise(mnist.test_images[i], "dark-on-light", rng)).save(folder / f"d{i}.png")
    return folder
