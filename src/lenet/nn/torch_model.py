"""The networks. Each `forward` reads like the text's figure, one step a line.

Every network returns the scores that a softmax turns into probabilities: the
softmax itself is folded into the loss (`F.cross_entropy`) for numerical
stability, and applied explicitly in evaluation, in infer.py and in the ONNX export.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lenet.config import ModelConfig
from lenet.errors import ModelFileError, UsageError
from lenet.nn.network import describe, fold_batch_norm

ACTIVATION: dict[str | None, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, None: lambda x: x}
POOL = {"avgpool": nn.AvgPool2d, "maxpool": nn.MaxPool2d}


class Described(nn.Module):
    """A network whose modules are named as its description (network.py) names its layers.

    `layers(x)` walks that description, one layer at a time, yielding each output: the
    network as drawn, which the explain view, the NumPy pass and the tests read. Each
    subclass's `forward` computes the same function faster (tests check both agree)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.description = describe(config)
        for layer in self.description:  # the modules, named and shaped as described
            if layer.op == "conv":
                out, c_in, k, _ = layer.weight_shape
                setattr(self, layer.name, nn.Conv2d(c_in, out, k, padding=layer.padding, bias=layer.bias))
                if layer.batch_norm:
                    setattr(self, layer.batch_norm, nn.BatchNorm2d(out, eps=config.bn_eps))
            elif layer.op in POOL:
                setattr(self, layer.name, POOL[layer.op](2, 2))
            else:
                setattr(self, layer.name, nn.Linear(layer.weight_shape[1], layer.weight_shape[0]))

    def layers(self, x: torch.Tensor, part: slice = slice(None)):
        """Yield (name, output) for input (B, 1, H, W): the figure, one layer a step. `part` runs
        a stretch of it instead, on the output of the layer before the stretch."""
        for layer in self.description[part]:
            module = getattr(self, layer.name)
            if layer.op == "dense":
                x = module(torch.flatten(x, 1))
            elif layer.batch_norm:
                x = conv_bn(module, getattr(self, layer.batch_norm), x)
            else:
                x = module(x)
            x = ACTIVATION[layer.activation](x)
            yield layer.name, x


def conv_then_avgpool(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv` (stride 1) followed by 2x2 average pooling, as one stride-2 convolution.

    Both are linear, so their composition is a convolution too: each pooled output
    averages four overlapping 5x5 windows, which is one 6x6 window weighted by the
    kernel summed at its four offsets, divided by 4. The same function and the same
    weights (gradients flow back through the sum) at a third of the multiplications,
    and no pooling pass over the full-size map.
    """
    w = conv.weight
    pooled = 0.25 * (F.pad(w, (0, 1, 0, 1)) + F.pad(w, (1, 0, 0, 1)) + F.pad(w, (0, 1, 1, 0)) + F.pad(w, (1, 0, 1, 0)))
    return F.conv2d(x, pooled, conv.bias, stride=2, padding=conv.padding)


class _SplitLayoutConv(torch.autograd.Function):
    """A stride-1 convolution whose passes each run in the memory layout fastest for them
    on CPU (oneDNN): the forward pass and the weight gradient channels-last, the input
    gradient NCHW, where computing 6 channels channels-last is 2x slower (benchmarks/)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        x = x.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, weight.contiguous(memory_format=torch.channels_last), bias, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight.contiguous(), grad.contiguous(), padding=ctx.padding)
        grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad.contiguous(memory_format=torch.channels_last),
                                             padding=ctx.padding)
        return grad_x, grad_w, grad.sum((0, 2, 3)) if ctx.has_bias else None, None


def conv_for_training(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """conv(x); on CPU with gradients on, through _SplitLayoutConv (the same result, faster)."""
    if x.device.type == "cpu" and torch.is_grad_enabled() and conv.weight.requires_grad:
        return _SplitLayoutConv.apply(x, conv.weight, conv.bias, conv.padding)
    return conv(x)


class LeNet5(Described):
    """LeNet-5 as the tutorial's text describes it: 61,706 parameters for 10 classes."""

    # The modules Described builds from network.describe, declared for readers and type checkers
    # (tests/test_model.py checks these against the description).
    c1: nn.Conv2d
    s2: nn.AvgPool2d
    c3: nn.Conv2d
    s4: nn.MaxPool2d
    c5: nn.Conv2d
    f6: nn.Linear
    output: nn.Linear

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.act = ACTIVATION[config.activation]

    def forward(self, x):
        # `layers` rearranged for speed without changing the function or the weights (tests
        # check values and gradients): C1 and S2 as one convolution (conv_then_avgpool); S4
        # before the activation, as max commutes with a monotone function and a quarter as
        # many values are left to activate; C5, whose 5x5 kernel covers its whole 5x5 input,
        # as one matrix product with its own weights flattened.
        x = torch.sigmoid(conv_then_avgpool(self.c1, x))         # C1, S2: (B, 6, 14, 14)
        x = self.act(self.s4(conv_for_training(self.c3, x)))      # C3, S4: (B, 16, 5, 5)
        x = self.act(F.linear(torch.flatten(x, 1), self.c5.weight.flatten(1), self.c5.bias))  # C5: (B, 120)
        x = self.act(self.f6(x))                                  # F6: (B, 84)
        return self.output(x)                                     # (B, classes); softmax in the loss


class Seed(Described):
    """The tutorial's Keras code layer for layer: 'same' padding everywhere, 545,546 parameters."""

    # As network.describe draws them (tests/test_model.py checks).
    c1: nn.Conv2d
    s2: nn.AvgPool2d
    c3: nn.Conv2d
    s4: nn.AvgPool2d
    c5: nn.Conv2d
    f6: nn.Linear
    output: nn.Linear

    def forward(self, x):
        # `layers` with each convolution-and-average-pool pair as one convolution (exact; see
        # conv_then_avgpool).
        x = torch.sigmoid(conv_then_avgpool(self.c1, x))         # C1, S2: (B, 6, 14, 14)
        x = conv_then_avgpool(self.c3, x)                         # C3, S4: (B, 16, 7, 7)
        x = self.c5(x)                                            # (B, 120, 7, 7)
        x = torch.sigmoid(self.f6(torch.flatten(x, 1)))           # (B, 84)
        return torch.sigmoid(self.output(x))                      # (B, classes)


class Fast(Described):
    """A LeNet-sized ReLU network with batch norm, for the `fast` and `best` recipes (about 60k parameters).

    Same plan as LeNet-5 (conv, pool, conv, pool, conv, dense, output), wider
    early layers, max pooling, batch norm after each convolution.
    """

    # As network.describe draws them (tests/test_model.py checks).
    c1: nn.Conv2d
    bn1: nn.BatchNorm2d
    s2: nn.MaxPool2d
    c3: nn.Conv2d
    bn3: nn.BatchNorm2d
    s4: nn.MaxPool2d
    c5: nn.Conv2d
    bn5: nn.BatchNorm2d
    f6: nn.Linear
    output: nn.Linear

    def forward(self, x):                         # (B, 1, 28, 28)
        # Pooling before ReLU gives the same result (max commutes with a monotone function)
        # on a quarter of the elements.
        x = conv_bn(self.c1, self.bn1, x)         # (B, 16, 28, 28)
        x = F.relu(self.s2(x))                    # (B, 16, 14, 14)
        x = conv_bn(self.c3, self.bn3, x)         # (B, 32, 10, 10)
        x = F.relu(self.s4(x))                    # (B, 32, 5, 5)
        x = F.relu(conv_bn(self.c5, self.bn5, x))  # (B, 64, 1, 1)
        x = torch.flatten(x, 1)                   # (B, 64)
        x = F.relu(self.f6(x))                    # (B, 84)
        return self.output(x)                     # (B, classes)


def conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """bn(conv(x)). In evaluation batch norm is a fixed per-channel scale and shift, which
    folds into the convolution's weights and bias: one pass over the output instead of two."""
    if bn.training:
        return bn(conv(x))
    weight, bias = fold_batch_norm(conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                   bn.eps)
    return F.conv2d(x, weight, bias, padding=conv.padding)


NETWORKS = {"lenet5": LeNet5, "seed": Seed, "fast": Fast}


def build_model(config: ModelConfig) -> Described:
    return NETWORKS[config.arch](config)  # ModelConfig has checked the arch


# Glorot & Bengio (2010, section 4.2.1): a sigmoid unit's slope at 0 is 1/4 of tanh's, so its
# weights need 4x the Glorot bound to pass the same signal; without it LeNet-5 (sigmoid) sits
# at chance for most of its first epoch. tanh and ReLU keep the plain bound (both learn at once).
GAIN = {"sigmoid": 4.0, "tanh": 1.0, "relu": 1.0}


def init_weights(model: nn.Module, scheme: str, activation: str = "sigmoid") -> None:
    """'xavier': Glorot-uniform weights and zero biases, as Keras does; 'xavier-gain': the same scaled
    by the activation's GAIN; 'torch': leave PyTorch's default."""
    if scheme == "torch":
        return
    if scheme not in ("xavier", "xavier-gain"):
        raise UsageError(f"unknown initialisation {scheme!r}")
    gain = GAIN[activation] if scheme == "xavier-gain" else 1.0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def normalize(images: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """uint8 (B, H, W) pixels to the float (B, 1, H, W) input the model was trained on."""
    return config.normalize(images.unsqueeze(1).float())


def load_model(path, device="cpu") -> tuple[Described, ModelConfig, dict]:
    """(model in eval mode, its config, its recorded info) from a saved model file or folder."""
    from lenet.nn.model_file import load_model_file

    weights, config, info = load_model_file(path)
    model = build_model(config)
    try:
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit a {config.arch} network ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), config, info
