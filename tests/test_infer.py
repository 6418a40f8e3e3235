"""The NumPy forward pass's speed-ups compute what the plain formulas compute."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from lenet.nn.numpy_model import conv2d, conv_pool, kernel_matrix, pool2


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


@pytest.mark.parametrize("shape, out, pad", [
    ((1, 28, 28, 1), 16, 2),   # fast's C1 and S2
    ((3, 14, 14, 16), 32, 0),  # fast's C3 and S4, a batch
    ((2, 9, 9, 6), 4, 2),      # the seed network at an odd size: pooling drops the last row and column
    ((2, 12, 11, 1), 3, 0),    # one channel, odd width
])
@pytest.mark.parametrize("reduce", [np.max, np.mean])
def test_convolution_and_pooling_together_are_the_two_in_turn(shape, out, pad, reduce):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out, shape[-1], 5, 5)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    expected = pool2(plain_conv(x, w, b, pad).astype(np.float32), reduce)
    np.testing.assert_allclose(conv_pool(x, kernel_matrix(w), b, 5, pad, reduce), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv_pool(x, kernel_matrix(w), None, 5, pad, reduce),
                               pool2(plain_conv(x, w, None, pad).astype(np.float32), reduce), rtol=1e-4, atol=1e-4)
