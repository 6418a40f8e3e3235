"""Export a saved model to ONNX, with the input contract inside the graph and its metadata.

The graph takes raw pixels and returns probabilities: normalisation and softmax
are part of it, so someone with only the .onnx file and onnxruntime feeds
MNIST-style images (28x28, white ink on black, 0..255 as float32) and reads
ten probabilities. Optional dependencies (onnx, onnxruntime) are imported here only.
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

from lenet.files import write_atomic

OPSET = 18
INPUT, OUTPUT = "pixels", "probabilities"


def input_contract(config) -> dict:
    return {
        "input": INPUT, "shape": ["batch", 1, config.image_size, config.image_size], "dtype": "float32",
        "scaling": "raw pixel values 0..255 (the graph normalises them itself)",
        "polarity": "white (255) ink on black (0) background, as MNIST; digit fitted into 20x20 and "
                    "centred by centre of mass in 28x28 (lenet.preprocess does this)",
        "output": OUTPUT, "output_shape": ["batch", config.num_classes],
        "classes": list(range(config.num_classes)),
    }


@contextmanager
def quiet_exporter():
    """Silence what torch's exporter says on every run and asks nothing of the user: that
    torchvision's operators are skipped (we use none) and deprecations inside torch itself."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model_path: str | Path, output: str | Path, opset: int = OPSET) -> dict:
    """Write `output` (.onnx) from a saved model; returns the metadata written into it."""
    import onnx
    import torch

    from lenet.nn.model_file import test_accuracy
    from lenet.nn.torch_model import load_model

    model, config, info = load_model(model_path)

    class WithContract(torch.nn.Module):
        """Raw pixels in, probabilities out."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, pixels):
            return torch.softmax(self.net(config.normalize(pixels)) / config.temperature, dim=1)

    wrapped = WithContract(model).eval()
    example = torch.zeros(2, 1, config.image_size, config.image_size)
    meta = {"lenet_model": json.dumps(config.to_dict()), "input_contract": json.dumps(input_contract(config)),
            "test_accuracy": str(test_accuracy(info) or ""),
            "training_command": info.get("command", "")}

    def write(tmp):
        with quiet_exporter():
            onnx_program = torch.onnx.export(
                wrapped, (example,), input_names=[INPUT], output_names=[OUTPUT], opset_version=opset,
                dynamic_shapes={"pixels": {0: torch.export.Dim("batch", min=1)}}, dynamo=True, verbose=False)
        proto = onnx_program.model_proto
        proto.doc_string = "LeNet digit recognizer (lenet). " + input_contract(config)["polarity"]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    write_atomic(Path(output), write)
    return meta
