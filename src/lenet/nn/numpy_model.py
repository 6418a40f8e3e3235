"""Inference without torch: the networks' forward passes in NumPy.

`lenet predict` and `lenet serve` start in a fraction of a second because they
import NumPy, not torch (whose import alone takes seconds). The forward pass
walks the network's description (network.py), the same one model.py's torch
`layers` walks, with fast's batch norm folded into its convolutions; tests
check that both give the same outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lenet.config import ModelConfig
from lenet.errors import ImageError, ModelFileError
from lenet.nn.model_file import load_model_file
from lenet.nn.network import describe, fold_batch_norm


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int,
           kernel: np.ndarray | None = None) -> np.ndarray:
    """(B, H, W, C) * (O, C, k, k) -> (B, H', W', O), stride 1, zero padding `pad`; `kernel` is
    `kernel_matrix(w)` when the caller keeps it (NumpyModel does: one image's forward pass is
    a quarter quicker without rearranging three kernels each time).

    im2col and one matrix product. With channels-last (NHWC) activations each
    window row is one contiguous run of k*C values, so gathering the windows
    copies runs rather than scattered values, and the product's output is
    already (B, H', W', O): no transposes between layers (see `windows_of`)."""
    k = w.shape[-1]
    x = padded(x, pad)
    bsz, h, wd, _ = x.shape
    oh, ow = h - k + 1, wd - k + 1
    out = windows_of(x, k) @ (kernel_matrix(w) if kernel is None else kernel)  # (B*H'*W', O)
    if b is not None:
        out += b
    return out.reshape(bsz, oh, ow, -1)


def conv_pool(x: np.ndarray, kernel: np.ndarray, b: np.ndarray | None, k: int, pad: int, reduce) -> np.ndarray:
    """pool2(conv2d(x, w, b, pad), reduce) for kernel = kernel_matrix(w), computed together.

    The windows are gathered corner by corner (`windows_of(pooled=True)`), so the product's
    output holds the four corners of every 2x2 block as four contiguous blocks of rows, and
    pooling is three elementwise operations on them rather than a pass over strided views;
    positions the pooling drops are never computed. The bias is added after pooling, to a
    quarter of the values: both max and mean commute with adding a constant per channel."""
    x = padded(x, pad)
    bsz, h, wd, _ = x.shape
    ph, pw = (h - k + 1) // 2, (wd - k + 1) // 2
    out = (windows_of(x, k, pooled=True) @ kernel).reshape(bsz, 4, ph * pw, -1)
    top_left, top_right, bottom_left, bottom_right = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    if reduce is np.max:
        pooled = np.maximum(top_left, top_right)  # a new array: the next layer's windows are views of it
        np.maximum(pooled, bottom_left, out=pooled)
        np.maximum(pooled, bottom_right, out=pooled)
    else:  # mean, summed in pool2's order
        pooled = top_left + top_right
        pooled += bottom_left
        pooled += bottom_right
        pooled *= np.float32(0.25)
    if b is not None:
        pooled += b
    return pooled.reshape(bsz, ph, pw, -1)


def padded(x: np.ndarray, pad: int) -> np.ndarray:
    """(B, H, W, C) with `pad` zeros around each map, by hand: np.pad costs more than the copy for small maps."""
    if not pad:
        return x
    bsz, h, w, c = x.shape
    out = np.zeros((bsz, h + 2 * pad, w + 2 * pad, c), x.dtype)
    out[:, pad:pad + h, pad:pad + w] = x
    return out


def windows_of(x: np.ndarray, k: int, pooled: bool = False) -> np.ndarray:
    """The k x k windows of (B, H, W, C) as the rows of one (B * positions, k*k*C) matrix, each row in
    (ky, kx, c) order; positions row-major, or with `pooled` in conv_pool's order (`windows`).

    One copy of a strided view of the windows, made with np.ndarray: numpy's sliding_window_view
    makes the same view with 30 us of checks a call, more than the copy of C3's windows for one
    image. Two cases gather otherwise, for speed (tests/test_infer.py checks all agree with the
    definition): one window covering the whole map (C5) is the map itself, and with one input
    channel (C1) the runs are single values, which one `np.take` of precomputed indices gathers
    up to 2x quicker than copying a view of windows."""
    x = np.ascontiguousarray(x)
    bsz, h, w, c = x.shape
    oh, ow = h - k + 1, w - k + 1
    if oh == ow == 1:
        return x.reshape(bsz, -1)
    if c == 1:
        return np.take(x.reshape(bsz, -1), windows(h, w, c, k, pooled), axis=1).reshape(-1, k * k * c)
    sb, sh, sw, sc = x.strides
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    if pooled:  # (B, corner row, corner column, H'/2, W'/2, k, k, C)
        shape = (bsz, 2, 2, oh // 2, ow // 2, k, k, c)
        strides = (sb, sh, sw, 2 * sh, 2 * sw, sh, sw, sc)
    else:       # (B, H', W', k, k, C)
        shape, strides = (bsz, oh, ow, k, k, c), (sb, sh, sw, sh, sw, sc)
    return np.ndarray(shape, x.dtype, x, 0, strides).reshape(-1, k * k * c)  # the one copy


def kernel_matrix(w: np.ndarray) -> np.ndarray:
    """(O, C, k, k) -> (k*k*C, O), rows in (ky, kx, c) order: the windows' order in conv2d."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T)


@functools.lru_cache(maxsize=32)
def windows(h: int, w: int, c: int, k: int, pooled: bool = False) -> np.ndarray:
    """For a (H, W, C) map flattened: the flat index of every k x k window's values, one row per
    output position, each row in (ky, kx, c) order. Positions row-major, or with `pooled` in
    conv_pool's order: the top-left corners of the 2x2 blocks, then the top-right ones, the
    bottom-left, the bottom-right (each row-major; an odd last row or column left out)."""
    oh, ow = h - k + 1, w - k + 1
    ys, xs = pool_order(oh, ow) if pooled else (np.repeat(np.arange(oh), ow), np.tile(np.arange(ow), oh))
    start = (ys * w + xs).reshape(-1, 1) * c  # each window's corner
    within = ((np.arange(k)[:, None, None] * w + np.arange(k)[None, :, None]) * c + np.arange(c)).reshape(1, -1)
    return (start + within).astype(np.intp)


def pool_order(oh: int, ow: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the output positions a 2x2 pooling reads, corner by corner (see `windows`)."""
    ph, pw = oh // 2, ow // 2
    dy, dx, py, px = np.meshgrid(np.arange(2), np.arange(2), np.arange(ph), np.arange(pw), indexing="ij")
    return (2 * py + dy).ravel(), (2 * px + dx).ravel()


def pool2(x: np.ndarray, reduce) -> np.ndarray:
    """2x2 pooling of (B, H, W, C) with `reduce` (np.mean or np.max): the four corners of each
    window as strided views, combined elementwise (6x quicker than reducing over two inner axes
    of a reshape, for one image; the same values)."""
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    a, b, c, d = x[:, 0:h:2, 0:w:2], x[:, 0:h:2, 1:w:2], x[:, 1:h:2, 0:w:2], x[:, 1:h:2, 1:w:2]
    if reduce is np.max:
        return np.maximum(np.maximum(a, b), np.maximum(c, d))
    return (a + b + c + d) * np.float32(0.25)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))  # no overflow for large |x| (raw 0..255 inputs)


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities from scores, along the last axis, without overflow."""
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class NonFiniteOutput(ModelFileError):
    """The model computed NaN or infinite scores: an answer from them would be meaningless."""


def finite_scores(scores: np.ndarray) -> np.ndarray:
    """`scores` unchanged when all are finite; never an answer from NaN (model_file's checks should
    make this unreachable: this is the guard behind them)."""
    if not np.isfinite(scores).all():
        raise NonFiniteOutput("the model gives non-finite outputs (NaN or infinite scores) for this image: "
                              "its weights are unusable; train it again or use another model")
    return scores


# ReLU in place: every layer's output is a fresh array, so nothing else holds it.
ACTIVATION: dict[str | None, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0, out=x), None: lambda x: x}
POOL = {"avgpool": np.mean, "maxpool": np.max}


# Images per forward pass. Small passes are quicker per image: the maps of 16 images stay in a
# core's own cache, those of hundreds do not (measured in commit 49a5296).
PASS = 16


def fitted(images: np.ndarray, side: int) -> np.ndarray:
    """(B, H, W) images as (B, side, side): as they are, or centred on black when smaller."""
    h, w = images.shape[1:]
    if (h, w) == (side, side):
        return images
    if h > side or w > side:
        raise ImageError(f"the model takes {side}x{side} images, smaller than the {h}x{w} it was given "
                         f"(lenet reads digits at 28x28): use a model trained on 28x28 images or larger")
    top, left = (side - h) // 2, (side - w) // 2
    out = np.zeros((len(images), side, side), images.dtype)
    out[:, top:top + h, left:left + w] = images
    return out


class NumpyModel:
    """A saved model's forward pass on NumPy arrays, float32, walking the network's description."""

    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig, info: dict | None = None):
        self.w = {k: v.astype(np.float32) for k, v in weights.items()}
        self.config = config
        self.info = info or {}
        self.description = describe(config)
        for layer in self.description:
            if layer.batch_norm:
                self._fold_batch_norm(layer.name, layer.batch_norm)
        # Weights in the layout the products take, arranged once.
        self.kernels = {layer.name: kernel_matrix(self.w[f"{layer.name}.weight"])
                        for layer in self.description if layer.op == "conv"}
        self.dense = {layer.name: np.ascontiguousarray(self.w[f"{layer.name}.weight"].T)
                      for layer in self.description if layer.op == "dense"}

    def _fold_batch_norm(self, conv: str, bn: str) -> None:
        """In inference batch norm is a fixed per-channel scale and shift: fold it into the
        convolution before it (as model.conv_bn does in torch), one pass less per layer."""
        w = self.w
        w[f"{conv}.weight"], w[f"{conv}.bias"] = fold_batch_norm(
            w[f"{conv}.weight"], w.get(f"{conv}.bias"), w.pop(f"{bn}.weight"), w.pop(f"{bn}.bias"),
            w.pop(f"{bn}.running_mean"), w.pop(f"{bn}.running_var"), np.float32(self.config.bn_eps))
        w.pop(f"{bn}.num_batches_tracked", None)

    @classmethod
    def load(cls, path: str | Path) -> NumpyModel:
        return cls(*load_model_file(path))

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W) -> float32 (B, S, S, 1), the input contract of the model, channels-last.
        Images smaller than the model's S x S (a 28x28 reading, a seed network trained on 32x32) are
        centred in it on black, as LeNet-5's 32x32 input field holds MNIST's 28x28 digits."""
        return self.config.normalize(fitted(images, self.config.image_size).astype(np.float32)[..., None])

    def run_layers(self, x: np.ndarray):
        """Yield (name, output) for normalised input (B, H, W, 1): maps channels-last (B, H, W, C)."""
        for layer in self.description:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused below, in one line
                x = ACTIVATION[layer.activation](self.apply(layer, x))
            yield layer.name, finite_scores(x) if layer is self.description[-1] else x

    def apply(self, layer, x: np.ndarray) -> np.ndarray:
        """One layer's operation on x, before its activation."""
        if layer.op == "conv":
            return conv2d(x, self.w[f"{layer.name}.weight"], self.w.get(f"{layer.name}.bias"), layer.padding,
                          self.kernels[layer.name])
        if layer.op in POOL:
            return pool2(x, POOL[layer.op])
        if x.ndim == 4:  # dense; a map is flattened in torch's (C, H, W) order
            x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        x = x @ self.dense[layer.name]
        x += self.w[f"{layer.name}.bias"]
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Scores (B, classes) for normalised input (B, H, W, 1): `run_layers`' last output, with
        each convolution and the pooling after it computed together (conv_pool; fast network, one
        image: 136 against 165 us layer by layer, min of 9). A convolution's own activation, if
        any, then comes after a max pooling: all three are monotone, so they commute with the max."""
        layers, i = self.description, 0
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused at the end, in one line
            while i < len(layers):
                layer, pool = layers[i], layers[i + 1] if i + 1 < len(layers) else None
                if (layer.op == "conv" and pool is not None and pool.op in POOL
                        and (layer.activation is None or pool.op == "maxpool")):
                    x = conv_pool(x, self.kernels[layer.name], self.w.get(f"{layer.name}.bias"), layer.weight_shape[-1],
                                  layer.padding, POOL[pool.op])
                    x = ACTIVATION[pool.activation](ACTIVATION[layer.activation](x))
                    i += 2
                else:
                    x = ACTIVATION[layer.activation](self.apply(layer, x))
                    i += 1
        return finite_scores(x)

    def probabilities(self, images: np.ndarray, batch_size: int = PASS) -> np.ndarray:
        """Class probabilities (B, classes) for uint8 images (B, 28, 28), white ink on black,
        `batch_size` images a forward pass."""
        t = self.config.temperature
        with np.errstate(over="ignore", invalid="ignore"):  # scores / temperature too: refused, in one line
            outs = [finite_scores(softmax(self.forward(self.normalize(images[i:i + batch_size])) / t))
                    for i in range(0, len(images), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.config.num_classes), np.float32)
