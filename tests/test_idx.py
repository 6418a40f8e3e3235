import gzip
import re

import numpy as np
import pytest

from lenet.data import mnist as data
from lenet.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx

from conftest import idx_bytes, write_dataset


def test_parses_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images), expect=IMAGES_MAGIC), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels), expect=LABELS_MAGIC), labels)


def test_reads_gz_and_raw_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "a").write_bytes(idx_bytes(images))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b"", "empty"),
    (lambda b: b[:2], "too short"),
    (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "not unsigned byte"),
    (lambda b: b[:3] + b"\x02" + b[4:], "neither images"),
    (lambda b: b[:4] + b"\x00" * 2, "header needs 16 bytes"),
    (lambda b: b[:-1], "truncated or padded"),
    (lambda b: b + b"\x00", "truncated or padded"),
])
def test_bad_bytes_are_clear_errors(mutate, message):
    good = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=message):
        parse_idx(mutate(good), "train-images", expect=IMAGES_MAGIC)


def test_label_file_given_as_images(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8)))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: this is a labels file .* expected images"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_gz_names_the_file(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, (100, 28, 28))))[:2000])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: the gzip stream is truncated"):
        read_idx(path)


def test_corrupt_gz_and_empty_file(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(ValueError, match=re.escape("x.gz: corrupt gzip")):
        read_idx(bad)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty: the file is empty"):
        read_idx(empty)
    with pytest.raises(ValueError, match="no such file"):
        read_idx(tmp_path / "missing")


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (True, True), (False, True)])
def test_loads_a_dataset_under_either_naming(tmp_path, gz, dotted):
    parts = write_dataset(tmp_path, gz=gz, dotted=dotted)
    ds = data.load(tmp_path, download=False)
    np.testing.assert_array_equal(ds.train_images, parts["train-images-idx3-ubyte"])
    assert ds.num_classes == 10 and ds.test_images.shape == (10, 28, 28) and len(ds.sha256) == 64


def test_number_of_classes_comes_from_the_labels(tmp_path):
    write_dataset(tmp_path, n_train=30, classes=26)
    assert data.load(tmp_path, download=False).num_classes == 26


def test_images_and_labels_must_agree_in_number(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(19, np.uint8))))
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        data.load(tmp_path, download=False)


def test_swapped_files_are_caught(tmp_path):
    write_dataset(tmp_path)
    images = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(images)
    with pytest.raises(ValueError, match=re.escape("t10k-labels-idx1-ubyte.gz: this is a images file")):
        data.load(tmp_path, download=False)
