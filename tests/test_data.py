import hashlib

import pytest

from lenet.data import mnist as data

from conftest import write_dataset


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No data anywhere: an empty working directory and cache, no environment variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path / "cache" / "MNIST")
    return tmp_path


def test_search_order(nowhere, monkeypatch):
    for name in ("flag", "env", "data/MNIST", "cache/MNIST"):
        write_dataset(nowhere / name)
    monkeypatch.setenv(data.ENV_VAR, str(nowhere / "env"))
    assert data.locate(nowhere / "flag") == nowhere / "flag"
    assert data.locate() == nowhere / "env"
    monkeypatch.delenv(data.ENV_VAR)
    assert data.locate().resolve() == (nowhere / "data/MNIST").resolve()
    (nowhere / "data/MNIST/train-images-idx3-ubyte.gz").unlink()
    assert data.locate() == nowhere / "cache/MNIST"


def test_missing_everywhere_names_the_four_files(nowhere):
    with pytest.raises(ValueError) as e:
        data.locate(download=False)
    for stem in data.FILES:
        assert stem in str(e.value)
    assert "--data-dir" in str(e.value)


def test_explicit_directory_without_files_is_an_error(nowhere):
    with pytest.raises(ValueError, match="missing train-images-idx3-ubyte"):
        data.locate(nowhere / "empty")


def test_download_verifies_md5_and_renames_into_place(nowhere, monkeypatch):
    """The real download code against a local mirror (file:// URLs): good files land, a bad one never does."""
    mirror = nowhere / "mirror"
    write_dataset(mirror)
    md5 = {stem: hashlib.md5((mirror / f"{stem}.gz").read_bytes()).hexdigest() for stem in data.FILES}
    monkeypatch.setattr(data, "FILES", md5)
    target = nowhere / "dl"
    data.download_mnist(target, mirrors=("file://" + str(mirror) + "/",))
    assert data.load(target, download=False).num_classes == 10
    assert not list(target.glob(".*.tmp"))

    bad = dict(md5, **{"t10k-labels-idx1-ubyte": "0" * 32})
    monkeypatch.setattr(data, "FILES", bad)
    target2 = nowhere / "dl2"
    with pytest.raises(OSError, match="MD5 mismatch"):
        data.download_mnist(target2, mirrors=("file://" + str(mirror) + "/",))
    assert not (target2 / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list(target2.glob(".*.tmp"))


def test_offline_download_failure_is_a_clear_error(nowhere, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", ("file:///nonexistent/mirror/",))
    monkeypatch.setattr(data.download_mnist, "__defaults__", (data.MIRRORS, 1))
    with pytest.raises(ValueError, match="download failed") as e:
        data.locate()
    assert "train-images-idx3-ubyte.gz" in str(e.value)


def test_real_mnist_matches_its_published_facts(mnist):
    import numpy as np
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert np.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(mnist.train_images.mean() / 255 - 0.1307) < 1e-4
