"""Saved models: safetensors files, never pickle.

A model file is one `.safetensors` whose metadata holds, under the key
"lenet", the JSON that rebuilds and feeds the network (its `ModelConfig`),
how it was trained and what it scored. A `.json` copy is written beside it for
people to read; loading never needs it. Training checkpoints, which add the
optimizer and the training state, are lenet.training.checkpoint's.

Loading here is torch-free (NumPy arrays), so inference installs need no torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lenet.config import ModelConfig
from lenet.errors import ModelFileError
from lenet.files import MODEL_FILE, read_bounded, write_atomic, write_text_atomic
from lenet.nn.network import describe, fold_batch_norm, parameter_shapes

FORMAT = "lenet-model/1"
CHECKPOINT_FORMAT = "lenet-checkpoint/1"  # a checkpoint also loads as a model
MAX_FILE_BYTES = 256 * 1024**2  # far above any LeNet; refuses to read a stray huge file
# The fields of a model file's metadata that code reads, with the JSON type each must have.
INFO_TYPES = {"format": str, "model": dict, "metrics": dict, "recipe": dict, "command": str, "parameters": int,
              "history": list, "seed": int, "validation": str, "versions": dict, "dataset": str,
              "test_accuracy": float, "calibration": dict}
# Tensor dtypes a file may hold, as safetensors names them, read little-endian. Half precision
# (F16, BF16) is widened to float32 on reading, exactly: every such value is a float32 value.
# Anything else (the FP8 and FP4 formats, complex numbers) is refused, naming the tensor.
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
# What a model's numbers may be: far outside anything training makes, well inside float32's range.
# Within them, `activation_bound` proves every value of the forward pass finite for every image.
MAX_WEIGHT = 1e6          # |any value of any tensor|
MAX_INPUT = 1e4           # |network input| the scale, mean and std make of pixels 0..255 (raw pixels: 255)
MIN_INPUT_SPAN = 1e-3     # how far apart paper (0) and ink (255) must land, or no two images differ
BN_EPS = (1e-8, 1.0)      # batch norm's epsilon (torch's default 1e-5): var + eps is the divisor's square
MAX_ACTIVATION = 1e30     # any value the forward pass may reach; float32 overflows at 3.4e38


def test_accuracy(info: dict) -> float | None:
    """A model's accuracy on the test set, as its file records it (None when it was not scored)."""
    if "test_accuracy" in info:
        return info["test_accuracy"]
    return info.get("metrics", {}).get("val_accuracy") if info.get("validation", "test") == "test" else None


def resolve_model_path(path: str | Path) -> Path:
    """A model given as its output folder or as the weights file itself."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (train one with `lenet train`, "
                         f"or pass the folder that holds {MODEL_FILE})")
    return path


def read_safetensors(path: Path, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    """Tensors and the parsed "lenet" metadata of a file we wrote; anything else is a clear error."""
    from safetensors import SafetensorError, deserialize

    data = read_bounded(path, MAX_FILE_BYTES, f"LeNet {kind}")
    try:
        views = deserialize(data)
        # The header is 8 bytes of little-endian length, then JSON; deserialize() has validated it.
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError, RecursionError, AttributeError) as e:
        raise ModelFileError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("lenet"), str):
        raise ModelFileError(f"{path}: a safetensors file, but not a lenet {kind} (no 'lenet' metadata)")
    try:
        info = json.loads(meta["lenet"], parse_constant=no_constant, parse_float=finite_float)
    except (ValueError, RecursionError) as e:  # also nesting deeper than Python's stack
        raise ModelFileError(f"{path}: corrupt lenet metadata ({str(e)[:200]})") from None
    tensors = {name: to_array(name, view, path) for name, view in views}
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: corrupt lenet metadata (not a JSON object)")
    for key, kind_ in INFO_TYPES.items():
        if (key in info and not isinstance(info[key], kind_)) or (kind_ is int and isinstance(info.get(key), bool)):
            raise ModelFileError(f"{path}: corrupt lenet metadata ({key!r} must be a JSON {kind_.__name__})")
    for key, accuracy in (("metrics.val_accuracy", info.get("metrics", {}).get("val_accuracy")),
                          ("test_accuracy", info.get("test_accuracy"))):
        if accuracy is not None and not (isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1):
            raise ModelFileError(f"{path}: corrupt lenet metadata ({key} must be a number from 0 to 1)")
    if info.get("parameters", 0) < 0:
        raise ModelFileError(f"{path}: corrupt lenet metadata (parameters must not be negative)")
    return tensors, info


def no_constant(name: str):
    """json.loads' hook for NaN and Infinity, which Python reads but JSON does not have."""
    raise ModelFileError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """json.loads' hook for a number with a fraction or exponent: 1e999 would read as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ModelFileError(f"{text[:20]} is out of range")
    return value


def to_array(name: str, view: dict, path) -> np.ndarray:
    """One tensor of safetensors.deserialize() as a NumPy array: half precision widened to float32,
    a dtype we cannot compute with refused (one line, naming it)."""
    dtype = view["dtype"]
    if dtype not in DTYPES:
        raise ModelFileError(f"{path}: tensor {name!r} holds {dtype} values, which lenet does not read "
                         f"(it reads F32, F64, F16 and BF16 weights): save the model in float32")
    try:
        array = np.frombuffer(view["data"], DTYPES[dtype]).reshape(view["shape"])
    except ValueError as e:
        raise ModelFileError(f"{path}: tensor {name!r} does not fit its shape ({e})") from None
    if dtype == "BF16":  # the top half of a float32: shift it back into place
        return (array.astype("<u4") << 16).view("<f4")
    if dtype == "F16":
        return array.astype(np.float32)
    return array


def check_weights(weights: dict[str, np.ndarray], config: ModelConfig, path) -> None:
    """Every tensor the architecture needs, by name and shape, and nothing else; all finite and
    within MAX_WEIGHT, then `check_numbers`. Checked before any network is built, so a file
    cannot make us allocate what it claims."""
    expected = parameter_shapes(config)
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelFileError(f"{path}: the weights do not fit a {config.arch} network "
                         f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for name, shape in expected.items():
        w = weights[name]
        if tuple(w.shape) != shape:
            raise ModelFileError(f"{path}: {name} has shape {tuple(w.shape)}; a {config.arch} network with "
                             f"{config.num_classes} classes needs {shape}")
        if name.endswith("num_batches_tracked"):
            if w.dtype.kind not in "iu" or w < 0:
                raise ModelFileError(f"{path}: {name} must be a count (a whole number, 0 or more); got {w}")
            continue
        if w.dtype.kind != "f":
            raise ModelFileError(f"{path}: {name} holds {w.dtype} values, not floating point")
        if not np.isfinite(w).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values: the training that wrote it "
                             f"diverged; train again (lower --lr) or use an earlier model")
        if w.size and np.abs(w).max() > MAX_WEIGHT:
            raise ModelFileError(f"{path}: {name} holds values up to {float(np.abs(w).max()):.3g}; a LeNet's stay "
                             f"far below {MAX_WEIGHT:g}: not a model that gives finite answers")
    check_numbers(weights, config, path)


def check_numbers(weights: dict[str, np.ndarray], config: ModelConfig, path) -> None:
    """What the numbers do, not only their type: positive variances, a sane batch-norm epsilon and
    input contract, and a forward pass whose every value stays finite for every image."""
    if not BN_EPS[0] <= config.bn_eps <= BN_EPS[1]:
        raise ModelFileError(f"{path}: bad model config (bn_eps {config.bn_eps:g} must be from {BN_EPS[0]:g} "
                         f"to {BN_EPS[1]:g}: batch norm divides by the square root of variance + eps)")
    for name, w in weights.items():
        if name.endswith("running_var") and (w < 0).any():
            raise ModelFileError(f"{path}: {name} holds negative values ({float(w.min()):.3g}); a variance cannot be")
    paper, ink = config.normalize(0.0), config.normalize(255.0)
    if not max(abs(paper), abs(ink)) <= MAX_INPUT:
        raise ModelFileError(f"{path}: bad model config (scale {config.scale:g}, mean {config.mean:g}, std "
                         f"{config.std:g} make network inputs of {max(abs(paper), abs(ink)):.3g}; at most "
                         f"{MAX_INPUT:g})")
    if not abs(ink - paper) >= MIN_INPUT_SPAN:
        raise ModelFileError(f"{path}: bad model config (scale {config.scale:g} and std {config.std:g} map ink and "
                         f"paper {abs(ink - paper):.3g} apart; at least {MIN_INPUT_SPAN:g})")
    bound = activation_bound(weights, config, max(abs(paper), abs(ink)))
    if not bound <= MAX_ACTIVATION:
        raise ModelFileError(f"{path}: the weights can make values of {bound:.3g} in the forward pass (at most "
                         f"{MAX_ACTIVATION:g}): not a model that gives finite answers")


def activation_bound(weights: dict[str, np.ndarray], config: ModelConfig, largest_input: float) -> float:
    """An upper bound on |any value| the forward pass computes, over every input whose values are
    within +-largest_input: layer by layer, |Wx + b| <= sum|W| max|x| + |b| (batch norm folded in);
    pooling keeps the bound, sigmoid and tanh bring it to 1. In float64, so it cannot overflow itself."""
    x = worst = largest_input
    for layer in describe(config):
        if layer.kernel is not None:
            w = weights[f"{layer.name}.weight"].astype(np.float64)
            b = weights[f"{layer.name}.bias"].astype(np.float64) if layer.bias else None
            if layer.batch_norm:
                bn = {k: weights[f"{layer.batch_norm}.{k}"].astype(np.float64)
                      for k in ("weight", "bias", "running_mean", "running_var")}
                w, b = fold_batch_norm(w, b, bn["weight"], bn["bias"], bn["running_mean"], bn["running_var"],
                                       config.bn_eps)
            x = float((np.abs(w).reshape(len(w), -1).sum(1) * x + (0 if b is None else np.abs(b))).max())
            if not math.isfinite(x):  # max() would drop a NaN
                return math.inf
            worst = max(worst, x)
        if layer.activation in ("sigmoid", "tanh"):
            x = min(x, 1.0)
    return worst


def load_model_file(path: str | Path) -> tuple[dict[str, np.ndarray], ModelConfig, dict]:
    """(weights as NumPy arrays, config, info) of a saved model."""
    path = resolve_model_path(path)
    tensors, info = read_safetensors(path, "model")
    if info.get("format") not in (FORMAT, CHECKPOINT_FORMAT):
        raise ModelFileError(f"{path}: unknown format {info.get('format')!r} (expected {FORMAT})")
    if "model" not in info:
        raise ModelFileError(f"{path}: corrupt lenet metadata (no 'model' config)")
    try:
        config = ModelConfig.from_dict(info["model"])
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: bad model config ({e})") from None
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    check_weights(weights, config, path)
    return weights, config, info


def model_tensors(model) -> dict:
    return {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_model(path: str | Path, model, info: dict) -> None:
    """Write the weights with `info` (which must hold "model": ModelConfig dict) as metadata, and a JSON copy."""
    from safetensors.torch import save_file

    path = Path(path)
    if not all(bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise ModelFileError(f"{path}: not written: the weights hold NaN or infinite values")
    info = {"format": FORMAT, **info}
    text = json.dumps(info, indent=2, allow_nan=False)  # never a file we would refuse to read
    write_atomic(path, lambda tmp: save_file(model_tensors(model), tmp, metadata={"lenet": text}))
    write_text_atomic(path.with_suffix(".json"), text + "\n")
