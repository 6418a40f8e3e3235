"""The rejector: junk made from training digits only, in the reader's own 28x28 form; the bundled
rejector and its card; a letter doubted as "not a digit"; touching digits cut by what looks like
digits."""

import json

import numpy as np
import pytest

from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path, rejector_path
from lenet.reading.digit import BOX, SIZE, read_digit
from lenet.reading.predict import JUNK_ABOVE, judged, junk_of, predict_images, read_digits


@pytest.fixture(scope="module")
def model():
    return NumpyModel.load(bundled_model_path())


def in_mnist_form(image: np.ndarray) -> bool:
    """The reader's normalisation: the ink's longer side fills the 20 px box, its centre of mass
    within a pixel and a half of the centre."""
    ink = image > 0
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    longer = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    weights = image.astype(np.float64)
    centre = [(weights.sum(axis) @ np.arange(SIZE)) / weights.sum() for axis in (1, 0)]
    return BOX - 1 <= longer <= BOX + 2 and max(abs(c - (SIZE - 1) / 2) for c in centre) <= 1.5


def test_junk_is_made_only_from_the_digits_given_in_the_readers_form(mnist, monkeypatch):
    from lenet.data import mnist as data
    from lenet.training.junk import JUNK, junk_set

    def no_loading(*args, **kwargs):
        raise AssertionError("junk_set loaded a dataset itself")

    monkeypatch.setattr(data, "load", no_loading)
    digits, labels = mnist.train_images[:200], mnist.train_labels[:200]
    images, classes = junk_set(digits, labels, 60, seed=3, log=lambda *a: None)
    assert images.dtype == np.uint8 and images.shape[1:] == (SIZE, SIZE) and len(images) == len(classes)
    assert set(classes.tolist()) <= set(range(JUNK + 1)) and (classes == JUNK).mean() > 0.6
    assert np.mean([in_mnist_form(x) for x in images]) > 0.95
    again, _ = junk_set(digits, labels, 60, seed=3, log=lambda *a: None)
    assert np.array_equal(images, again)  # seeded: the bundled rejector can be made again


def test_a_piece_is_labelled_by_the_digits_whose_ink_it_holds():
    from lenet.training.junk import JUNK, label_piece

    columns = [np.r_[np.ones(10), np.zeros(10)], np.r_[np.zeros(10), np.ones(10)]]
    assert label_piece((0, 0, 10, 5), columns, [3, 7]) == 3
    assert label_piece((10, 0, 20, 5), columns, [3, 7]) == 7
    assert label_piece((0, 0, 20, 5), columns, [3, 7]) == JUNK   # both: a pair
    assert label_piece((0, 0, 5, 5), columns, [3, 7]) == JUNK    # half of the 3
    assert label_piece((0, 0, 13, 5), columns, [3, 7]) == JUNK   # the 3 and a part of the 7
    assert label_piece((0, 0, 9, 5), columns, [3, 7]) is None    # nearly whole: neither taught


def test_the_bundled_rejector_loads_and_its_card_says_how_it_was_made():
    from lenet.training.junk import JUNK, LOOK_ALIKES

    rejector = NumpyModel.load(rejector_path())
    assert rejector.config.num_classes == JUNK + 1
    card = json.loads(rejector_path().with_suffix(".json").read_text())
    assert card["command"].startswith("python scripts/train_reject.py")
    assert card["junk"]["letters_left_out"] == LOOK_ALIKES and card["junk"]["share_of_mix"] > 0.15
    assert card["test_accuracy"] >= 0.99


def test_a_letter_is_doubted_as_not_a_digit(model):
    from lenet.training.fonts import draw, matplotlib_fonts

    font = next(f for f in matplotlib_fonts() if f.name == "DejaVuSans.ttf")
    rng = np.random.default_rng(0)
    for letter in "AKMWx":
        reading = read_digit(draw(letter, font, rng, 80))  # type: ignore[arg-type]
        result = judged(model, predict_images(model, reading.image[None])[0], reading)
        assert result.unsure and any(d.startswith("does not look like a digit") for d in result.doubts), \
            (letter, result.doubts)


def test_mnist_test_digits_are_rarely_called_not_a_digit(mnist):
    p_junk = junk_of(mnist.test_images[:500])
    assert (p_junk > JUNK_ABOVE).mean() <= 0.03


def spiral(turns: float) -> np.ndarray:
    """A spiral of `turns` turns drawn dark on light paper, 120 px."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (120, 120), 235)
    t = np.linspace(0, 1, 200)
    angle = t * 2 * np.pi * turns
    points = [(60 + 45 * a * np.cos(b), 60 + 45 * a * np.sin(b)) for a, b in zip(t, angle, strict=True)]
    ImageDraw.Draw(image).line(points, fill=30, width=5, joint="curve")
    return np.asarray(image)


def test_a_spiral_is_doubted_and_mnist_digits_are_not_for_their_crossings(mnist, model):
    """A line across a spiral crosses its strokes more often than any digit's (the rejector, never
    trained on spirals, reads some as a confident 6 or 0)."""
    from lenet.reading.predict import MAX_CROSSINGS, crossings, doubts_of

    for turns in (2.5, 3.0):
        reading = read_digit(spiral(turns))
        assert crossings(reading.image[None])[0] > MAX_CROSSINGS
        result = predict_images(model, reading.image[None])[0]
        doubts = doubts_of(model, result.probability, reading, 0.0)
        assert any(d.startswith("does not look like a digit") for d in doubts)
    assert (crossings(mnist.test_images) > MAX_CROSSINGS).mean() <= 0.001


def test_touching_pairs_are_read_as_two_digits(mnist, model):
    from test_number import row_of

    images, labels = mnist.test_images, mnist.test_labels
    pairs = [(a, a + 1) for a in range(0, 24, 2)]
    read = [read_digits(model, row_of([images[a], images[b]], gap=-3)).number for a, b in pairs]
    right = [f"{labels[a]}{labels[b]}" for a, b in pairs]
    # Without the rejector 7 of the 12 were right, "96" read as one digit (an 8).
    assert sum(r == t for r, t in zip(read, right, strict=True)) >= 8, (read, right)
    assert "96" in read, read


def row_with_signs(parts: list, height: int = 40, gap: int = 8) -> np.ndarray:
    """MNIST digits and signs ('.', ',', '-') in a row on paper: a point is a stroke-wide square
    on the baseline, a comma the same running below it, a minus a bar at mid height."""
    from lenet.data.disguise import ink_of

    stroke = height // 8
    inks = []
    for part in parts:
        if isinstance(part, str):
            drop = height // 6 if part == "," else 0
            ink = np.zeros((height + drop, height // 2 if part == "-" else stroke + 2), np.float32)
            if part == "-":
                ink[height // 2 - stroke // 2:height // 2 + (stroke + 1) // 2] = 1
            else:
                ink[height - stroke:, 1:1 + stroke] = 1
            inks.append(ink)
        else:
            inks.append(ink_of(part, height))
    page = np.zeros((2 * height + height // 2, 2 * height + sum(i.shape[1] + gap for i in inks)), np.float32)
    x = height
    for ink in inks:
        region = page[height // 2:height // 2 + ink.shape[0], x:x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] + gap
    return ((0.92 - 0.8 * page) * 255).astype(np.uint8)


@pytest.mark.parametrize("spec", ["dd.dd", "d,d", "-dd", "ddd"])
def test_a_decimal_point_a_comma_and_a_leading_minus_are_read(mnist, model, spec):
    picks = iter([1, 2, 3, 4])  # a 2, a 1, a 0, a 4: digits the bundled model reads right
    parts, truth = [], ""
    for c in spec:
        if c == "d":
            i = next(picks)
            parts.append(mnist.test_images[i])
            truth += str(mnist.test_labels[i])
        else:
            parts.append(c)
            truth += c
    result = read_digits(model, row_with_signs(parts))
    assert result.number == truth
    assert len(result.digits) == spec.count("d")  # the digits alone keep their entries and boxes


def outline(kind: str, sides: int = 6, side: int = 120) -> np.ndarray:
    """A regular polygon's outline, or a chevron (">" or "<"), drawn dark on light paper by another
    hand than training's (training/junk.py jitters its corners and stretches its polygons)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (side, side), 235)
    pen = ImageDraw.Draw(image)
    c = side / 2
    if kind == "polygon":
        angles = np.linspace(0, 2 * np.pi, sides + 1) + 0.3
        pen.line([(c + 40 * np.cos(a), c + 40 * np.sin(a)) for a in angles], fill=30, width=6, joint="curve")
    else:
        tip, back = (c + 30, c - 30) if kind == ">" else (c - 30, c + 30)
        pen.line([(back, c - 35), (tip, c), (back, c + 35)], fill=30, width=6, joint="curve")
    return np.asarray(image)


@pytest.mark.parametrize("shape", [("polygon", 5), ("polygon", 6), ("polygon", 7), ("polygon", 8),
                                   (">", 0), ("<", 0)])
def test_polygons_and_chevrons_are_doubted_as_not_a_digit(model, shape):
    """Straight sides and corners are no 0's oval, two arms meeting at mid height no 7's bar (the
    rejector trained without them read polygons as a confident 0 and ">" as a 7)."""
    reading = read_digit(outline(*shape))
    result = judged(model, predict_images(model, reading.image[None])[0], reading)
    assert any(d.startswith("does not look like a digit") for d in result.doubts), (shape, result.digit, result.doubts)


def test_polygons_in_the_junk_are_never_taller_than_wide_and_chevrons_never_level():
    """A 0 is an oval, usually taller than wide, a 7 has a level bar: the junk keeps clear of both."""
    from lenet.training.junk import CLOSE_CALLS, SHAPES, drawing

    assert set(CLOSE_CALLS) <= set(SHAPES)
    rng = np.random.default_rng(0)
    for _ in range(40):
        ink = drawing("polygon", rng) > 0.5
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        assert cols[-1] - cols[0] >= 0.85 * (rows[-1] - rows[0])
        ink = drawing("chevron", rng) > 0.5
        # No row of a chevron holds a level run of ink across most of it, as a 7's bar does.
        cols = np.flatnonzero(ink.any(0))
        edges = [np.flatnonzero(np.diff(np.r_[0, row, 0])) for row in ink.astype(np.int8)]
        longest = max((e[1::2] - e[::2]).max(initial=0) for e in edges)
        assert longest < 0.7 * (cols[-1] - cols[0] + 1)


def test_the_best_path_names_its_nearest_rival_and_how_far_behind_it_scores():
    """A piece read as 8 against two pieces over the same marks read as 1 and 3: the 8 wins, and
    the 13 path is its rival, by the scores' difference (one more digit costs SPLIT_COST)."""
    from types import SimpleNamespace

    from lenet.reading.number import Piece
    from lenet.reading.search import SPLIT_COST, best_path

    eight, one, three, seven = (SimpleNamespace(name=n) for n in "8137")
    pieces = [Piece(0, 2, eight, 0, False, False), Piece(0, 1, one, 0, False, True),
              Piece(1, 2, three, 0, False, True), Piece(2, 3, seven, 1, False, False)]
    scores = {id(eight): -0.1, id(one): -0.2, id(three): -0.3, id(seven): -0.05}
    predictions = {id(r): SimpleNamespace(digit=int(r.name)) for r in (eight, one, three, seven)}
    (first, rival, margin), (last, none, far) = best_path(pieces, 4, scores, predictions)
    assert first is pieces[0] and rival == "13"
    assert margin == pytest.approx(-0.1 - (-0.2 - 0.3 - SPLIT_COST))
    assert last is pieces[3] and none is None and far == float("inf")


def test_a_4_touching_a_1_is_read_as_two_digits(mnist, model):
    """The rejector trained without the reader's bridged and merged pieces took the pair for one
    confident 4 (p(not one digit) near 0)."""
    from test_number import row_of

    images, labels = mnist.test_images, mnist.test_labels
    assert (labels[4], labels[5]) == (4, 1)
    assert read_digits(model, row_of([images[4], images[5]], gap=-3)).number == "41"


def test_two_paths_differ_where_their_digits_between_shared_nodes_do():
    """Paths 8|13|7 and 8|1|3|7 share nodes 0, 1, 3 and 4: only the 13 against 1|3 stretch is the
    same text, so nothing differs; 8|13|7 against 8|43|7 differs over the 13 alone."""
    from types import SimpleNamespace

    from lenet.reading.number import Piece
    from lenet.reading.search import differences

    def piece(start, end, digit):
        return Piece(start, end, SimpleNamespace(digit=digit), 0, False, False)

    eight, thirteen, seven = piece(0, 1, 8), piece(1, 3, 13), piece(3, 4, 7)
    one, three, four = piece(1, 2, 1), piece(2, 3, 3), piece(1, 2, 4)
    predictions = {id(p.reading): SimpleNamespace(digit=p.reading.digit) for p in
                   (eight, thirteen, seven, one, three, four)}
    assert differences([eight, thirteen, seven], [eight, one, three, seven], predictions) == {}
    assert differences([eight, thirteen, seven], [eight, four, three, seven], predictions) == {id(thirteen): "43"}


def test_a_broken_digit_in_the_junk_rows_keeps_its_ink_in_two_marks_apart():
    from lenet.reading import morphology as mo
    from lenet.training import junk

    ink = np.zeros((40, 30), np.float32)
    ink[5:35, 5:25] = 1  # one mark
    rng = np.random.default_rng(0)
    made = [junk.broken(ink, 40, rng) for _ in range(200)]
    two = [m for m in made if m.shape != ink.shape]
    assert 0.05 < len(two) / len(made) < 0.3  # BROKEN of them, about
    for m in two:
        assert m.sum() == ink.sum() and mo.label(m > 0.5)[1] == 2


@pytest.mark.parametrize(("first", "gap"), [(58, -6), (134, -3)])
def test_a_pair_read_as_one_digit_is_read_right_or_doubted_by_another_weighing(mnist, model, first, gap):
    """A 9 overlapping a 5, an 8 touching a 1: the best path reads one digit where a path weighing
    the rejector otherwise reads two; the number is right or its digit says so."""
    from test_number import row_of

    images, labels = mnist.test_images, mnist.test_labels
    truth = f"{labels[first]}{labels[first + 1]}"
    result = read_digits(model, row_of([images[first], images[first + 1]], gap=gap))
    doubts = [d for digit in result.digits for d in digit.doubts]
    assert result.number == truth or any("weighing the rejector otherwise" in d for d in doubts), \
        (result.number, doubts)
    assert result.number == truth or result.unsure
