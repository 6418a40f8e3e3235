"""The even-paper fast path (ink.even_paper_ink): taken on a clean scan, refused where the full path
has work to do (ruled or squared paper, a shadow, ink at the edge, a tiny image)."""

import numpy as np

from lenet.reading import ink as ik
from lenet.reading.digit import read_digit


def scan(side: int = 96, seed: int = 0) -> np.ndarray:
    """A grey scan: paper 0.88 with noise, a ring of ink (a 0) well inside the edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    r = np.hypot(yy - side / 2, (xx - side / 2) * 1.4)
    ring = (r > side * 0.22) & (r < side * 0.32)
    return np.clip(0.88 - 0.7 * ring + rng.normal(0, 0.02, (side, side)), 0, 1).astype(np.float32)


def test_a_clean_scan_takes_the_fast_path_and_reads():
    even = ik.even_paper_ink(scan())
    assert even is not None
    _, mask, _ = even
    assert mask[48, 48 - 30:48 - 15].any() and not mask[48, 45:51].any()  # the ring, not its hole
    reading = read_digit((scan() * 255).astype(np.uint8))
    assert reading.image.shape == (28, 28) and reading.image.max() > 200


def test_ruled_and_squared_paper_do_not_take_it():
    ruled = scan()
    ruled[::12] -= 0.15  # printed lines across the whole width
    assert ik.even_paper_ink(ruled) is None
    squared = ruled.copy()
    squared[:, ::12] -= 0.15
    assert ik.even_paper_ink(squared) is None
    upright = scan()
    upright[:, 5] -= 0.15  # one line down the whole height: a line across, not a digit's stroke
    assert ik.even_paper_ink(upright) is None


def test_a_shadow_or_light_falling_off_does_not_take_it():
    shadow = scan()
    shadow[:, 60:] -= 0.2  # a shadow's edge across the paper
    assert ik.even_paper_ink(shadow) is None
    falling = scan() * np.linspace(1.0, 0.7, 96, dtype=np.float32)[None, :]
    assert ik.even_paper_ink(falling) is None


def test_ink_at_the_edge_or_a_tiny_image_does_not_take_it():
    edge = scan()
    edge[40:56, :10] = 0.2  # ink running off the left edge: maybe a tight crop, framed by the full path
    assert ik.even_paper_ink(edge) is None
    assert ik.even_paper_ink(scan(side=48)) is None
