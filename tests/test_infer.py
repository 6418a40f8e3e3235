"""The NumPy forward pass's speed-ups compute what the plain formulas compute."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from lenet.infer import conv2d, pool2


def plain_conv(x, w, b, pad):
    """Convolution by its definition: every window times the kernel, summed."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(x, w.shape[2:], axis=(1, 2))          # (B, H', W', C, k, k)
    out = np.einsum("bhwcij,ocij->bhwo", win.astype(np.float64), w.astype(np.float64))
    return out + (b if b is not None else 0)


@pytest.mark.parametrize("shape, out, k, pad", [
    ((1, 28, 28, 1), 16, 5, 2),   # C1
    ((3, 14, 14, 16), 32, 5, 0),  # C3
    ((2, 5, 5, 32), 64, 5, 0),    # C5: one window, the whole map
    ((4, 9, 7, 3), 2, 3, 1),      # not square, odd
])
def test_conv_gathers_the_same_windows(shape, out, k, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out, shape[-1], k, k)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    np.testing.assert_allclose(conv2d(x, w, b, pad), plain_conv(x, w, b, pad), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv2d(x, w, None, pad), plain_conv(x, w, None, pad), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reduce", [np.max, np.mean])
def test_pooling_by_corners_is_pooling_by_blocks(reduce):
    x = np.random.default_rng(1).standard_normal((3, 10, 8, 5)).astype(np.float32)
    blocks = reduce(x.reshape(3, 5, 2, 4, 2, 5), axis=(2, 4))
    np.testing.assert_allclose(pool2(x, reduce), blocks, rtol=1e-6, atol=1e-6)
