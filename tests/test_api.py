"""The Python API (`import lenet`): the same library the command is a thin layer over."""

import json
import subprocess
import sys
from pathlib import Path

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


NUMBER = Path(__file__).parent.parent / "docs/examples/number-2026.png"


def test_one_type_per_result_is_what_the_command_the_api_and_the_server_give(clf, capsys):
    """A Prediction and a NumberReading are built once, where the image is read: the command's
    JSON, the server's answers and the API's objects are their to_json(), nothing added or removed
    but the file's name and the 28x28s the server is asked for."""
    from fastapi.testclient import TestClient

    from lenet.cli.main import main
    from lenet.serving.app import create_app

    one, row = clf.predict(NUMBER), clf.read_number(NUMBER)
    assert isinstance(row, lenet.NumberReading) and row.number == "2026"
    assert row.unsure == any(d.unsure for d in row.digits) and row.boxes == [d.box for d in row.digits]
    assert all(d.probabilities == () and d.seen.shape == (28, 28) for d in row.digits)
    data, headers = NUMBER.read_bytes(), {"content-type": "image/png"}
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        assert client.post("/predict", content=data, headers=headers).json() == one.to_json()
        number = client.post("/predict/number", content=data, headers=headers).json()
        assert number.pop("preprocessed") == [d.seen.tolist() for d in row.digits]
        assert number == row.to_json()
        explained = client.post("/explain", content=data, headers=headers).json()
        assert {key: explained[key] for key in one.to_json()} == one.to_json()
    capsys.readouterr()
    assert main(["predict", "--number", "--json", str(NUMBER)]) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(NUMBER), **row.to_json()}


def test_a_box_is_left_top_right_bottom_and_written_as_a_list():
    from lenet.reading.morphology import Box
    from lenet.reading.prediction import FileReading

    box = Box(3, 5, 10, 25)
    assert (box.width, box.height) == (7, 20) and json.dumps(box) == "[3, 5, 10, 25]"
    assert FileReading("x.png", error="not an image").to_json() == {"file": "x.png", "error": "not an image"}
    with pytest.raises(ValueError, match="either"):  # an entry holds what was read or why not, never both
        FileReading("x.png")
