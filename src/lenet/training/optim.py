"""The optimizer: its parameter groups, the learning-rate schedule, and a plain SGD."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from lenet.config import Recipe
from lenet.errors import ModelFileError, UsageError

if TYPE_CHECKING:
    from lenet.training.teach import Teaching


def lr_at(step: int, total: int, recipe: Recipe | Teaching) -> float:
    """Learning rate for a global step: constant, or one-cycle (linear warm-up over the recipe's
    `warmup` fraction of the steps, then cosine to 0)."""
    if recipe.schedule == "constant":
        return recipe.lr
    warm = max(1, int(recipe.warmup * total))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def make_optimizer(model, recipe: Recipe):
    # Weight decay on weights only: decaying biases and batch-norm scales only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0)
    # One fused kernel for all parameters instead of a loop over them.
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, fused=fused)
    raise UsageError(f"unknown optimizer {recipe.optimizer!r}")


class SGD:
    """Stochastic gradient descent with momentum (Nesterov's or not) and weight decay: torch.optim.SGD's
    update, dampening 0, written here because constructing any torch.optim optimizer imports
    torch._dynamo, a large part of a short run's start-up. The state_dict
    has torch.optim.SGD's layout, so checkpoints of either kind resume with the other;
    tests/test_train.py checks both take the same steps.

    Each step is a handful of multi-tensor (_foreach) operations per parameter group, not a loop
    over parameters: for the buffer b, gradient g, weight w, decay d, momentum m and rate lr,
        g += d w;  b = m b + g (b = g at the first step);  g = g + m b (Nesterov) or b;  w -= lr g."""

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.0, nesterov: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": 0.0, "dampening": 0.0}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: dict = {}  # parameter -> {"momentum_buffer": tensor}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads: list[torch.Tensor] | tuple[torch.Tensor, ...] = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            momentum = group["momentum"]
            if momentum:
                buffers, old, old_grads = [], [], []
                for p, g in zip(params, grads, strict=True):
                    slots = self.state.get(p)  # keyed by the tensor itself (hashed by identity)
                    if slots is None:
                        slots = self.state[p] = {"momentum_buffer": g.detach().clone()}
                    else:
                        old.append(slots["momentum_buffer"])
                        old_grads.append(g)
                    buffers.append(slots["momentum_buffer"])
                if old:
                    torch._foreach_mul_(old, momentum)
                    torch._foreach_add_(old, old_grads)
                grads = torch._foreach_add(grads, buffers, alpha=momentum) if group["nesterov"] else buffers
            torch._foreach_add_(params, grads, alpha=-group["lr"])

    def state_dict(self) -> dict:
        """torch.optim.SGD's layout: parameters by their index across the groups."""
        index, groups, state = 0, [], {}
        for group in self.param_groups:
            ids = list(range(index, index + len(group["params"])))
            for i, p in zip(ids, group["params"], strict=True):
                if p in self.state:
                    state[i] = dict(self.state[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
            index += len(ids)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ModelFileError("the checkpoint's optimizer holds other parameters than this model's")
        self.state = {}
        for group, old in zip(self.param_groups, saved, strict=True):
            for key in ("lr", "momentum", "nesterov", "weight_decay", "dampening"):
                if key in old:
                    group[key] = old[key]
            for p, i in zip(group["params"], old["params"], strict=True):
                slots = state_dict["state"].get(i, state_dict["state"].get(str(i)))
                if slots and slots.get("momentum_buffer") is not None:
                    self.state[p] = {"momentum_buffer": slots["momentum_buffer"].to(p.device, p.dtype)}


def match_parameter_layouts(optimizer) -> None:
    """Give each per-parameter state tensor (momentum, Adam's moments) its parameter's memory
    layout. A checkpoint stores them contiguous; a fused step walks parameter and state as
    flat memory, so a channels-last weight with a contiguous momentum would be updated wrongly."""
    for p, slots in optimizer.state.items():
        for name, value in slots.items():
            if torch.is_tensor(value) and value.shape == p.shape:
                slots[name] = torch.empty_like(p, dtype=value.dtype).copy_(value)
