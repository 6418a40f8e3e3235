"""ONNX export checked against PyTorch with onnxruntime on the whole MNIST test set."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

from lenet.evaluation.scoring import Split, score
from lenet.nn.torch_model import load_model
from lenet.pretrained import bundled_model_path


def test_onnx_matches_pytorch_on_the_test_set(mnist, tmp_path):
    out = tmp_path / "lenet.onnx"
    r = subprocess.run([sys.executable, "-m", "lenet", "export", "--output", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and len(r.stdout.splitlines()) == 1  # one line: what was written, no torch chatter

    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    contract = json.loads(meta["input_contract"])
    assert contract["input"] == "pixels" and contract["dtype"] == "float32" and "white" in contract["polarity"]
    assert proto.opset_import[0].version >= 17

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    pixels = mnist.test_images.astype(np.float32)[:, None]  # raw 0..255: the graph normalises
    got = np.concatenate([session.run(["probabilities"], {"pixels": pixels[i:i + 1000]})[0]
                          for i in range(0, len(pixels), 1000)])

    model, config, _ = load_model(bundled_model_path())
    split = Split.of(mnist.test_images, mnist.test_labels, "test")
    ref = score(model, split, config, return_probabilities=True)
    assert got.shape == (10_000, 10)
    assert (got.argmax(1) == ref.predictions).mean() >= 0.999
    assert np.abs(got - ref.probabilities).max() < 1e-4
    # The batch axis is dynamic: one image works too.
    assert session.run(None, {"pixels": pixels[:1]})[0].shape == (1, 10)
