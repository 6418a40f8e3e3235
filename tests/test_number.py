"""Reading numbers on what breaks segmentation: dashes, specks, long rows, chains of touching
blobs. Nothing may crash, every image's work is bounded, and a long row is never read short
without a word."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from lenet.data.disguise import ink_of
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading.number import MAX_DIGITS, MAX_PIECES, OutOfTime, TooManyDigits, read_number
from lenet.reading.predict import read_digits


@pytest.fixture(scope="module")
def model():
    return NumpyModel.load(bundled_model_path())


def paper(ink: np.ndarray) -> np.ndarray:
    return ((0.92 - 0.8 * np.clip(ink, 0, 1)) * 255).astype(np.uint8)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def row_of(digits: list, gap: int, height: int = 40) -> np.ndarray:
    """MNIST digits side by side, `gap` pixels apart (negative: overlapping, so touching)."""
    inks = [ink_of(d, height) for d in digits]
    page = np.zeros((2 * height, 2 * height + sum(i.shape[1] + gap for i in inks)), np.float32)
    x = height
    for ink in inks:
        region = page[height // 2:height // 2 + height, x:x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] + gap
    return paper(page)


def chains(rows: int = 16, links: int = 8, size: int = 10) -> np.ndarray:
    """`rows` chains of `links` touching oval blobs `size` pixels tall: every chain one mark with
    many valleys."""
    tall, wide, step = size, size * 6 // 5, size
    page = np.zeros((rows * (tall + 2) + 8, links * step + 2 * wide), np.float32)
    yy, xx = np.mgrid[0:tall, 0:wide]
    blob = ((yy - (tall - 1) / 2) ** 2 / (tall / 2) ** 2 + (xx - (wide - 1) / 2) ** 2 / (wide / 2) ** 2) < 1
    for r in range(rows):
        for c in range(links):
            region = page[4 + r * (tall + 2):4 + r * (tall + 2) + tall, wide + c * step:wide + c * step + wide]
            np.maximum(region, blob, out=region)
    return paper(page)


def ordinary_inputs(mnist) -> dict:
    dash = np.zeros((100, 200), np.float32)
    dash[48:53, 60:140] = 1
    blobs = np.zeros((100, 200), np.float32)
    for i in range(5):
        blobs[45:50, 20 + 35 * i:25 + 35 * i] = 1
    specks = np.zeros((100, 600), np.float32)
    for i in range(50):
        specks[50:52, 10 + 11 * i:12 + 11 * i] = 1
    small_dash = np.zeros((28, 28), np.uint8)
    small_dash[13:15, 4:24] = 255
    return {"dash": paper(dash), "five small blobs": paper(blobs), "50 specks": paper(specks),
            "28x28 dash": small_dash, "a row of 50 MNIST digits": row_of(list(mnist.test_images[:50]), 6),
            "16 chains of 8 touching blobs": chains()}


def test_ordinary_inputs_are_read_or_refused_never_crash(mnist, model):
    for name, pixels in ordinary_inputs(mnist).items():
        try:
            result = read_digits(model, pixels)
        except ValueError as e:  # a refusal with a message; anything else fails the test
            assert str(e), name
            continue
        assert 1 <= len(result.digits) <= MAX_DIGITS, (name, result.number)
        assert len(result.number) == len(result.digits)


def test_a_row_longer_than_the_limit_is_refused_not_read_short(mnist, model):
    with pytest.raises(TooManyDigits, match=f"at most {MAX_DIGITS}"):
        read_digits(model, row_of(list(mnist.test_images[:MAX_DIGITS + 5]), 8))
    # At the limit, every digit is found (at 1,600 px wide, 40 px tall digits are 10 px at a
    # 384 px analysis side: the row keeps its resolution).
    assert len(read_number(row_of(list(mnist.test_images[:MAX_DIGITS]), 8))) == MAX_DIGITS


def test_a_long_touching_run_is_read_in_full_or_doubted(mnist, model):
    digits, labels = list(mnist.test_images[20:32]), mnist.test_labels[20:32]
    result = read_digits(model, row_of(digits, -4, 60))
    assert result.number == "".join(map(str, labels)) or result.unsure, result.number


def test_every_piece_is_read_once_and_the_readings_are_bounded():
    groups = read_number(chains(1, 8, 30))
    ways = groups[0]
    assert len(ways) > 10                                   # a chain has many ways to be cut
    pieces = {id(r) for way in ways for r in way}
    assert len(pieces) <= MAX_PIECES < sum(len(way) for way in ways)  # shared, not read per way
    total = sum(len({id(r) for way in ways for r in way}) for ways in read_number(chains(16, 8, 30)))
    assert total <= MAX_DIGITS * MAX_PIECES


def test_a_deadline_that_has_passed_stops_the_reading(mnist, model):
    with pytest.raises(OutOfTime):
        read_digits(model, row_of(list(mnist.test_images[:3]), 8), deadline=time.monotonic() - 1)


def test_http_number_budget(mnist, monkeypatch):
    from fastapi.testclient import TestClient

    from lenet.serving import app as serving
    from lenet.serving import routes

    crafted = png(chains())
    assert len(crafted) < 2000
    with TestClient(serving.create_app(), base_url="http://127.0.0.1") as client:
        start = time.monotonic()
        r = client.post("/predict/number", content=crafted, headers={"content-type": "image/png"})
        assert time.monotonic() - start < routes.NUMBER_SECONDS + 1
        assert r.status_code in (200, 413, 422, 503), r.text
        long_row = png(row_of(list(mnist.test_images[:MAX_DIGITS + 5]), 8))
        r = client.post("/predict/number", content=long_row, headers={"content-type": "image/png"})
        assert r.status_code == 413 and f"at most {MAX_DIGITS}" in r.text
        r = client.post("/predict/number", content=png(ordinary_inputs(mnist)["dash"]),
                        headers={"content-type": "image/png"})
        assert r.status_code in (200, 422), r.text
        monkeypatch.setattr(routes, "NUMBER_SECONDS", 0.0)
        r = client.post("/predict/number", content=png(row_of(list(mnist.test_images[:3]), 8)),
                        headers={"content-type": "image/png"})
        assert r.status_code == 503 and "spent" in r.text


def test_a_folder_run_reads_every_file(mnist, tmp_path, capsys):
    from lenet.cli.main import main

    for i, pixels in enumerate(ordinary_inputs(mnist).values()):
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    code = main(["predict", "--number", "--json", str(tmp_path)])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    lines = [line for line in out.out.splitlines() if line.strip()]
    assert len(lines) == len(ordinary_inputs(mnist)), out


def test_boxes_are_in_the_coordinates_of_the_image_as_given(mnist, tmp_path, model):
    """An image over the decoder's working side is reduced before reading; every box is still
    in the coordinates of the image as given (a 3000x4000 photo's boxes were 2.5x off)."""
    import lenet
    from lenet.reading.digit import read_digit
    from lenet.reading.image import WORK_SIDE, decode_image
    from lenet.reading.predict import read_file

    ink = ink_of(mnist.test_images[0], 400)                     # a 7, 400 px tall
    page = np.zeros((4000, 3000), np.float32)
    page[1800:2200, 1200:1200 + ink.shape[1]] = ink
    path = tmp_path / "big.png"
    Image.fromarray(paper(page)).save(path)
    pixels, scale = decode_image(path)
    assert max(pixels.shape) == WORK_SIDE and scale == pytest.approx(2.5)
    for box in (read_digit(pixels, scale).box, read_file(path).box, lenet.load().predict(path).box):
        left, top, _right, bottom = box
        assert abs(left - 1200) <= 8 and abs(top - 1800) <= 8 and abs(bottom - 2200) <= 12, box
    number = read_digits(model, pixels, scale=scale)
    assert abs(number.digits[0].box.top - 1800) <= 8
    from fastapi.testclient import TestClient

    from lenet.serving.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        for route in ("/predict", "/predict/number"):
            r = client.post(route, content=path.read_bytes(), headers={"content-type": "image/png"})
            assert r.status_code == 200, r.text
            body = r.json()
            box = body["box"] if route == "/predict" else body["digits"][0]["box"]
            assert abs(box[0] - 1200) <= 8 and abs(box[1] - 1800) <= 8, (route, box)


def first_of(mnist, label: int, k: int) -> np.ndarray:
    return mnist.test_images[np.flatnonzero(mnist.test_labels == label)[k]]


def placed(inks_gaps: list, height: int) -> np.ndarray:
    """Inks side by side, each followed by its gap in pixels (negative: overlapping, so touching)."""
    page = np.zeros((2 * height, 3 * height + sum(ink.shape[1] + gap for ink, gap in inks_gaps)), np.float32)
    x = height
    for ink, gap in inks_gaps:
        region = page[height // 2:height // 2 + ink.shape[0], x:x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] + gap
    return paper(page)


@pytest.mark.parametrize("k", [0, 2, 4, 5])
def test_a_digit_broken_in_two_whose_left_part_touches_its_neighbour_is_read_whole(mnist, model, k):
    """A 4 touching the left half of a 0 whose right half stands apart: the 0's two halves lie in
    two groups (the first too wide to join whole), so only a piece bridging the first group's last
    cut and the second group reads the 0 (the reader without bridges read 47, 411 or 481)."""
    height = 60
    four, zero = ink_of(first_of(mnist, 4, k), height), ink_of(first_of(mnist, 0, k), height)
    half = zero.shape[1] // 2
    row = placed([(four, -3), (zero[:, :half], 5), (zero[:, half:], 0)], height)
    assert read_digits(model, row).number == "40"


def close_chains(links: int, chains: int = 20, tall: int = 30, wide: int = 14, step: int = 12) -> np.ndarray:
    """`chains` chains of `links` touching oval blobs, 3 px apart: each chain one group with many
    cuts, each two neighbouring chains close enough for bridges."""
    length = step * (links - 1) + wide
    ink = np.zeros((tall * 3, chains * (length + 3) + 2 * tall), np.float32)
    yy, xx = np.mgrid[0:tall, 0:wide]
    blob = ((yy - (tall - 1) / 2) ** 2 / (tall / 2) ** 2 + (xx - (wide - 1) / 2) ** 2 / (wide / 2) ** 2) < 1
    for c in range(chains):
        for link in range(links):
            x = tall + c * (length + 3) + link * step
            np.maximum(ink[tall:2 * tall, x:x + wide], blob, out=ink[tall:2 * tall, x:x + wide])
    return paper(ink)


def test_bridges_keep_a_row_within_its_readings(monkeypatch):
    """Bridges are read only while the row's readings stay within MAX_READINGS, narrowest first,
    and each piece is read once."""
    from lenet.reading import number

    row = number.read_row(close_chains(4))
    within = {id(r) for ways in row.groups for way in ways for r in way}
    bridges = [p for p in row.pieces if id(p.reading) not in within]
    assert len(row.groups) == 20 and bridges
    assert len(row.pieces) <= number.MAX_READINGS
    assert len({id(p.reading) for p in row.pieces}) == len(row.pieces)
    assert all(row.nodes > p.end > p.start >= 0 for p in row.pieces)
    monkeypatch.setattr(number, "MAX_READINGS", len(within) + 3)  # room for three bridges only
    assert len(number.read_row(close_chains(4)).pieces) == len(within) + 3


def test_shape_costs_a_sliver_a_fragment_and_two_digits_run_together():
    from lenet.reading.morphology import Box
    from lenet.reading.search import shape_cost

    height = 100
    assert shape_cost(Box(0, 0, 60, 95), height) == 0.0      # a digit's shape: no cost
    assert shape_cost(Box(0, 0, 20, 95), height) == 0.0      # a 1 is narrow but no sliver
    assert shape_cost(Box(0, 0, 10, 95), height) > 0.0       # a sliver cut off a digit's side
    assert shape_cost(Box(0, 0, 40, 30), height) > 0.0       # a fragment, far lower than the row
    assert shape_cost(Box(0, 0, 150, 95), height) > shape_cost(Box(0, 0, 110, 95), height) > 0.0  # run together
