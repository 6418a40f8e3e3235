"""A drawing page that needs no server: `lenet export --web DIR` writes it as a static site.

The site is this folder's page (index.html, app.js, style.css), the reader and
network in JavaScript (lenet.js: a port of the drawing's path through
lenet.reading's digit.read_digit and ink.find_ink, and of the NumPy forward pass), and the model as a
script (model.js: the network's description from lenet.nn.network with its
weights, batch norm folded as the NumPy pass folds it, as base64 float32), so it
opens from file:// too, where a page may not fetch() a file beside it.
tests/test_web.py checks the page's 28x28 and probabilities against `lenet predict`.

Torch-free: it reads the model as `lenet predict` does.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from lenet.errors import UsageError
from lenet.files import check_writable_dir, write_text_atomic

ASSETS = ("index.html", "app.js", "lenet.js", "style.css")  # the page and its runtime, copied as they are
ICON = "favicon.svg"  # the served page's icon, shared
MODEL_SCRIPT = "model.js"


@dataclass(frozen=True)
class Site:
    """What `write_site` wrote."""
    directory: Path
    files: tuple[str, ...]   # names inside `directory`
    runtime_bytes: int       # the page and its JavaScript (everything but the model)
    model_bytes: int         # model.js

    def to_json(self) -> dict:
        return {"directory": str(self.directory), "files": list(self.files),
                "runtime_bytes": self.runtime_bytes, "model_bytes": self.model_bytes}


def b64(a: np.ndarray) -> str:
    """Little-endian float32 bytes as base64 (JavaScript's Float32Array is little-endian on every browser)."""
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode("ascii")


def grey_levels() -> list[float]:
    """ink.grey of each grey level 0..255 (an opaque canvas's pixels), as NumPy computes it,
    so the page starts from the very values `lenet predict` starts from."""
    from lenet.reading.ink import grey

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgba = np.stack([levels, levels, levels, np.full_like(levels, 255)], axis=-1)
    return [float(v) for v in grey(rgba).ravel()]


def model_script(model_path: str | Path) -> str:
    """model.js: `window.LENET_MODEL`, the network's layers as network.describe gives them, with weights."""
    from lenet.nn.model_file import test_accuracy
    from lenet.nn.network import count_parameters
    from lenet.nn.numpy_model import NumpyModel
    from lenet.reading.digit import SIZE

    model = NumpyModel.load(model_path)  # batch norm folded into the convolutions, as predict runs it
    config = model.config
    if config.image_size != SIZE:
        raise UsageError(f"{model_path}: the page reads digits as {SIZE}x{SIZE}; this model takes "
                         f"{config.image_size}x{config.image_size} (export a {SIZE}x{SIZE} model)")
    layers = []
    for layer in model.description:
        entry = {"name": layer.name, "op": layer.op, "shape": list(layer.shape), "activation": layer.activation,
                 "padding": layer.padding}
        if layer.kernel is not None:
            entry["kernel"] = list(layer.kernel)
            entry["weight"] = b64(model.w[f"{layer.name}.weight"])
            bias = model.w.get(f"{layer.name}.bias")
            entry["bias"] = b64(bias if bias is not None else np.zeros(layer.kernel[0], np.float32))
        layers.append(entry)
    data = {"arch": config.arch, "parameters": count_parameters(config), "test_accuracy": test_accuracy(model.info),
            "num_classes": config.num_classes, "scale": config.scale, "mean": config.mean, "std": config.std,
            "temperature": config.temperature, "unsure_below": config.unsure_below,
            "grey": grey_levels(), "layers": layers}
    return ("// The model for the page, written by `lenet export --web`: the network's layers (lenet.nn.network)\n"
            "// with their weights as base64 float32, batch norm folded."
            " A script, not JSON: file:// pages may load it.\n"
            f"window.LENET_MODEL = {json.dumps(data, separators=(',', ':'))};\n")


def write_site(directory: str | Path, model_path: str | Path) -> Site:
    """Write the static site into `directory` (created if needed; our files replaced, others left)."""
    script = model_script(model_path)  # first: a bad model leaves no folder behind
    directory = check_writable_dir(directory, "--web")
    here = resources.files("lenet.web")
    texts = {name: here.joinpath(name).read_text("utf-8") for name in ASSETS}
    texts[ICON] = resources.files("lenet.serving").joinpath("static").joinpath(ICON).read_text("utf-8")
    texts[MODEL_SCRIPT] = script
    for name, text in texts.items():
        write_text_atomic(directory / name, text)
    runtime = sum(len(t.encode("utf-8")) for name, t in texts.items() if name != MODEL_SCRIPT)
    return Site(directory, tuple(texts), runtime, len(script.encode("utf-8")))
