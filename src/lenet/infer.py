"""Inference without torch: the three networks' forward passes in NumPy.

`lenet predict` and `lenet serve` start in a fraction of a second because they
import NumPy, not torch (whose import alone takes seconds). The layers mirror
model.py one for one; a test checks both give the same probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checkpoint import load_model_file
from .config import ModelConfig

BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """(B, C, H, W) * (O, C, k, k) -> (B, O, H', W'), stride 1, zero padding `pad`: im2col + one matmul."""
    k = w.shape[-1]
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, (k, k), axis=(2, 3))             # (B, C, H', W', k, k)
    bsz, c, h, wd = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(bsz * h * wd, c * k * k)
    out = cols @ w.reshape(w.shape[0], -1).T                      # (B*H'*W', O)
    if b is not None:
        out += b
    return out.reshape(bsz, h, wd, -1).transpose(0, 3, 1, 2)


def pool2(x: np.ndarray, reduce) -> np.ndarray:
    bsz, c, h, w = x.shape
    return reduce(x.reshape(bsz, c, h // 2, 2, w // 2, 2), axis=(3, 5))


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

    @classmethod
    def load(cls, path: str | Path) -> "NumpyModel":
        return cls(*load_model_file(path))

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W) -> float32 (B, 1, H, W), the input contract of the model."""
        c = self.config
        x = images.astype(np.float32)[:, None]
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

    def _bn(self, name, x):
        w = self.w
        scale = w[f"{name}.weight"] / np.sqrt(w[f"{name}.running_var"] + BN_EPS)
        shift = w[f"{name}.bias"] - w[f"{name}.running_mean"] * scale
        return x * scale[:, None, None] + shift[:, None, None]

    def _lenet5(self, x):
        act = ACTIVATION[self.config.activation]
        x = self._conv("c1", x, 2)                 # (B, 6, 28, 28)
        x = sigmoid(pool2(x, np.mean))             # (B, 6, 14, 14)
        x = act(self._conv("c3", x, 0))            # (B, 16, 10, 10)
        x = pool2(x, np.max)                       # (B, 16, 5, 5)
        x = act(self._conv("c5", x, 0))            # (B, 120, 1, 1)
        x = act(self._dense("f6", x.reshape(len(x), -1)))  # (B, 84)
        return self._dense("output", x)            # (B, classes)

    def _seed(self, x):
        x = self._conv("c1", x, 2)                 # (B, 6, 28, 28)
        x = sigmoid(pool2(x, np.mean))             # (B, 6, 14, 14)
        x = pool2(self._conv("c3", x, 2), np.mean)  # (B, 16, 7, 7)
        x = self._conv("c5", x, 2)                 # (B, 120, 7, 7)
        x = sigmoid(self._dense("f6", x.reshape(len(x), -1)))  # (B, 84)
        return sigmoid(self._dense("output", x))   # (B, classes)

    def _fast(self, x):
        relu = ACTIVATION["relu"]
        x = relu(pool2(self._bn("bn1", self._conv("c1", x, 2)), np.max))  # (B, 16, 14, 14)
        x = relu(pool2(self._bn("bn3", self._conv("c3", x, 0)), np.max))  # (B, 32, 5, 5)
        x = relu(self._bn("bn5", self._conv("c5", x, 0)))                 # (B, 64, 1, 1)
        x = relu(self._dense("f6", x.reshape(len(x), -1)))                # (B, 84)
        return self._dense("output", x)                                   # (B, classes)
