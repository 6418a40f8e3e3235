"""The networks. Each `forward` reads like the text's figure, one step a line.

Every network returns the scores that a softmax turns into probabilities: the
softmax itself is folded into the loss (`F.cross_entropy`) for numerical
stability, and applied explicitly in evaluation, in infer.py and in the ONNX export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

ACTIVATION = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu}


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


class LeNet5(nn.Module):
    """LeNet-5 as the tutorial's text describes it: 61,706 parameters for 10 classes."""

    def __init__(self, num_classes: int = 10, activation: str = "sigmoid"):
        super().__init__()
        self.act = ACTIVATION[activation]
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)   # 28x28 zero-padded by 2 is the paper's 32x32
        self.s2 = nn.AvgPool2d(2, 2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = nn.MaxPool2d(2, 2)
        self.c5 = nn.Conv2d(16, 120, 5)           # a convolution: 5x5 input, so 1x1 output
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def layers(self, x):
        """The text's figure, one layer a line: yields (name, output). `forward` is the same function, faster."""
        x = self.c1(x); yield "c1", x                             # (B, 6, 28, 28)
        x = torch.sigmoid(self.s2(x)); yield "s2", x              # (B, 6, 14, 14)
        x = self.act(self.c3(x)); yield "c3", x                   # (B, 16, 10, 10)
        x = self.s4(x); yield "s4", x                             # (B, 16, 5, 5)
        x = self.act(self.c5(x)); yield "c5", x                   # (B, 120, 1, 1)
        x = self.act(self.f6(torch.flatten(x, 1))); yield "f6", x  # (B, 84)
        yield "output", self.output(x)                            # (B, classes); softmax in the loss

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


class Seed(nn.Module):
    """The tutorial's Keras code layer for layer: 'same' padding everywhere, 545,546 parameters."""

    def __init__(self, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        side = image_size // 4                    # two 2x2 pools with 'same' padding
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)   # Keras padding='same' for 5x5, stride 1
        self.s2 = nn.AvgPool2d(2, 2)
        self.c3 = nn.Conv2d(6, 16, 5, padding=2)
        self.s4 = nn.AvgPool2d(2, 2)
        self.c5 = nn.Conv2d(16, 120, 5, padding=2)
        self.f6 = nn.Linear(120 * side * side, 84)
        self.output = nn.Linear(84, num_classes)

    def layers(self, x):
        """The Keras code, one layer a line: yields (name, output). `forward` is the same function, faster."""
        x = self.c1(x); yield "c1", x                             # (B, 6, 28, 28), raw 0..255 in the tutorial
        x = torch.sigmoid(self.s2(x)); yield "s2", x              # (B, 6, 14, 14)
        x = self.c3(x); yield "c3", x                             # (B, 16, 14, 14), no activation in the code
        x = self.s4(x); yield "s4", x                             # (B, 16, 7, 7)
        x = self.c5(x); yield "c5", x                             # (B, 120, 7, 7)
        x = torch.sigmoid(self.f6(torch.flatten(x, 1))); yield "f6", x  # (B, 84)
        yield "output", torch.sigmoid(self.output(x))             # (B, classes); the code's softmax follows in the loss

    def forward(self, x):
        # `layers` with each convolution-and-average-pool pair as one convolution (exact; see
        # conv_then_avgpool).
        x = torch.sigmoid(conv_then_avgpool(self.c1, x))         # C1, S2: (B, 6, 14, 14)
        x = conv_then_avgpool(self.c3, x)                         # C3, S4: (B, 16, 7, 7)
        x = self.c5(x)                                            # (B, 120, 7, 7)
        x = torch.sigmoid(self.f6(torch.flatten(x, 1)))           # (B, 84)
        return torch.sigmoid(self.output(x))                      # (B, classes)


class Fast(nn.Module):
    """A LeNet-sized ReLU network with batch norm, for the `fast` and `best` recipes (about 60k parameters).

    Same plan as LeNet-5 (conv, pool, conv, pool, conv, dense, output), wider
    early layers, max pooling, batch norm after each convolution.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.s2 = nn.MaxPool2d(2, 2)
        self.c3 = nn.Conv2d(16, 32, 5, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.s4 = nn.MaxPool2d(2, 2)
        self.c5 = nn.Conv2d(32, 64, 5, bias=False)
        self.bn5 = nn.BatchNorm2d(64)
        self.f6 = nn.Linear(64, 84)
        self.output = nn.Linear(84, num_classes)

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
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    return F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), shift, padding=conv.padding)


def build_model(config: ModelConfig) -> nn.Module:
    if config.arch == "lenet5":
        return LeNet5(config.num_classes, config.activation)
    if config.arch == "seed":
        return Seed(config.num_classes, config.image_size)
    if config.arch == "fast":
        return Fast(config.num_classes)
    raise ValueError(f"unknown architecture {config.arch!r}")


def init_weights(model: nn.Module, scheme: str) -> None:
    """'xavier': Glorot-uniform weights and zero biases, as Keras does; 'torch': leave PyTorch's default."""
    if scheme == "torch":
        return
    if scheme != "xavier":
        raise ValueError(f"unknown initialisation {scheme!r}")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def normalize(images: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """uint8 (B, H, W) pixels to the float (B, 1, H, W) input the model was trained on."""
    x = images.unsqueeze(1).float()
    return (x * config.scale - config.mean) / config.std


def load_model(path, device="cpu") -> tuple[nn.Module, ModelConfig, dict]:
    """(model in eval mode, its config, its recorded info) from a saved model file or folder."""
    from .checkpoint import load_model_file

    weights, config, info = load_model_file(path)
    model = build_model(config)
    try:
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit a {config.arch} network ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), config, info
