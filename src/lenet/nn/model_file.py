"""Saved models and training checkpoints: safetensors files, never pickle.

A model file is one `.safetensors` whose metadata holds, under the key
"lenet", the JSON that rebuilds and feeds the network (its `ModelConfig`),
how it was trained and what it scored. A `.json` copy is written beside it for
people to read; loading never needs it. A checkpoint adds the optimizer's
tensors and the training state, so `--resume` continues exactly.

Loading here is torch-free (NumPy arrays), so inference installs need no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lenet.config import ModelConfig
from lenet.files import read_bounded, write_atomic, write_text_atomic
from lenet.nn.network import parameter_shapes

FORMAT = "lenet-model/1"
CHECKPOINT_FORMAT = "lenet-checkpoint/1"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
MAX_FILE_BYTES = 256 * 1024**2  # far above any LeNet; refuses to read a stray huge file
# The fields of a model file's metadata that code reads, with the JSON type each must have.
INFO_TYPES = {"format": str, "model": dict, "metrics": dict, "recipe": dict, "command": str, "parameters": int,
              "history": list, "seed": int, "validation": str, "versions": dict, "dataset": str,
              "test_accuracy": float, "calibration": dict}


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
        raise ValueError(f"{path}: no such model file (train one with `lenet train`, "
                         f"or pass the folder that holds {MODEL_FILE})")
    return path


def read_safetensors(path: Path, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    """Tensors and the parsed "lenet" metadata of a file we wrote; anything else is a clear error."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = read_bounded(path, MAX_FILE_BYTES, f"LeNet {kind}")
    try:
        tensors = load(data)
        # The header is 8 bytes of little-endian length, then JSON; load() has validated it.
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError, RecursionError, AttributeError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("lenet"), str):
        raise ValueError(f"{path}: a safetensors file, but not a lenet {kind} (no 'lenet' metadata)")
    try:
        info = json.loads(meta["lenet"])
    except (ValueError, RecursionError) as e:  # also nesting deeper than Python's stack
        raise ValueError(f"{path}: corrupt lenet metadata ({str(e)[:200]})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: corrupt lenet metadata (not a JSON object)")
    for key, kind_ in INFO_TYPES.items():
        if key in info and not isinstance(info[key], kind_) or (kind_ is int and isinstance(info.get(key), bool)):
            raise ValueError(f"{path}: corrupt lenet metadata ({key!r} must be a JSON {kind_.__name__})")
    accuracy = info.get("metrics", {}).get("val_accuracy")
    if accuracy is not None and not (isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1):
        raise ValueError(f"{path}: corrupt lenet metadata (metrics.val_accuracy must be a number from 0 to 1)")
    return tensors, info


def check_weights(weights: dict[str, np.ndarray], config: ModelConfig, path) -> None:
    """Every tensor the architecture needs, by name and shape, and nothing else; all finite.
    Checked before any network is built, so a file cannot make us allocate what it claims."""
    expected = parameter_shapes(config)
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: the weights do not fit a {config.arch} network "
                         f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for name, shape in expected.items():
        w = weights[name]
        if tuple(w.shape) != shape:
            raise ValueError(f"{path}: {name} has shape {tuple(w.shape)}; a {config.arch} network with "
                             f"{config.num_classes} classes needs {shape}")
        if name.endswith("num_batches_tracked"):
            continue
        if w.dtype.kind != "f":
            raise ValueError(f"{path}: {name} holds {w.dtype} values, not floating point")
        if not np.isfinite(w).all():
            raise ValueError(f"{path}: {name} holds NaN or infinite values: the training that wrote it "
                             f"diverged; train again (lower --lr) or use an earlier model")


def load_model_file(path: str | Path) -> tuple[dict[str, np.ndarray], ModelConfig, dict]:
    """(weights as NumPy arrays, config, info) of a saved model."""
    path = resolve_model_path(path)
    tensors, info = read_safetensors(path, "model")
    if info.get("format") not in (FORMAT, CHECKPOINT_FORMAT):
        raise ValueError(f"{path}: unknown format {info.get('format')!r} (expected {FORMAT})")
    if "model" not in info:
        raise ValueError(f"{path}: corrupt lenet metadata (no 'model' config)")
    try:
        config = ModelConfig.from_dict(info["model"])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad model config ({e})") from None
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
        raise ValueError(f"{path}: not written: the weights hold NaN or infinite values")
    info = {"format": FORMAT, **info}
    text = json.dumps(info, indent=2)
    write_atomic(path, lambda tmp: save_file(model_tensors(model), tmp, metadata={"lenet": text}))
    write_text_atomic(path.with_suffix(".json"), text + "\n")


def save_checkpoint(path: str | Path, model, optimizer, state: dict, extra: dict | None = None) -> None:
    """Model, optimizer tensors and training `state` (JSON-able) in one atomically written file."""
    from safetensors.torch import save_file

    tensors = model_tensors(model)
    opt = optimizer.state_dict()
    opt_scalars = {}
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            if hasattr(value, "detach"):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                opt_scalars[f"{idx}.{name}"] = value
    for key, value in (extra or {}).items():
        tensors[f"extra.{key}"] = value.detach().cpu().contiguous()
    info = {"format": CHECKPOINT_FORMAT, **state,
            "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_scalars}}
    write_atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata={"lenet": json.dumps(info)}))


def recorded_data_dir(path: str | Path) -> str | None:
    """The data folder the run that wrote the checkpoint at `path` read, when it still holds the
    four IDX files (None: no checkpoint, none recorded, or it has gone), so --resume needs no --data-dir."""
    from lenet.data.mnist import has_dataset

    path = Path(path)
    if not path.is_file():
        return None  # load_checkpoint says so in its own words
    _, info = read_safetensors(path, "checkpoint")
    meta = info.get("meta")
    where = meta.get("data_dir") if isinstance(meta, dict) else None
    return where if isinstance(where, str) and has_dataset(Path(where)) else None


class Checkpoint(NamedTuple):
    """A training checkpoint as read: torch tensors, and the JSON state."""
    model: dict        # the model's state_dict
    optimizer: dict    # the optimizer's state_dict
    extra: dict        # RNG states: "torch_rng", and "generator" mid-epoch
    info: dict         # epoch, step, history, recipe, model config, seed, meta, running sums
    path: Path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint written by save_checkpoint; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no checkpoint to resume from")
    arrays, info = read_safetensors(path, "checkpoint")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a lenet training checkpoint (format {info.get('format')!r})")
    try:
        return _unpack_checkpoint(arrays, info, path)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None


def _unpack_checkpoint(arrays: dict, info: dict, path: Path) -> Checkpoint:
    import torch

    for key in ("epoch", "step", "history", "recipe", "model", "seed", "meta"):
        info[key]  # noqa: B018 - every one must be there
    model_sd, extra, slots = {}, {}, {}
    for key, arr in arrays.items():
        t = torch.from_numpy(arr.copy())
        group, _, rest = key.partition(".")
        if group == "model":
            model_sd[rest] = t
        elif group == "extra":
            extra[rest] = t
        elif group == "optim":
            idx, _, name = rest.partition(".")
            slots.setdefault(int(idx), {})[name] = t
    for key, value in info["optimizer"]["scalars"].items():
        idx, _, name = key.partition(".")
        slots.setdefault(int(idx), {})[name] = value
    optim_sd = {"state": slots, "param_groups": info["optimizer"]["param_groups"]}
    return Checkpoint(model_sd, optim_sd, extra, info, path)
