"""Paper as people have it: squared and ruled paper, guide lines, a notebook page, a sticky note on
a desk, a shadow, tight crops. The lines, edges and shadows are not ink; the digit is read."""

import cv2
import numpy as np
import pytest

from lenet.data import disguise
from lenet.reading.digit import BORDER, read_digit
from lenet.reading.image import load_image
from lenet.reading.paper import paper_lines, sheet


@pytest.fixture(scope="module")
def model():
    import lenet

    return lenet.load().model


def grid_page(side=120, cell=15):
    """Light paper with a grey grid, and one dark pen stroke crossing it."""
    page = np.full((side, side), 0.92, np.float32)
    page[3::cell] = page[:, 3::cell] = 0.6
    page[20:100, 40:42] = 0.15
    return page


def test_grid_lines_found_and_a_stroke_over_them_kept():
    page = grid_page()
    added = paper_lines(page)
    assert added[3::15, 90:].min() > 0.2  # every line, away from the stroke, lifted
    assert added[20:100, 40:42].max() == 0  # the stroke where it crosses the lines stays dark


def test_one_stroke_across_a_tight_crop_is_not_a_line():
    page = np.full((60, 30), 0.92, np.float32)
    page[:, 12:18] = 0.15  # a 1 cropped tight: one stroke from edge to edge
    page[28:31, :] = 0.6   # and one thin line across
    assert not paper_lines(page).any()


def test_a_note_on_a_desk_is_found_and_plain_paper_is_not_a_note():
    rng = np.random.default_rng(0)
    desk = np.full((200, 260), 0.35, np.float32) + rng.normal(0, 0.02, (200, 260)).astype(np.float32)
    desk[50:150, 80:180] = 0.9
    inside = sheet(desk)
    assert inside is not None and inside[100, 130] and not inside[20, 20] and not inside[50, 80]
    assert sheet(np.full((200, 260), 0.9, np.float32)) is None
    chalk = np.full((200, 260), 0.2, np.float32)
    chalk[60:140, 120:130] = chalk[60:70, 100:150] = 0.9  # light strokes on a board: not a sheet
    assert sheet(chalk) is None


def shadowed_zero(angle: float, offset: int) -> np.ndarray:
    """A 0 (56x96 px) in the middle of grey paper, 280x300, and the straight, soft edge of a
    shadow (half the light) across the paper at `angle`, `offset` px from the digit's centre."""
    h, w = 300, 280
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xx - 140) * np.cos(angle) + (yy - 150) * np.sin(angle) - offset
    shade = 1 - 0.5 / (1 + np.exp(-along / 4))
    ink = np.zeros((h, w), np.uint8)
    cv2.ellipse(ink, (140, 150), (28, 48), 0, 0, 360, 255, 9)
    noise = np.random.default_rng(3).normal(0, 0.01, (h, w))
    return (shade * 0.65 * (1 - 0.8 * ink / 255) + noise).astype(np.float32).clip(0, 1)


def test_a_shadow_across_the_paper_is_not_ink():
    """Wherever the shadow's edge falls (over a corner, beside the digit, through it), the digit's
    box is read, not the shadow's dark side nor the lit paper beside it taken for ink."""
    wrong = []
    for angle in np.linspace(0, np.pi, 8, endpoint=False):
        for offset in (-90, -60, -30, 0):
            box = read_digit(shadowed_zero(float(angle), offset)).box
            if not (abs(box.left - 112) <= 6 and abs(box.right - 168) <= 6
                    and abs(box.top - 102) <= 6 and abs(box.bottom - 198) <= 6):
                wrong.append((round(float(angle), 2), offset, tuple(box)))
    assert not wrong, f"shadow read as ink (angle, offset, box): {wrong}"


def note_on_desk(turn: float, desk_grey: float, centre: tuple[int, int]) -> np.ndarray:
    """A 1200x900 photo of a desk (`desk_grey`, grained) with a light note on it, 380 px a side,
    turned `turn` degrees, its soft shadow beside it, and a 0 (about 100x190 px) written on it."""
    h, w = 900, 1200
    cy, cx = centre
    desk = np.full((h, w), desk_grey, np.float32) + 0.04 * np.sin(np.arange(h, dtype=np.float32) / 9)[:, None]
    corners = cv2.boxPoints(((cx, cy), (380, 380), turn)).astype(np.int32)
    shadow = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(shadow, corners + 12, 1.0)
    grey = desk * (1 - 0.45 * cv2.GaussianBlur(shadow, (0, 0), 8))
    note = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(note, corners, 1)
    grey = np.where(note > 0, np.float32(0.9), grey)
    ink = np.zeros((h, w), np.uint8)
    cv2.ellipse(ink, (cx, cy), (50, 95), turn, 0, 360, 255, 16)
    noise = np.random.default_rng(4).normal(0, 0.01, (h, w))
    return (grey * (1 - 0.85 * ink / 255) + noise).astype(np.float32).clip(0, 1)


@pytest.mark.parametrize("turn, desk", [(-10, 0.25), (-10, 0.55), (9, 0.4), (3, 0.25)])
def test_a_notes_edge_on_a_desk_is_not_ink(turn, desk):
    """The note's edge stays out of the closer look at the digit too (the crop round a small
    digit shows the note's edge and the desk without the rest of the note)."""
    for cy, cx in ((300, 330), (450, 600), (600, 850)):
        box = read_digit(note_on_desk(turn, desk, (cy, cx))).box
        assert abs((box.left + box.right) / 2 - cx) < 25 and abs((box.top + box.bottom) / 2 - cy) < 25, box
        assert box.height < 230 and box.width < 150, box


def test_the_upright_lines_of_squared_paper_go_on_across_the_ruling():
    """A broad blob (a UCI 1, enlarged) on squared paper: the horizontal lines taken out first
    must not cut the upright ones at each crossing, or these stay, joined to the digit, as ink."""
    digit = np.zeros((64, 64), np.uint8)
    cv2.ellipse(digit, (32, 32), (9, 22), 0, 0, 360, 255, -1)
    right = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        height = int(np.random.default_rng(seed).integers(70, 150))  # grid_paper's first draw
        box = read_digit(load_image(disguise.grid_paper(digit, rng))).box
        right += abs(box.height - height) + abs(box.width - round(19 * height / 45)) < 12
    assert right >= 23, f"{right} of 30 digits' boxes found without the grid's lines"


PAPERS = {
    "grid": disguise.grid_paper,
    "ruled through": lambda d, r: disguise.ruled_paper(d, r, through=True),
    "ruled under": lambda d, r: disguise.ruled_paper(d, r, through=False),
    "dotted": disguise.dotted_lines,
    "notebook page": disguise.notebook_page,
    "sticky note": disguise.sticky_note,
    "shadow": disguise.shadow_across,
    "tight crop": disguise.tight_crop,
}


@pytest.mark.parametrize("kind", list(PAPERS))
def test_digits_on_paper_as_people_have_it(kind, mnist, model):
    rng = np.random.default_rng([5, list(PAPERS).index(kind)])
    picks = rng.choice(len(mnist.test_labels), 5, replace=False)
    right = 0
    for digit, label in zip(mnist.test_images[picks], mnist.test_labels[picks], strict=True):
        reading = read_digit(load_image(PAPERS[kind](digit, rng)))
        right += int(model.probabilities(reading.image[None])[0].argmax() == label)
    assert right >= 4, f"{kind}: {right} of 5 read right"


def test_a_tight_crop_is_read_and_not_doubted_for_its_border(mnist, model):
    """Ink at every edge of a crop made to the ink is the crop, not a digit cut off: no border doubt."""
    rng = np.random.default_rng(26)
    picks = rng.choice(len(mnist.test_labels), 5, replace=False)
    right = 0
    for digit, label in zip(mnist.test_images[picks], mnist.test_labels[picks], strict=True):
        reading = read_digit(load_image(disguise.tight_crop(digit, rng)))
        assert BORDER not in reading.doubts, f"a tight crop of a {label} doubted for its border"
        right += int(model.probabilities(reading.image[None])[0].argmax() == label)
    assert right >= 4, f"{right} of 5 tight crops read right"


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_a_digit_cut_in_half_by_the_image_edge_is_doubted(mnist, side):
    """The same digits on paper, half of each cut off by one edge of the image: still doubted."""
    rng = np.random.default_rng(27)
    for digit in mnist.test_images[rng.choice(len(mnist.test_labels), 5, replace=False)]:
        page = load_image(disguise.tight_crop(digit, rng, margin=0.3))
        h, w = page.shape[:2]
        cut = {"left": page[:, w // 2:], "right": page[:, :w // 2],
               "top": page[h // 2:], "bottom": page[:h // 2]}[side]
        assert BORDER in read_digit(cut).doubts, f"a digit cut at the {side} edge was not doubted"
