"""The Python API (`import lenet`): the same library the command is a thin layer over."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import lenet
from lenet.data.disguise import disguise

from helpers import cli


@pytest.fixture(scope="module")
def clf():
    return lenet.load()


@pytest.fixture(scope="module")
def photo(mnist):
    rng = np.random.default_rng(0)
    return disguise(mnist.test_images[0], "dark-on-light", rng), int(mnist.test_labels[0])


def test_predict_takes_every_kind_of_image(clf, photo, tmp_path):
    pixels, label = photo
    path = tmp_path / "d.png"
    Image.fromarray(pixels).save(path)
    rgb = np.stack([pixels] * 3, -1)
    for x in (path, str(path), path.read_bytes(), Image.open(path), pixels, rgb):
        p = clf.predict(x)
        assert p.digit == label and p.probability == max(p.probabilities) > 0.5
        assert p.seen.shape == (28, 28) and p.seen.dtype == np.uint8
    many = clf.predict_many([path, pixels])
    assert [p.digit for p in many] == [label, label]
    assert many[0] == clf.predict(path) and many[0].to_json()["digit"] == label
    with pytest.raises(ValueError, match="predict_many"):
        clf.predict([path, pixels])


def test_predict_errors_are_value_errors(clf):
    with pytest.raises(ValueError, match="no ink"):
        clf.predict(np.full((40, 40), 255, np.uint8))
    with pytest.raises(ValueError, match="cannot read a digit from a dict"):
        clf.predict({"pixels": 1})


def test_load_and_predict_need_no_torch(tmp_path, photo):
    Image.fromarray(photo[0]).save(tmp_path / "d.png")
    code = ("import sys, lenet; p = lenet.load().predict(sys.argv[1]); "
            "assert 'torch' not in sys.modules; print(p.digit)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.png")], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == str(photo[1]), r.stderr


def test_train_then_evaluate(mnist_dir, tmp_path):
    result = lenet.train("fast", data_dir=mnist_dir, out=tmp_path / "run", subset=3000, epochs=1,
                         log_every=0, progress=False, plots=False)
    assert result.model_path.is_file() and len(result.history) == 1
    assert result.accuracy > 0.9
    scores = lenet.evaluate(result.model_path, data_dir=mnist_dir)
    assert scores.n == 10_000 and len(scores.per_class) == 10
    assert abs(scores.accuracy - result.accuracy) < 1e-6  # both score every test image
    assert lenet.load(tmp_path / "run").predict(np.asarray(lenet.datasets.mnist(mnist_dir)[1][0][0])).digit in range(10)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=float("nan")), "--lr must be a finite number"),
    (dict(epochs=0), "--epochs must be a whole number"),
    (dict(optimiser="sgd"), "unknown training settings ['optimiser']"),
    (dict(recipe="fastest"), "unknown recipe 'fastest'"),
])
def test_train_checks_its_arguments_like_the_command(kwargs, message, tmp_path):
    with pytest.raises(ValueError) as e:
        lenet.train(**{"recipe": "fast", **kwargs}, out=tmp_path / "o", data_dir=tmp_path / "nowhere")
    assert message in str(e.value)


def test_datasets_mnist_gives_the_arrays(mnist_dir):
    (x, y), (x_test, y_test) = lenet.datasets.mnist(mnist_dir)
    assert x.shape == (60_000, 28, 28) and x.dtype == np.uint8 and y.shape == (60_000,)
    assert x_test.shape == (10_000, 28, 28) and set(np.unique(y_test)) == set(range(10))


def test_add_sample_keeps_an_image_given_as_an_array(clf, tmp_path):
    # pixels_of gives (pixels, scale): the sample is the pixels alone
    image = np.zeros((28, 28), np.uint8)
    image[5:23, 12:16] = 255
    path = clf.add_sample(image, 1, tmp_path)
    assert path.is_file() and path.parent.name == "1"
    assert np.asarray(Image.open(path)).shape == (28, 28)


def test_a_prediction_as_json_is_what_the_command_prints(clf, photo, tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(photo[0]).save(path)
    r = cli("predict", "--json", str(path))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed.pop("file") == str(path)
    assert printed == clf.predict(path).to_json()
