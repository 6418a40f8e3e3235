"""Each step of reading people's real digits, on small synthetic images: uneven light, form lines,
a dark board in a light room, several digits, a hairline pen; and the calibration behind `unsure`."""

from collections import deque

import numpy as np
import pytest

from lenet.data.disguise import ink_of
from lenet.evaluation.calibration import expected_calibration_error, fit_temperature, softmax
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading import morphology as mo
from lenet.reading.digit import BORDER, SEVERAL, read_digit
from lenet.reading.ink import grey
from lenet.reading.lines import form_lines
from lenet.reading.number import read_number
from lenet.reading.predict import read_digits


def page_with(ink: np.ndarray, h: int, w: int, y: int, x: int) -> np.ndarray:
    page = np.zeros((h, w), np.float32)
    page[y:y + ink.shape[0], x:x + ink.shape[1]] = ink
    return page


def as_paper(page: np.ndarray, light=1.0) -> np.ndarray:
    return (np.clip(light * (0.9 - 0.75 * page), 0, 1) * 255).astype(np.uint8)


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two 28x28 images' ink (intersection over union of pixels above 100)."""
    a, b = a > 100, b > 100
    return (a & b).sum() / max((a | b).sum(), 1)


def test_label_matches_a_flood_fill():
    assert mo.label(np.zeros((4, 4), bool))[1] == 0
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((int(rng.integers(3, 40)), int(rng.integers(3, 40)))) < rng.uniform(0.2, 0.7)
        labels, count = mo.label(mask)
        # Reference: breadth-first flood fill, 8-connected.
        ref, n = np.zeros(mask.shape, int), 0
        for start in zip(*np.nonzero(mask), strict=True):
            if ref[start]:
                continue
            n += 1
            ref[start], queue = n, deque([start])
            while queue:
                y, x = queue.popleft()
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        v, u = y + dy, x + dx
                        if 0 <= v < mask.shape[0] and 0 <= u < mask.shape[1] and mask[v, u] and not ref[v, u]:
                            ref[v, u] = n
                            queue.append((v, u))
        # The same partition, whatever the numbering: each label is exactly one flood-filled region.
        pairs = np.unique(np.stack([labels.ravel(), ref.ravel()]), axis=1)
        assert count == n and pairs.shape[1] == n + 1 and len(set(pairs[0])) == len(set(pairs[1])) == n + 1


def test_label_with_boxes_counts_and_boxes_each_component():
    """Each component's pixel count and box, from the labels returned, on masks whose ink sits
    anywhere (it is labelled on its own bounding box), many components or a few lines (measured
    apart), and an empty one."""
    rng = np.random.default_rng(1)
    assert mo.label_with_boxes(np.zeros((5, 7), bool))[1] == 0
    for trial in range(40):
        mask = np.zeros((int(rng.integers(8, 50)), int(rng.integers(8, 50))), bool)
        y, x = int(rng.integers(0, mask.shape[0] - 3)), int(rng.integers(0, mask.shape[1] - 3))
        if trial % 2:
            mask[y:, x:] = rng.random(mask[y:, x:].shape) < rng.uniform(0.1, 0.5)
        else:  # one to FEW + 1 thin lines
            for _ in range(int(rng.integers(1, mo.FEW + 2))):
                row, start = int(rng.integers(y, mask.shape[0])), int(rng.integers(x, mask.shape[1]))
                mask[row, start:start + int(rng.integers(1, 30))] = True
        labels, count, pixels, boxes = mo.label_with_boxes(mask, lines=trial % 4 < 2)
        assert count == mo.label(mask)[1] and np.array_equal(labels > 0, mask)
        for number in range(count):
            ys, xs = np.nonzero(labels == number + 1)
            assert pixels[number] == ys.size
            assert tuple(boxes[number]) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize("size", [1, 3, 5, 17, 21])
def test_filters_match_a_brute_force_window(size):
    """Max, min and mean over a size x size window, edges repeated, against a loop over pixels."""
    a = np.random.default_rng(size).random((23, 31)).astype(np.float32)
    r = size // 2
    p = np.pad(a, r, mode="edge")
    windows = np.array([[p[y:y + size, x:x + size] for x in range(31)] for y in range(23)])
    assert np.array_equal(mo.max_filter(a, size), windows.max((2, 3)))
    assert np.array_equal(mo.min_filter(a, size), windows.min((2, 3)))
    assert np.allclose(mo.box_blur(a, size), windows.mean((2, 3)), atol=1e-5)


def test_quick_profiles_are_numpys_own():
    """The reader's running maximum, medians and percentiles give exactly NumPy's numbers (padded
    window maxima, np.median, np.percentile), odd and even lengths, windows longer than the row."""
    from lenet.reading.ink import median, percentiles, row_medians

    rng = np.random.default_rng(4)
    for n, size in [(1, 3), (7, 15), (30, 7), (31, 9), (192, 25)]:
        p = rng.random(n).astype(np.float32)
        r = size // 2
        assert np.array_equal(mo.max_filter_1d(p, size),
                              np.lib.stride_tricks.sliding_window_view(np.pad(p, r, mode="edge"), size).max(1))
        a = rng.random((5, n)).astype(np.float32)
        assert np.array_equal(row_medians(a), np.median(a, axis=1))
        assert np.array_equal(row_medians(a.T), np.median(a.T, axis=1))
    paper = np.where(rng.random((300, 201)) < 0.9, np.float32(0.88), rng.random((300, 201))).astype(np.float32)
    narrow = (0.5 + 1e-4 * rng.random((151, 200))).astype(np.float32)  # a range small beside its level
    for n in [1, 2, 3, 50, 51, 1000, 37_001]:
        for a in (rng.random(n).astype(np.float32), rng.random(n), np.round(rng.random((n, 1)) * 255) / 255,
                  *((paper.T, narrow, np.round(paper * 255).astype(np.float32) / 255) if n == 37_001 else ())):
            assert median(a) == np.median(a)
            for qs in ([2, 98], [5, 50, 95], [0, 100]):
                got, want = percentiles(a, qs), np.percentile(a, qs)
                assert got.dtype == want.dtype and np.array_equal(got, want), (n, qs)


def test_line_opening_keeps_only_long_runs():
    mask = np.zeros((20, 30), bool)
    mask[5, 2:28] = True      # a long line
    mask[10, 3:8] = True      # a short dash
    runs = mo.line_opening(mask, 10, axis=1)
    assert runs[5, 2:28].all() and not runs[10].any()


def test_gradient_page_light_falling_off_is_not_ink(mnist):
    """Light falling to a third across the page: the digit is found where it is, and nothing else."""
    ink = ink_of(mnist.test_images[0], 60)              # a 7
    page = page_with(ink, 400, 600, 250, 120)
    light = np.linspace(1.0, 0.33, 600, dtype=np.float32)[None, :] ** 1.5
    reading = read_digit(as_paper(page, light))
    left, top, _right, bottom = reading.box
    assert abs(left - 120) <= 4 and abs(top - 250) <= 4 and abs(bottom - top - 60) <= 6, reading.box
    assert not reading.doubts
    plain = read_digit(as_paper(page))
    assert similar(reading.image, plain.image) > 0.8


def test_small_digit_in_a_big_photo_is_read_from_a_closer_crop(mnist):
    ink = ink_of(mnist.test_images[1], 40)              # a 2, 40 px tall in 1600 px
    big = read_digit(as_paper(page_with(ink, 1200, 1600, 700, 900)))
    alone = read_digit(as_paper(page_with(ink, 80, 80, 20, 20)))
    assert similar(big.image, alone.image) > 0.8
    assert abs(big.box[0] - 900) <= 6 and abs(big.box[1] - 700) <= 6


@pytest.mark.parametrize("kind", ["box", "underline"])
def test_form_lines_are_taken_out(mnist, kind):
    ink = ink_of(mnist.test_images[2], 80)              # a 1
    page = page_with(ink, 160, 160, 40, (160 - ink.shape[1]) // 2)
    alone = read_digit(as_paper(page)).image
    if kind == "box":
        page[12:15, 12:148] = page[145:148, 12:148] = 1
        page[12:148, 12:15] = page[12:148, 145:148] = 1
    else:
        page[125:128, 30:130] = 1
    reading = read_digit(as_paper(page))
    assert similar(reading.image, alone) > 0.8, kind


def test_a_digits_own_straight_strokes_are_not_form_lines():
    """A 7 of two straight strokes, alone: nothing to take out."""
    mask = np.zeros((60, 60), bool)
    mask[5:8, 10:50] = True                   # the bar
    for y in range(8, 55):                    # the stem
        x = 50 - (y - 8) * 30 // 47
        mask[y, x - 1:x + 2] = True
    assert not form_lines(mask).any()


def test_chalk_on_a_dark_board_in_a_light_room(mnist):
    ink = ink_of(mnist.test_images[3], 80)              # a 0
    room = np.full((300, 400), 0.85, np.float32)
    room[50:260, 60:340] = 0.18                          # the board
    room[120:120 + ink.shape[0], 150:150 + ink.shape[1]] = np.maximum(
        room[120:120 + ink.shape[0], 150:150 + ink.shape[1]], 0.85 * ink)
    reading = read_digit((room * 255).astype(np.uint8))
    left, top, _right, bottom = reading.box
    assert abs(left - 150) <= 4 and abs(top - 120) <= 4 and bottom - top <= 86, reading.box
    alone = read_digit(as_paper(page_with(ink, 120, 120, 20, 20))).image
    assert similar(reading.image, alone) > 0.8


def test_two_digits_are_flagged_and_read_as_a_number(mnist):
    four, one = ink_of(mnist.test_images[4], 70), ink_of(mnist.test_images[2], 70)
    page = np.zeros((120, 260), np.float32)
    page[25:95, 30:30 + four.shape[1]] = four
    page[25:95, 150:150 + one.shape[1]] = one
    assert SEVERAL in read_digit(as_paper(page)).doubts
    groups = read_number(as_paper(page))
    assert len(groups) == 2                             # two marks, read left to right
    first, second = groups[0][0][0], groups[1][0][0]    # each read whole
    assert first.box[0] < 40 and second.box[0] >= 140
    assert similar(first.image, read_digit(as_paper(page[:, :140])).image) > 0.8
    result = read_digits(NumpyModel.load(bundled_model_path()), as_paper(page))
    assert result.number == "41"


def test_touching_digits_are_cut_apart(mnist):
    zero, three = ink_of(mnist.test_images[3], 70), ink_of(mnist.test_images[18], 70)
    page = np.zeros((120, 40 + zero.shape[1] + three.shape[1] + 40), np.float32)
    page[25:95, 40:40 + zero.shape[1]] = zero
    x = 40 + zero.shape[1] - 4                          # overlapping by 4 px: one connected mark
    page[25:95, x:x + three.shape[1]] = np.maximum(page[25:95, x:x + three.shape[1]], three)
    groups = read_number(as_paper(page))
    assert len(groups) == 1 and any(len(way) == 2 for way in groups[0])   # one mark, cuttable in two
    assert read_digits(NumpyModel.load(bundled_model_path()), as_paper(page)).number == "03"


def test_hairline_strokes_are_kept():
    """A 0 drawn with a broad nib: thick on one side, a 1 px hairline on the other."""
    yy, xx = np.mgrid[0:300, 0:300]
    r = np.hypot((yy - 150) / 110, (xx - 150) / 70)
    ring = np.abs(r - 1) < np.where(xx < 150, 0.12, 0.008)   # thick left, hairline right
    reading = read_digit(as_paper(ring.astype(np.float32)))
    right_half = reading.image[:, 15:]
    assert right_half.max() >= 128, "the hairline side faded"


def test_ink_at_the_border_is_said():
    page = np.zeros((100, 100), np.float32)
    page[0:70, 45:52] = 1                                   # a 1 cut by the top edge
    assert BORDER in read_digit(as_paper(page)).doubts


def test_canvas_alpha_is_ink_on_white():
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 24:27, 3] = 255
    assert grey(rgba)[20, 25] == 0 and grey(rgba)[0, 0] == 1


def test_temperature_scaling_recovers_the_temperature():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, (20000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(scores)])
    overconfident = scores * 2.5                            # a network sure of itself 2.5x too much
    t = fit_temperature(overconfident, labels)
    assert 2.3 < t < 2.7
    assert expected_calibration_error(softmax(overconfident / t), labels) < \
        expected_calibration_error(softmax(overconfident), labels) / 3


NUMBER = "docs/examples/number-2026.png"


def test_predict_number_and_the_unsure_flag_from_the_command_line():
    import json
    from pathlib import Path

    from helpers import lenet

    example = Path(__file__).parent.parent / NUMBER
    r = lenet("predict", "--number", "--json", str(example))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["number"] == "2026" and len(result["digits"]) == 4
    lefts = [d["box"][0] for d in result["digits"]]
    assert lefts == sorted(lefts)
    # Without --number the same image is answered, flagged unsure, and exits 0.
    r = lenet("predict", "--json", str(example))
    assert r.returncode == 0
    one = json.loads(r.stdout)
    assert one["unsure"] and any("several" in d for d in one["doubts"])


def test_http_predict_number_and_unsure():
    from pathlib import Path

    from fastapi.testclient import TestClient

    from lenet.serving.app import create_app

    data = (Path(__file__).parent.parent / NUMBER).read_bytes()
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        r = client.post("/predict/number", content=data, headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["number"] == "2026" and len(body["preprocessed"]) == 4
        r = client.post("/predict", content=data, headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["unsure"]
        r = client.post("/predict/number", content=b"not an image", headers={"content-type": "image/png"})
        assert r.status_code == 400


def test_api_read_number():
    from pathlib import Path

    import lenet

    row = lenet.load().read_number(Path(__file__).parent.parent / NUMBER)
    assert row.number == "2026" and all(d.box for d in row.digits)
