"""The optimizer: its parameter groups, the learning-rate schedule, and plain SGD and Adam."""

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
    if recipe.optimizer in ("adam", "adamw"):
        return Adam(groups, lr=recipe.lr, betas=(recipe.beta1, recipe.beta2),
                    decoupled_weight_decay=recipe.optimizer == "adamw")
    raise UsageError(f"unknown optimizer {recipe.optimizer!r}")


class PlainOptimizer:
    """What SGD and Adam share: parameter groups over `defaults`, per-parameter state, and torch.optim's
    state_dict layout (parameters by their index across the groups), whose `SETTINGS` a checkpoint
    restores."""
    SETTINGS: tuple[str, ...] = ()

    def __init__(self, groups: list[dict], defaults: dict):
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: dict = {}  # parameter (hashed by identity) -> its slots

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def state_dict(self) -> dict:
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
        """Read torch.optim's layout (ours or torch's own): the groups' SETTINGS, each parameter's slots."""
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ModelFileError("the checkpoint's optimizer holds other parameters than this model's")
        self.state = {}
        for group, old in zip(self.param_groups, saved, strict=True):
            for key in self.SETTINGS:
                if key in old:
                    group[key] = tuple(old[key]) if key == "betas" else old[key]
            for p, i in zip(group["params"], old["params"], strict=True):
                slots = state_dict["state"].get(i, state_dict["state"].get(str(i)))
                if not slots:
                    continue
                slots = {name: tensor_slot(name, value, p) for name, value in slots.items() if value is not None}
                if slots:
                    self.state[p] = slots


class SGD(PlainOptimizer):
    """Stochastic gradient descent with momentum (Nesterov's or not) and weight decay: torch.optim.SGD's
    update, dampening 0, written here because constructing any torch.optim optimizer imports
    torch._dynamo, a large part of a short run's start-up. The state_dict
    has torch.optim.SGD's layout, so checkpoints of either kind resume with the other;
    tests/test_train.py checks both take the same steps.

    Each step is a handful of multi-tensor (_foreach) operations per parameter group, not a loop
    over parameters: for the buffer b, gradient g, weight w, decay d, momentum m and rate lr,
        g += d w;  b = m b + g (b = g at the first step);  g = g + m b (Nesterov) or b;  w -= lr g."""

    SETTINGS = ("lr", "momentum", "nesterov", "weight_decay", "dampening")

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.0, nesterov: bool = False):
        # Each parameter's slots: {"momentum_buffer": tensor}.
        super().__init__(groups, {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": 0.0,
                                  "dampening": 0.0})

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


class Adam(PlainOptimizer):
    """Adam (Kingma & Ba 2014), with L2 weight decay or, `decoupled_weight_decay`, AdamW's
    (Loshchilov & Hutter 2019): torch.optim.Adam's update, written here for the reason SGD is
    (torch.optim would import torch._dynamo at start-up). The state_dict has torch.optim.Adam's
    layout; tests/test_train.py checks both take the same steps. For the moments m and v at step t,
        g += d w (L2) or w *= 1 - lr d (decoupled);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
        w -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)."""

    SETTINGS = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decoupled_weight_decay: bool = False):
        # Each parameter's slots: {"step": float32 scalar tensor, "exp_avg": m, "exp_avg_sq": v}; the
        # groups hold torch.optim.Adam's keys, so torch's Adam reads our state_dict.
        super().__init__(groups, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": 0.0, "amsgrad": False,
                                  "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                                  "fused": None, "decoupled_weight_decay": decoupled_weight_decay})

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            grads: list[torch.Tensor] | tuple[torch.Tensor, ...] = [p.grad for p in params]
            if decay and group["decoupled_weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * decay)
            elif decay:
                grads = torch._foreach_add(grads, params, alpha=decay)
            slots = [self.state.get(p) or self.state.setdefault(p, {
                "step": torch.zeros((), dtype=torch.float32), "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.zeros_like(p)}) for p in params]
            torch._foreach_add_([s["step"] for s in slots], 1.0)
            means, squares = [s["exp_avg"] for s in slots], [s["exp_avg_sq"] for s in slots]
            torch._foreach_lerp_(means, grads, 1 - beta1)
            torch._foreach_mul_(squares, beta2)
            torch._foreach_addcmul_(squares, grads, grads, 1 - beta2)
            steps = [float(s["step"]) for s in slots]
            denominators = torch._foreach_sqrt(squares)
            torch._foreach_div_(denominators, [math.sqrt(1 - beta2 ** t) for t in steps])
            torch._foreach_add_(denominators, eps)
            torch._foreach_addcdiv_(params, means, denominators, [-lr / (1 - beta1 ** t) for t in steps])


def tensor_slot(name: str, value, p: torch.Tensor) -> torch.Tensor:
    """A saved slot as the step reads it: a moment on its parameter's device and dtype, Adam's step
    count a float32 scalar (a checkpoint may hold it as a plain number)."""
    if name == "step":
        return torch.tensor(float(value), dtype=torch.float32)
    return value.to(p.device, p.dtype)


def match_parameter_layouts(optimizer) -> None:
    """Give each per-parameter state tensor (momentum, Adam's moments) its parameter's memory
    layout. A checkpoint stores them contiguous; a fused step walks parameter and state as
    flat memory, so a channels-last weight with a contiguous momentum would be updated wrongly."""
    for p, slots in optimizer.state.items():
        for name, value in slots.items():
            if torch.is_tensor(value) and value.shape == p.shape:
                slots[name] = torch.empty_like(p, dtype=value.dtype).copy_(value)
