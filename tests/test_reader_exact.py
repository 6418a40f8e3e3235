"""The reader's quicker steps give exactly the numbers of the plain definitions they replace."""

import cv2
import numpy as np

from lenet.reading import background, paper
from lenet.reading import ink as ink_module
from lenet.reading import morphology as mo


def blobs(rng, shape, share):
    """A mask of a few blobs somewhere inside an image of `shape` (nothing near some edges)."""
    mask = np.zeros(shape, bool)
    y0, x0 = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
    y1, x1 = int(rng.integers(y0, shape[0] + 1)), int(rng.integers(x0, shape[1] + 1))
    mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < share
    return mask


def test_label_numbers_components_as_the_whole_image_does():
    """Labelled on the ink's box, the components get the numbers OpenCV's default gives the whole
    image (marks of equal ink keep their order by these numbers)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        mask = blobs(rng, tuple(int(v) for v in rng.integers(1, 90, 2)), float(rng.uniform(0.05, 0.7)))
        count, want = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
        labels, n = mo.label(mask)
        assert n == count - 1 and labels.dtype == np.int32 and np.array_equal(labels, want)


def test_line_opening_is_the_runs_of_at_least_its_length():
    """Both ways: a pixel is kept exactly when its straight run of ink along the axis is that long."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        mask = rng.random(tuple(int(v) for v in rng.integers(5, 40, 2))) < rng.uniform(0.4, 0.95)
        length = int(rng.integers(2, 12))
        for axis in (0, 1):
            rows = mask if axis == 1 else mask.T
            want = np.zeros_like(rows)
            for y, row in enumerate(rows):
                x = 0
                while x < row.size:
                    end = x
                    while end < row.size and row[end]:
                        end += 1
                    if end - x >= length:
                        want[y, x:end] = True
                    x = max(end, x + 1)
            got = mo.line_opening(mask, length, axis)
            assert np.array_equal(got, want if axis == 1 else want.T), (axis, length)


def test_transposed_is_a_contiguous_transpose():
    rng = np.random.default_rng(6)
    for shape in [(1, 7), (9, 1), (31, 17), (192, 175)]:
        for values in (rng.random(shape) < 0.3, (rng.random(shape) * 255).astype(np.uint8),
                       rng.random(shape).astype(np.float32), rng.random(shape)):
            for a in (values, values[:, ::-1], values.T):
                got = mo.transposed(a)
                assert got.dtype == a.dtype and got.flags.c_contiguous and np.array_equal(got, a.T)


def test_closing_and_opening_are_the_two_filters_in_turn():
    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 70, 2))
        size = int(rng.integers(1, 12)) | 1
        for a in (rng.random(shape).astype(np.float32), rng.random(shape) < 0.3, rng.random(shape)):
            assert np.array_equal(mo.closing(a, size), mo.min_filter(mo.max_filter(a, size), size))
            assert np.array_equal(mo.opening(a, size), mo.max_filter(mo.min_filter(a, size), size))


def test_pooled_blocks_are_each_blocks_extremes():
    """Block maxima and minima, for sides that divide evenly (OpenCV's filters) and that do not."""
    rng = np.random.default_rng(2)
    for shape in [(192, 180), (192, 175), (384, 288), (183, 192), (96, 96), (200, 150)]:
        values = rng.random(shape).astype(np.float32)
        coarse = background.reduced_shape(shape, background.BACKGROUND_SIDE)[0]
        hi, lo, (ys, xs) = background.pooled(values, coarse)
        want_hi = np.array([[values[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].max() for j in range(coarse[1])]
                            for i in range(coarse[0])])
        want_lo = np.array([[values[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].min() for j in range(coarse[1])]
                            for i in range(coarse[0])])
        assert np.array_equal(hi, want_hi) and np.array_equal(lo, want_lo), shape


def test_pool_along_is_the_block_maximum():
    rng = np.random.default_rng(3)
    for shape in [(50, 37), (96, 200), (13, 8)]:
        values = rng.random(shape).astype(np.float32)
        for axis in (0, 1):
            for block in (2, 3, 5):
                n = shape[axis]
                index = np.minimum(np.arange(-(-n // block) * block), n - 1)
                taken = np.take(values, index, axis)
                want = (taken.reshape(-1, block, shape[1]).max(1) if axis == 0
                        else taken.reshape(shape[0], -1, block).max(2))
                assert np.array_equal(paper.pool_along(values, axis, block), want)


def test_runs_above_are_where_lines_along_is_above_the_floor():
    """runs_above (in bytes) marks exactly where lines_along's darkness is above the floor, and is
    None only where it is nowhere: on noise, faint and dark lines, short dashes, runs at the ends."""
    rng = np.random.default_rng(5)
    skipped = kept = 0
    for trial in range(300):
        shape = tuple(int(v) for v in rng.integers(20, 260, 2))
        dark = (rng.random(shape) * rng.uniform(0.01, 0.08)).astype(np.float32)
        for _ in range(int(rng.integers(0, 3))):  # lines or dashes, some from an edge, some faint
            row, start = int(rng.integers(0, shape[0])), int(rng.integers(-shape[1] // 2, shape[1]))
            dark[row, max(0, start):start + int(rng.integers(5, shape[1] + 1))] = rng.uniform(0.03, 0.3)
        for axis in (0, 1):
            values = dark if axis == 1 else np.ascontiguousarray(dark.T)
            want = paper.lines_along(values, axis) > paper.LINE_CONTRAST
            got = paper.runs_above(values, axis, paper.LINE_CONTRAST)
            if got is None:
                skipped += 1
                assert not want.any(), trial
            else:
                kept += 1
                assert np.array_equal(got, want), trial
    assert skipped > 50 and kept > 50


def test_canvas_is_one_grey_on_half_the_border():
    rng = np.random.default_rng(4)
    for i in range(500):
        small = (np.round(rng.random(tuple(int(v) for v in rng.integers(8, 40, 2))) * 3) / 3).astype(np.float32)
        if i % 2:
            small[0], small[:, 0] = 0.5, 0.5
            small[-1, :int(rng.integers(0, small.shape[1]))] = 0.5
        _, counts = np.unique(background.border_of(small), return_counts=True)
        assert ink_module.canvas(small) == (int(counts.max()) >= small.shape[0] + small.shape[1])
