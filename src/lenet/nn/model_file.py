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
import math
from dataclasses import fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lenet.config import MAX_LR, ModelConfig, Recipe
from lenet.errors import ModelFileError
from lenet.files import read_bounded, write_atomic, write_text_atomic
from lenet.nn.network import describe, fold_batch_norm, parameter_shapes

FORMAT = "lenet-model/1"
CHECKPOINT_FORMAT = "lenet-checkpoint/1"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
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
        if key in info and not isinstance(info[key], kind_) or (kind_ is int and isinstance(info.get(key), bool)):
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
    text = json.dumps(info, allow_nan=False)
    write_atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata={"lenet": text}))


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
        raise ModelFileError(f"{path}: no checkpoint to resume from")
    arrays, info = read_safetensors(path, "checkpoint")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a lenet training checkpoint (format {info.get('format')!r})")
    check_checkpoint(arrays, info, path)
    try:
        return _unpack_checkpoint(arrays, info, path)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelFileError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None


# What each optimizer keeps per parameter; "step" is a scalar, the others have the parameter's shape.
OPTIMIZER_SLOTS = {"sgd": {"momentum_buffer"}, "adam": {"step", "exp_avg", "exp_avg_sq"},
                   "adamw": {"step", "exp_avg", "exp_avg_sq"}}
CHECKPOINT_TYPES = {"epoch": int, "step": int, "history": list, "recipe": dict, "model": dict, "seed": int,
                    "meta": dict, "optimizer": dict}
MAX_COUNT = 2**31 - 1  # seeds, steps, image counts: the bounds `lenet train` sets its flags to
FRACTIONS = ("momentum", "dampening", "betas", "weight_decay")  # optimizer settings from 0 to 1


def whole(value, low: int = 0, high: int = MAX_COUNT) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def number(value, low: float = 0.0, high: float = math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def check_checkpoint(tensors: dict[str, np.ndarray], info: dict, path) -> None:
    """Everything `--resume` reads, checked as strictly as a model file and before any of it is used:
    the model (as load_model_file checks it), the recipe and where training stood, the optimizer's
    layout and values, and the random-number states. A ValueError naming what is wrong."""
    def bad(message: str):
        raise ModelFileError(f"{path}: corrupt checkpoint ({message})")

    for key, kind in CHECKPOINT_TYPES.items():
        if key not in info:
            bad(f"no {key!r}")
        if not isinstance(info[key], kind) or isinstance(info[key], bool):
            bad(f"{key!r} must be a JSON {kind.__name__}")
    try:
        config = ModelConfig.from_dict(info["model"])
    except (ValueError, TypeError) as e:
        bad(f"model config: {e}")
    unknown = sorted(set(info["recipe"]) - {f.name for f in fields(Recipe)})
    if unknown:
        bad(f"unknown recipe fields {unknown[:4]}")
    if not isinstance(info["recipe"].get("name"), str) or not isinstance(info["recipe"].get("summary", ""), str):
        bad("the recipe's name and summary must be text")
    try:
        recipe = Recipe(**info["recipe"])
    except (ValueError, TypeError) as e:
        bad(f"recipe: {e}")
    made = recipe.model_config(config.num_classes, config.image_size)
    if replace(made, temperature=config.temperature, unsure_below=config.unsure_below) != config:
        bad(f"the model config ({config.arch}, {config.activation}) is not the one its recipe makes "
            f"({made.arch}, {made.activation})")
    groups = sorted({name.partition(".")[0] for name in tensors} - {"model", "optim", "extra"})
    if groups:
        bad(f"unexpected tensors {groups[:4]}")
    check_weights({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, config, path)
    check_position(info, bad)
    check_meta(info["meta"], bad)
    check_optimizer(tensors, info["optimizer"], config, recipe, bad)
    check_generators(tensors, info["step"], bad)


def check_position(info: dict, bad) -> None:
    """Epoch, step, seed, the history so far and a mid-epoch checkpoint's running sums."""
    epoch, step, history, running = info["epoch"], info["step"], info["history"], info.get("running")
    if not whole(epoch, 0, 10_000) or not whole(step) or not whole(info["seed"]):
        bad(f"epoch {epoch!r}, step {step!r} and seed {info['seed']!r} must be whole numbers, 0 or more")
    if len(history) != epoch:
        bad(f"{len(history)} rows of history for {epoch} finished epochs")
    for i, row in enumerate(history):
        if not isinstance(row, dict) or row.get("epoch") != i + 1 or not all(number(v, -math.inf)
                                                                             for v in row.values()):
            bad(f"history row {i + 1} is not that epoch's numbers")
    if step == 0:
        if running is not None:
            bad("running sums at the start of an epoch")
        return
    if not (isinstance(running, dict) and number(running.get("loss")) and whole(running.get("correct"))
            and whole(running.get("seen"), 1) and running["correct"] <= running["seen"]):
        bad(f"step {step} needs the epoch's running sums (loss, correct, seen); got {running!r}")


def check_meta(meta: dict, bad) -> None:
    """The data the run trained on, which --resume checks the data it is given against."""
    missing = [key for key in ("dataset_sha256", "subset", "holdout") if key not in meta]
    if missing:
        bad(f"no meta.{missing[0]}")
    if not isinstance(meta["dataset_sha256"], str):
        bad("meta.dataset_sha256 must be the data's checksum")
    if not (meta.get("subset") is None or whole(meta.get("subset"), 1)) or not whole(meta.get("holdout")):
        bad(f"meta.subset {meta.get('subset')!r} and meta.holdout {meta.get('holdout')!r} must be whole numbers")
    if not all(isinstance(meta.get(k, ""), str) for k in ("command", "dataset")):
        bad("meta.command and meta.dataset must be text")


def check_optimizer(tensors: dict[str, np.ndarray], optimizer: dict, config: ModelConfig, recipe: Recipe,
                    bad) -> None:
    """The optimizer's parameter groups as make_optimizer builds them (weights, then biases and
    batch-norm scales), each slot of the right name, shape and finite value."""
    learned = [shape for name, shape in parameter_shapes(config).items()
               if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    shapes = [s for s in learned if len(s) > 1] + [s for s in learned if len(s) <= 1]
    n_decay = sum(len(s) > 1 for s in learned)
    expected = [list(range(n_decay)), list(range(n_decay, len(shapes)))]
    groups, scalars = optimizer.get("param_groups"), optimizer.get("scalars", {})
    if not isinstance(groups, list) or not isinstance(scalars, dict):
        bad("the optimizer needs param_groups (a list) and scalars (an object)")
    if [g.get("params") if isinstance(g, dict) else None for g in groups] != expected:
        bad(f"the optimizer's parameter groups are not those of a {config.arch} network")
    for group in groups:
        for key, value in group.items():
            values = value if isinstance(value, list) else [value]
            if key == "params" or all(v is None or isinstance(v, bool) for v in values):
                continue
            high = MAX_LR if key == "lr" else 1.0 if key in FRACTIONS else math.inf
            if not all(number(v, 0.0, high) for v in values):
                bad(f"optimizer {key} {value!r} must be a number from 0 to {high:g}")
    slots = OPTIMIZER_SLOTS[recipe.optimizer]
    for key in list(tensors) + [f"optim.{k}" for k in scalars]:
        if not key.startswith("optim."):
            continue
        index, _, name = key[len("optim."):].partition(".")
        if not index.isdigit() or int(index) >= len(shapes) or name not in slots:
            bad(f"{key}: not a slot of {recipe.optimizer} for one of the {len(shapes)} parameters")
        if key[len("optim."):] in scalars:
            value = scalars[key[len("optim."):]]
            if not (value is None or number(value)):
                bad(f"{key} must be a number, 0 or more; got {value!r}")
            continue
        value, shape = tensors[key], () if name == "step" else shapes[int(index)]
        if tuple(value.shape) != shape or value.dtype.kind != "f":
            bad(f"{key} holds {value.dtype} {tuple(value.shape)}; its parameter needs float {shape}")
        if not np.isfinite(value).all() or (name in ("step", "exp_avg_sq") and (value < 0).any()):
            bad(f"{key} holds NaN, infinite or negative values")


def check_generators(tensors: dict[str, np.ndarray], step: int, bad) -> None:
    """torch's random-number state, and mid-epoch the epoch generator's, each one torch accepts
    (tried on a generator of its own, so nothing of this process changes)."""
    import torch

    needed = ["extra.torch_rng"] + (["extra.generator"] if step else [])
    if step == 0 and "extra.generator" in tensors:
        bad("an epoch generator's state at the start of an epoch")
    for key in needed:
        if key not in tensors:
            bad(f"no {key} (the random-number state that makes a resumed run continue exactly)")
        state = tensors[key]
        if state.dtype != np.uint8 or state.ndim != 1:
            bad(f"{key} holds {state.dtype} {tuple(state.shape)}, not a random-number state")
        try:
            torch.Generator().set_state(torch.from_numpy(state.copy()))
        except (RuntimeError, TypeError, ValueError) as e:
            bad(f"{key} is not a random-number state torch accepts ({str(e).splitlines()[0][:100]})")


def check_checkpoint_fits(ckpt: "Checkpoint", num_classes: int, image_shape: tuple[int, int], steps: int) -> None:
    """A ValueError unless the checkpoint's network takes this data and its step is within an epoch of it
    (the data itself is checked by its checksum when training starts)."""
    config, step = ModelConfig.from_dict(ckpt.info["model"]), ckpt.info["step"]
    if (config.num_classes, config.image_size, config.image_size) != (num_classes, *image_shape):
        raise ModelFileError(f"{ckpt.path}: corrupt checkpoint (its network takes {config.num_classes} classes of "
                         f"{config.image_size}x{config.image_size} images; the data has {num_classes} of "
                         f"{image_shape[0]}x{image_shape[1]})")
    if step >= steps:
        raise ModelFileError(f"{ckpt.path}: corrupt checkpoint (it stopped at batch {step}; an epoch of this data "
                         f"has {steps})")


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
