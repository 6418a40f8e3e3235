"""Inference without torch: the networks' forward passes in NumPy.

`lenet predict` and `lenet serve` start in a fraction of a second because they
import NumPy, not torch (whose import alone takes seconds). The forward pass
walks the network's description (network.py), the same one model.py's torch
`layers` walks, with fast's batch norm folded into its convolutions; tests
check that both give the same outputs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checkpoint import load_model_file
from .config import ModelConfig
from .network import describe, fold_batch_norm


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int,
           kernel: np.ndarray | None = None) -> np.ndarray:
    """(B, H, W, C) * (O, C, k, k) -> (B, H', W', O), stride 1, zero padding `pad`; `kernel` is
    `kernel_matrix(w)` when the caller keeps it (NumpyModel does: one image's forward pass is
    a quarter quicker without rearranging three kernels each time).

    im2col and one matrix product. With channels-last (NHWC) activations each
    window row is one contiguous run of k*C values, so gathering the windows
    copies runs rather than scattered values, and the product's output is
    already (B, H', W', O): no transposes between layers. Two cases gather
    otherwise, for speed (tests/test_infer.py checks all agree with the
    definition): one window covering the whole map (C5) is the map itself, and
    with one input channel (C1) the runs are single values, which one `np.take`
    of precomputed indices gathers 2-4x quicker than copying a view of windows."""
    k = w.shape[-1]
    bsz, h, wd, c = x.shape
    if pad:  # zeros around, by hand: np.pad costs more than the copy for small maps
        padded = np.zeros((bsz, h + 2 * pad, wd + 2 * pad, c), x.dtype)
        padded[:, pad:pad + h, pad:pad + wd] = x
        x, h, wd = padded, h + 2 * pad, wd + 2 * pad
    if kernel is None:
        kernel = kernel_matrix(w)
    oh, ow = h - k + 1, wd - k + 1
    if oh == ow == 1:
        cols = x.reshape(bsz, -1)
    elif c == 1:
        cols = np.take(x.reshape(bsz, -1), windows(h, wd, c, k), axis=1).reshape(bsz * oh * ow, -1)
    else:
        win = sliding_window_view(x, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)  # (B, H', W', k, k, C)
        cols = win.reshape(bsz * oh * ow, -1)                     # the one copy
    out = cols @ kernel                                           # (B*H'*W', O)
    if b is not None:
        out += b
    return out.reshape(bsz, oh, ow, -1)


def kernel_matrix(w: np.ndarray) -> np.ndarray:
    """(O, C, k, k) -> (k*k*C, O), rows in (ky, kx, c) order: the windows' order in conv2d."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T)


@functools.lru_cache(maxsize=32)
def windows(h: int, w: int, c: int, k: int) -> np.ndarray:
    """For a (H, W, C) map flattened: the flat index of every k x k window's values, one row per
    output position (row-major), each row in (ky, kx, c) order."""
    oh, ow = h - k + 1, w - k + 1
    start = (np.arange(oh)[:, None] * w + np.arange(ow)[None, :]).reshape(-1, 1) * c  # each window's corner
    within = ((np.arange(k)[:, None, None] * w + np.arange(k)[None, :, None]) * c + np.arange(c)).reshape(1, -1)
    return (start + within).astype(np.intp)


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


# ReLU in place: every layer's output is a fresh array, so nothing else holds it.
ACTIVATION = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0, out=x), None: lambda x: x}
POOL = {"avgpool": np.mean, "maxpool": np.max}


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
    def load(cls, path: str | Path) -> "NumpyModel":
        return cls(*load_model_file(path))

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W) -> float32 (B, H, W, 1), the input contract of the model, channels-last."""
        return self.config.normalize(images.astype(np.float32)[..., None])

    def run_layers(self, x: np.ndarray):
        """Yield (name, output) for normalised input (B, H, W, 1): maps channels-last (B, H, W, C)."""
        for layer in self.description:
            if layer.op == "conv":
                x = conv2d(x, self.w[f"{layer.name}.weight"], self.w.get(f"{layer.name}.bias"), layer.padding,
                           self.kernels[layer.name])
            elif layer.op in POOL:
                x = pool2(x, POOL[layer.op])
            else:  # dense; a map is flattened in torch's (C, H, W) order
                if x.ndim == 4:
                    x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
                x = x @ self.dense[layer.name]
                x += self.w[f"{layer.name}.bias"]
            x = ACTIVATION[layer.activation](x)
            yield layer.name, x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Scores (B, classes) for normalised input (B, H, W, 1)."""
        for _, x in self.run_layers(x):
            pass
        return x

    def probabilities(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Class probabilities (B, classes) for uint8 images (B, 28, 28), white ink on black."""
        outs = [softmax(self.forward(self.normalize(images[i:i + batch_size])) / self.config.temperature)
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.config.num_classes), np.float32)
