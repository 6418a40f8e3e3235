"""`lenet explain`: every layer's output from the NumPy pass that predicts, checked against torch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet.config import ModelConfig
from lenet.evaluation.explain import explain, layer_outputs
from lenet.nn.model_file import save_model
from lenet.nn.network import describe
from lenet.nn.numpy_model import NumpyModel
from lenet.nn.torch_model import build_model, init_weights

from helpers import cli, lenet

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "photo-9.jpg"


@pytest.mark.parametrize("config", [ModelConfig("lenet5", "sigmoid"), ModelConfig("lenet5", "relu"),
                                    ModelConfig("seed"), ModelConfig("fast", "relu")], ids=str)
def test_every_layer_matches_torch_layers(config, tmp_path, mnist):
    torch.manual_seed(0)
    model = build_model(config)
    init_weights(model, "xavier-gain", config.activation)
    if config.arch == "fast":  # batch-norm statistics away from 0 and 1, as a trained model has
        model.train()
        model(torch.randn(64, 1, 28, 28))
    model.eval()
    save_model(tmp_path / "m.safetensors", model, {"model": config.to_dict()})
    numpy_model = NumpyModel.load(tmp_path / "m.safetensors")
    seen = mnist.test_images[0]
    ours = layer_outputs(numpy_model, seen)
    x = config.normalize(torch.from_numpy(seen[None, None].astype(np.float32)))
    with torch.no_grad():
        theirs = [out[0].numpy() for _, out in model.layers(x)]
    assert [layer.name for layer, _ in ours] == [layer.name for layer in describe(config)]
    for (layer, a), b in zip(ours, theirs, strict=True):
        assert a.shape == b.reshape(a.shape).shape == layer.shape, layer.name
        np.testing.assert_allclose(a, b.reshape(a.shape), rtol=1e-4, atol=1e-4, err_msg=layer.name)


def test_saliency_is_about_the_ink(mnist):
    from lenet.pretrained import bundled_model_path

    result = explain(NumpyModel.load(bundled_model_path()), mnist.test_images[0])
    assert result.digit == int(mnist.test_labels[0])
    sal = result.saliency[result.digit]
    ink = result.seen > 64
    assert sal[ink].mean() > 5 * abs(sal[~ink].mean())  # blanking ink matters, blanking background hardly


def test_the_command_writes_the_figure_or_json_without_torch(tmp_path):
    r = cli("explain", str(EXAMPLE), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    figure = tmp_path / "explain-photo-9.png"
    assert "reads as 9" in r.stdout and Image.open(figure).size[1] > 600
    r = cli("explain", str(EXAMPLE), "--json")
    out = json.loads(r.stdout)
    assert [(layer["name"], layer["title"]) for layer in out["layers"]][:2] == [("c1", "C1 16@28x28"),
                                                                              ("s2", "S2 16@14x14")]
    assert out["digit"] == 9 and np.array(out["layers"][0]["values"]).shape == (16, 28, 28)
    code = ("import sys; from lenet.cli.main import main; main(['explain', sys.argv[1], '--json']); "
            "assert 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_snapshots_record_how_c1_learns(tmp_path, mnist_dir):
    out = tmp_path / "run"
    r = lenet("train", "--recipe", "lenet5", "--subset", "2000", "--epochs", "2", "--snapshots", "--log-every", "0",
              "--no-plots", "--data-dir", str(mnist_dir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    gif = Image.open(out / "learning.gif")
    assert gif.n_frames == 1 + 8 + 2  # the start, 8 in the first epoch, one per epoch
    frames = []
    for i in (0, gif.n_frames - 1):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("L"), dtype=np.int16))
    assert np.abs(frames[0] - frames[1]).mean() > 1  # the filters and maps changed
    assert Image.open(out / "learning.png").size[1] > 400
