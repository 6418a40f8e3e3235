"""Training checkpoints: the model, the optimizer's tensors and the training state in one
safetensors file, so `--resume` continues exactly; every value checked before it is used."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import numpy as np
import torch

from lenet.config import MAX_LR, ModelConfig, Recipe
from lenet.data.mnist import has_dataset
from lenet.errors import ModelFileError, UsageError
from lenet.files import write_atomic
from lenet.nn.model_file import CHECKPOINT_FORMAT, check_weights, model_tensors, read_safetensors
from lenet.nn.network import parameter_shapes

if TYPE_CHECKING:
    from lenet.data.mnist import Dataset
    from lenet.training.run import RunOptions

CHECKPOINT_FILE = "checkpoint.safetensors"


def save_checkpoint(path: str | Path, model, optimizer, state: dict, extra: dict | None = None,
                    average: dict[str, torch.Tensor] | None = None) -> None:
    """Model, optimizer tensors and training `state` (JSON-able) in one atomically written file;
    with `average`, the state dict of the weights' moving average (--ema) too."""
    from safetensors.torch import save_file

    tensors = model_tensors(model)
    for key, value in (average or {}).items():
        tensors[f"average.{key}"] = value.detach().cpu().contiguous()
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
    average: dict | None = None  # the state_dict of the weights' moving average, when the recipe keeps one


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


Failure = Callable[[str], NoReturn]  # raises the corrupt-checkpoint error naming what is wrong


def check_checkpoint(tensors: dict[str, np.ndarray], info: dict, path) -> None:
    """Everything `--resume` reads, checked as strictly as a model file and before any of it is used:
    the model (as load_model_file checks it), the recipe and where training stood, the optimizer's
    layout and values, and the random-number states. A ValueError naming what is wrong."""
    def bad(message: str) -> NoReturn:
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
    groups = sorted({name.partition(".")[0] for name in tensors} - {"model", "optim", "extra", "average"})
    if groups:
        bad(f"unexpected tensors {groups[:4]}")
    check_weights({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, config, path)
    average = {k[len("average."):]: v for k, v in tensors.items() if k.startswith("average.")}
    if recipe.ema and not average:
        bad("its recipe keeps a moving average of the weights (ema), but the checkpoint holds none")
    if average and not recipe.ema:
        bad("a moving average of the weights, but its recipe keeps none (ema 0)")
    if average:
        check_weights(average, config, f"{path} (the weights' moving average)")
    check_position(info, bad)
    check_meta(info["meta"], bad)
    check_optimizer(tensors, info["optimizer"], config, recipe, bad)
    check_generators(tensors, info["step"], bad)


def check_position(info: dict, bad: Failure) -> None:
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


def check_meta(meta: dict, bad: Failure) -> None:
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
                    bad: Failure) -> None:
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


def check_generators(tensors: dict[str, np.ndarray], step: int, bad: Failure) -> None:
    """torch's random-number state, and mid-epoch the epoch generator's, each one torch accepts
    (tried on a generator of its own, so nothing of this process changes)."""
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


def check_checkpoint_fits(ckpt: Checkpoint, num_classes: int, image_shape: tuple[int, int], steps: int) -> None:
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
    for key in ("epoch", "step", "history", "recipe", "model", "seed", "meta"):
        info[key]  # every one must be there
    model_sd: dict = {}
    extra: dict = {}
    average: dict = {}
    slots: dict = {}
    for key, arr in arrays.items():
        t = torch.from_numpy(arr.copy())
        group, _, rest = key.partition(".")
        if group == "model":
            model_sd[rest] = t
        elif group == "average":
            average[rest] = t
        elif group == "extra":
            extra[rest] = t
        elif group == "optim":
            idx, _, name = rest.partition(".")
            slots.setdefault(int(idx), {})[name] = t
    for key, value in info["optimizer"]["scalars"].items():
        idx, _, name = key.partition(".")
        slots.setdefault(int(idx), {})[name] = value
    optim_sd = {"state": slots, "param_groups": info["optimizer"]["param_groups"]}
    return Checkpoint(model_sd, optim_sd, extra, info, path, average or None)


def resumed_settings(ckpt: Checkpoint, ds: Dataset,
                     options: RunOptions) -> tuple[Recipe, ModelConfig, RunOptions, dict]:
    """(recipe, config, options, meta) of the run `ckpt` continues: its own, but `options.epochs`."""
    recipe = Recipe(**ckpt.info["recipe"]).override(epochs=options.epochs)
    config = ModelConfig.from_dict(ckpt.info["model"])
    # The data this run loaded, which Trainer.restore checks against the checkpoint's.
    meta = {**ckpt.info["meta"], "dataset": ds.root.name, "dataset_sha256": ds.sha256,
            "data_dir": str(ds.root.resolve())}
    options = replace(options, seed=ckpt.info["seed"], subset=meta["subset"], holdout=meta["holdout"],
                      command=meta.get("command", options.command))
    return recipe, config, options, meta


def check_same_run(ckpt: Checkpoint, recipe: Recipe | None, ds: Dataset, options: RunOptions) -> None:
    """A ValueError unless `ckpt` was written by a run with these settings, on this data."""
    info, meta = ckpt.info, ckpt.info["meta"]
    theirs = {"recipe": info["recipe"], "seed": info["seed"], "dataset": meta.get("dataset_sha256"),
              "subset": meta.get("subset"), "holdout": meta.get("holdout")}
    ours = {"recipe": recipe.to_dict() if recipe is not None else None, "seed": options.seed, "dataset": ds.sha256,
            "subset": options.subset,
            "holdout": options.holdout}
    differ = [k for k in ours if theirs[k] != ours[k]]
    if differ:
        raise UsageError(f"{ckpt.path} is the checkpoint of another run ({', '.join(differ)} differ); "
                         f"an elastic restart resumes only its own run: remove it or choose another --out")
