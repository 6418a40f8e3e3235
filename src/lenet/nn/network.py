"""Each network written once, as data: the list of layers its figure shows.

`describe(config)` returns the layers of a network in order, each with the name
the text gives it (C1, S2, C3, S4, C5, F6, output), what it computes, its
parameters' shapes and the shape of what it yields. Everything that walks a
network reads this one description: the torch `layers()` (model.py), the NumPy
forward pass (infer.py), the check of a model file's tensors before anything is
allocated (checkpoint.py) and the layer-by-layer view. The fused torch `forward`
is the one hand-written exception; a test checks it against `layers()`.

Torch-free, so inference installs can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lenet.errors import DataError, UsageError

# What the architectures take: LeNet-5 and fast are built for 28x28 (the paper's 32x32
# with C1's padding of 2); their C5 covers exactly the 5x5 that S4 leaves. The seed
# network's 'same' padding takes any square size whose two poolings leave a map.
FIXED_SIZE = {"lenet5": 28, "fast": 28}
SEED_SIZES = (8, 128)


@dataclass(frozen=True)
class Layer:
    name: str                  # as the text names it: c1, s2, ...
    op: str                    # "conv", "avgpool", "maxpool" (2x2, stride 2) or "dense"
    shape: tuple[int, ...]     # what the layer yields for one image: (C, H, W) or (N,)
    activation: str | None = None  # applied after the op: "sigmoid", "tanh", "relu" or None
    kernel: tuple[int, ...] | None = None  # conv (out, in, k, k); dense (out, in)
    padding: int = 0           # conv zero padding
    bias: bool = True
    batch_norm: str | None = None  # name of the batch norm after a conv (fast), folded in inference

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """`kernel` of a conv or dense layer, which always has one; a pooling layer has none."""
        if self.kernel is None:
            raise TypeError(f"{self.name}: a {self.op} layer has no weights")
        return self.kernel

    def parameters(self) -> dict[str, tuple[int, ...]]:
        """The tensors this layer owns in a state dict, by name, with their shapes."""
        if self.kernel is None:
            return {}
        out = {f"{self.name}.weight": self.kernel}
        if self.bias:
            out[f"{self.name}.bias"] = (self.kernel[0],)
        if self.batch_norm:
            c = (self.kernel[0],)
            out.update({f"{self.batch_norm}.{k}": c for k in ("weight", "bias", "running_mean", "running_var")})
            out[f"{self.batch_norm}.num_batches_tracked"] = ()
        return out


KERNEL = 5  # every convolution here is the paper's 5x5


def _conv(name, c_in, c_out, side, padding=0, activation=None, bias=True, batch_norm=None):
    """A stride-1 5x5 convolution on a side x side map."""
    out = side + 2 * padding - KERNEL + 1
    return Layer(name, "conv", (c_out, out, out), activation, (c_out, c_in, KERNEL, KERNEL), padding, bias,
                 batch_norm)


def _pool(name, op, prev: Layer, activation=None):
    c, h, w = prev.shape
    return Layer(name, op, (c, h // 2, w // 2), activation)


def _dense(name, n_in, n_out, activation=None):
    return Layer(name, "dense", (n_out,), activation, (n_out, n_in))


def describe(config) -> list[Layer]:
    """The layers of `config`'s network (a ModelConfig, or anything with its fields), in order."""
    arch, act, classes, side = config.arch, config.activation, config.num_classes, config.image_size
    if arch == "lenet5":  # the text's figure: 61,706 parameters for 10 classes
        c1 = _conv("c1", 1, 6, side, padding=2)              # 6@28x28 (the paper's 32x32 input)
        s2 = _pool("s2", "avgpool", c1, "sigmoid")           # 6@14x14, the text's squashing after pooling
        c3 = _conv("c3", 6, 16, s2.shape[1], activation=act)  # 16@10x10
        s4 = _pool("s4", "maxpool", c3)                      # 16@5x5
        c5 = _conv("c5", 16, 120, s4.shape[1], activation=act)  # 120@1x1
        return [c1, s2, c3, s4, c5, _dense("f6", 120, 84, act), _dense("output", 84, classes)]
    if arch == "seed":  # the tutorial's Keras code: 'same' padding everywhere, no activation on C3, C5
        c1 = _conv("c1", 1, 6, side, padding=2)
        s2 = _pool("s2", "avgpool", c1, "sigmoid")
        c3 = _conv("c3", 6, 16, s2.shape[1], padding=2)
        s4 = _pool("s4", "avgpool", c3)
        c5 = _conv("c5", 16, 120, s4.shape[1], padding=2)
        flat = 120 * c5.shape[1] * c5.shape[2]
        return [c1, s2, c3, s4, c5, _dense("f6", flat, 84, "sigmoid"), _dense("output", 84, classes, "sigmoid")]
    if arch == "fast":  # LeNet's plan, wider, max pooling, batch norm after each convolution
        c1 = _conv("c1", 1, 16, side, padding=2, bias=False, batch_norm="bn1")
        s2 = _pool("s2", "maxpool", c1, "relu")
        c3 = _conv("c3", 16, 32, s2.shape[1], bias=False, batch_norm="bn3")
        s4 = _pool("s4", "maxpool", c3, "relu")
        c5 = _conv("c5", 32, 64, s4.shape[1], activation="relu", bias=False, batch_norm="bn5")
        return [c1, s2, c3, s4, c5, _dense("f6", 64, 84, "relu"), _dense("output", 84, classes)]
    raise UsageError(f"unknown architecture {arch!r}")


def fold_batch_norm(weight, bias, gamma, beta, mean, var, eps: float):
    """(weight, bias) of the one convolution that computes bn(conv(x)) in inference, where batch
    norm is a fixed per-channel scale and shift. NumPy arrays and torch tensors alike; `bias`
    may be None. Written once for model.py's fused evaluation and infer.py's load-time fold."""
    scale = gamma / (var + eps) ** 0.5
    shift = beta - mean * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.reshape(-1, 1, 1, 1), shift


def parameter_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every tensor a saved model of `config` holds, by state-dict name."""
    shapes = {}
    for layer in describe(config):
        shapes.update(layer.parameters())
    return shapes


def count_parameters(config) -> int:
    """Learned values (batch norm's running statistics are not learned)."""
    total = 0
    for name, shape in parameter_shapes(config).items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            n = 1
            for d in shape:
                n *= d
            total += n
    return total


def check_image_size(arch: str, height: int, width: int) -> None:
    """A ValueError naming the size `arch` needs when it cannot take height x width images."""
    if height != width:
        raise DataError(f"images are {height}x{width}; LeNet needs square images")
    if arch in FIXED_SIZE and height != FIXED_SIZE[arch]:
        n = FIXED_SIZE[arch]
        raise DataError(f"images are {height}x{width}; the {arch} network needs {n}x{n} "
                         f"(pad or resize the data, or use --arch seed, which takes {SEED_SIZES[0]} to "
                         f"{SEED_SIZES[1]} pixels a side)")
    if arch == "seed" and not SEED_SIZES[0] <= height <= SEED_SIZES[1]:
        raise DataError(f"images are {height}x{width}; the seed network takes {SEED_SIZES[0]} to "
                         f"{SEED_SIZES[1]} pixels a side")
