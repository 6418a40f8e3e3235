"""Inference without torch: the three networks' forward passes in NumPy.

`lenet predict` and `lenet serve` start in a fraction of a second because they
import NumPy, not torch (whose import alone takes seconds). The layers follow
model.py's networks as drawn (their `layers`), with fast's batch norm folded
into its convolutions; tests check that both give the same outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checkpoint import load_model_file
from .config import ModelConfig

BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """(B, H, W, C) * (O, C, k, k) -> (B, H', W', O), stride 1, zero padding `pad`.

    im2col and one matrix product. With channels-last (NHWC) activations each
    window row is one contiguous run of k*C values, so gathering the windows
    copies runs rather than scattered values, and the product's output is
    already (B, H', W', O): no transposes between layers."""
    k = w.shape[-1]
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(x, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)  # (B, H', W', k, k, C)
    bsz, h, wd = win.shape[:3]
    cols = win.reshape(bsz * h * wd, -1)                          # the one copy
    out = cols @ w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T  # (B*H'*W', O)
    if b is not None:
        out += b
    return out.reshape(bsz, h, wd, -1)


def pool2(x: np.ndarray, reduce) -> np.ndarray:
    """2x2 pooling of (B, H, W, C) with `reduce` (np.mean or np.max)."""
    bsz, h, w, c = x.shape
    return reduce(x.reshape(bsz, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))  # no overflow for large |x| (raw 0..255 inputs)


ACTIVATION = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0)}


class NumpyModel:
    """A saved model's forward pass on NumPy arrays, float32."""

    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig, info: dict | None = None):
        self.w = {k: v.astype(np.float32) for k, v in weights.items()}
        self.config = config
        self.info = info or {}
        self.forward = {"lenet5": self._lenet5, "seed": self._seed, "fast": self._fast}[config.arch]
        if config.arch == "fast":
            for conv, bn in (("c1", "bn1"), ("c3", "bn3"), ("c5", "bn5")):
                self._fold_batch_norm(conv, bn)

    def _fold_batch_norm(self, conv: str, bn: str) -> None:
        """In inference batch norm is a fixed per-channel scale and shift: fold it into the
        convolution before it (as model.conv_bn does in torch), one pass less per layer."""
        w = self.w
        scale = w.pop(f"{bn}.weight") / np.sqrt(w.pop(f"{bn}.running_var") + np.float32(BN_EPS))
        shift = w.pop(f"{bn}.bias") - w.pop(f"{bn}.running_mean") * scale
        w[f"{conv}.weight"] = w[f"{conv}.weight"] * scale[:, None, None, None]
        w[f"{conv}.bias"] = shift + w.get(f"{conv}.bias", 0) * scale
        w.pop(f"{bn}.num_batches_tracked", None)

    @classmethod
    def load(cls, path: str | Path) -> "NumpyModel":
        return cls(*load_model_file(path))

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W) -> float32 (B, H, W, 1), the input contract of the model, channels-last."""
        c = self.config
        x = images.astype(np.float32)[..., None]
        return (x * np.float32(c.scale) - np.float32(c.mean)) / np.float32(c.std)

    def probabilities(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Class probabilities (B, classes) for uint8 images (B, 28, 28), white ink on black."""
        outs = []
        for i in range(0, len(images), batch_size):
            z = self.forward(self.normalize(images[i:i + batch_size]))
            z = z - z.max(1, keepdims=True)
            e = np.exp(z)
            outs.append(e / e.sum(1, keepdims=True))
        return np.concatenate(outs) if outs else np.zeros((0, self.config.num_classes), np.float32)

    def _conv(self, name, x, pad):
        return conv2d(x, self.w[f"{name}.weight"], self.w.get(f"{name}.bias"), pad)

    def _dense(self, name, x):
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _lenet5(self, x):
        act = ACTIVATION[self.config.activation]
        x = self._conv("c1", x, 2)                 # (B, 28, 28, 6)
        x = sigmoid(pool2(x, np.mean))             # (B, 14, 14, 6)
        x = act(self._conv("c3", x, 0))            # (B, 10, 10, 16)
        x = pool2(x, np.max)                       # (B, 5, 5, 16)
        x = act(self._conv("c5", x, 0))            # (B, 1, 1, 120)
        x = act(self._dense("f6", x.reshape(len(x), -1)))  # (B, 84)
        return self._dense("output", x)            # (B, classes)

    def _seed(self, x):
        x = self._conv("c1", x, 2)                 # (B, 28, 28, 6)
        x = sigmoid(pool2(x, np.mean))             # (B, 14, 14, 6)
        x = pool2(self._conv("c3", x, 2), np.mean)  # (B, 7, 7, 16)
        x = self._conv("c5", x, 2)                 # (B, 7, 7, 120)
        x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # (B, 5880), flattened in torch's (C, H, W) order
        x = sigmoid(self._dense("f6", x))          # (B, 84)
        return sigmoid(self._dense("output", x))   # (B, classes)

    def _fast(self, x):
        # Batch norm is folded into c1, c3 and c5 (see _fold_batch_norm).
        relu = ACTIVATION["relu"]
        x = relu(pool2(self._conv("c1", x, 2), np.max))  # (B, 14, 14, 16)
        x = relu(pool2(self._conv("c3", x, 0), np.max))  # (B, 5, 5, 32)
        x = relu(self._conv("c5", x, 0))                 # (B, 1, 1, 64)
        x = relu(self._dense("f6", x.reshape(len(x), -1)))  # (B, 84)
        return self._dense("output", x)                  # (B, classes)
