"""Preprocessing against MNIST's own description, and on digits disguised as people's images."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lenet.data.disguise import disguise
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading.digit import BOX, SEVERAL, find_digit, mnist_form, plain_resize, preprocess, read_digit
from lenet.reading.image import load_image

N = 300  # test digits per disguise


@pytest.fixture(scope="module")
def model():
    return NumpyModel.load(bundled_model_path())


@pytest.mark.parametrize("style", ["dark-on-light", "light-on-dark", "canvas", "jpeg"])
def test_disguised_digits_score_about_as_well_as_mnist(mnist, model, style):
    rng = np.random.default_rng(0)
    idx = rng.choice(len(mnist.test_labels), N, replace=False)
    digits, labels = mnist.test_images[idx], mnist.test_labels[idx]
    baseline = (model.probabilities(digits).argmax(1) == labels).mean()
    images = [disguise(d, style, rng) for d in digits]
    ours = (model.probabilities(np.stack([preprocess(im) for im in images])).argmax(1) == labels).mean()
    naive = (model.probabilities(np.stack([plain_resize(im) for im in images])).argmax(1) == labels).mean()
    assert ours >= baseline - 0.03, (style, ours, baseline)
    assert ours > naive + 0.1, (style, ours, naive)  # the point of the recipe


def test_output_follows_mnist_recipe(mnist):
    rng = np.random.default_rng(1)
    for digit in mnist.test_images[:50]:
        out = preprocess(disguise(digit, "dark-on-light", rng))
        assert out.shape == (28, 28) and out.dtype == np.uint8
        ys, xs = np.nonzero(out > 0)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 in (BOX, BOX + 1)  # longer side fitted to 20 px
        mass = out.astype(float)
        cy = (np.arange(28)[:, None] * mass).sum() / mass.sum()
        cx = (np.arange(28)[None, :] * mass).sum() / mass.sum()
        assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0  # centre of mass at the centre
        assert out.max() == 255 and out[0].max() == 0  # white ink, black border


def test_digits_in_mnist_form_are_read_as_they_are(mnist):
    # The shortcut: an image already in MNIST's form is what the network learned from; the full
    # path would only resample it (and read fewer right: preprocess_accuracy.py).
    for digit in mnist.test_images[:200]:
        reading = read_digit(digit)
        assert np.array_equal(reading.image, digit) and reading.image is not digit
        ys, xs = np.nonzero(digit)
        assert reading.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # left, top, right, bottom


def test_what_is_not_in_mnist_form_takes_the_full_path(mnist):
    digit = mnist.test_images[0]
    small = np.asarray(Image.fromarray(digit).resize((20, 20)))  # ink 14 px: not fitted to 20
    small_in_28 = np.zeros_like(digit)
    small_in_28[4:24, 4:24] = small
    speck = digit.copy()
    speck[0, 0] = 255  # ink box now from the corner
    others = [
        np.roll(digit, 3, axis=1),          # centre of mass 3 px off
        255 - digit,                        # black on white
        small_in_28,
        speck,
        np.stack([digit] * 3, -1),          # RGB
        digit.astype(np.float32),           # not 8-bit
        (digit // 2).astype(np.uint8),      # strokes never reach white
        np.pad(digit, 2),                   # 32x32
    ]
    for image in others:
        assert mnist_form(image) is None
        full = find_digit(image)
        reading = read_digit(image)
        assert np.array_equal(reading.image, full.image) and reading.doubts == full.doubts


def test_several_marks_are_doubted_in_mnist_form_too(mnist):
    # Two 1s, each 20 px tall and 8 wide, side by side: MNIST's form, two marks.
    digit = mnist.test_images[2]
    ys, xs = np.nonzero(digit)
    one = np.asarray(Image.fromarray(digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]).resize((8, 20)))
    pair = np.zeros((28, 28), np.uint8)
    pair[4:24, 5:13] = pair[4:24, 15:23] = one
    pair[pair == pair.max()] = 255
    assert mnist_form(pair) is not None
    assert SEVERAL in read_digit(pair).doubts
    assert SEVERAL not in read_digit(mnist.test_images[2]).doubts


@pytest.mark.parametrize("array", [
    np.full((100, 100), 255, np.uint8),             # blank paper
    np.zeros((100, 100, 4), np.uint8),              # empty canvas
    np.full((50, 80, 3), 128, np.uint8),            # grey card
])
def test_no_ink_is_an_error_not_a_guess(array):
    with pytest.raises(ValueError, match="no ink"):
        preprocess(array)


def test_light_noise_is_not_ink():
    rng = np.random.default_rng(0)
    paper = np.full((200, 200), 240, np.float32) + rng.normal(0, 6, (200, 200))
    paper[60:140, 95:105] = 20  # one stroke: a "1"
    out = preprocess(np.clip(paper, 0, 255).astype(np.uint8))
    ys, xs = np.nonzero(out > 64)
    assert np.ptp(ys) + 1 >= 19 and np.ptp(xs) + 1 <= 6  # the stroke, tall and thin, not a noisy square


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: what a decompression bomb looks like to a decoder."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def png_bytes(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, not an image", "not an image this tool reads"),
    (png_bytes(np.full((64, 64), 200, np.uint8))[:60], "cannot decode"),
    (png_bytes(np.zeros((1, 1), np.uint8)), "too small"),
    (png_header_only(20_000, 20_000), "over the limit"),
    (png_header_only(8_000, 6_000), "over the limit"),  # under Pillow's default, over ours
    (b"%PDF-1.4 fake", "not an image this tool reads"),
])
def test_bad_bytes_are_clear_errors(data, message):
    with pytest.raises(ValueError, match=message):
        load_image(data, "upload")


def test_modes_grey_palette_alpha_and_16_bit(mnist):
    digit = 255 - np.asarray(Image.fromarray(mnist.test_images[0]).resize((84, 84)))
    for im in (Image.fromarray(digit), Image.fromarray(digit).convert("P"), Image.fromarray(digit).convert("LA"),
               Image.fromarray(digit.astype(np.uint16) * 257)):
        buf = io.BytesIO()
        im.save(buf, "PNG")
        out = preprocess(load_image(buf.getvalue()))
        assert out.shape == (28, 28) and out.max() == 255


def test_declared_pixels_of_a_png_as_pillow_reads_them(mnist):
    from lenet.reading.image import declared_pixels

    for data in (png_bytes(mnist.test_images[0]), png_bytes(np.zeros((37, 91, 3), np.uint8)),
                 png_header_only(9_000, 9_000)):
        w, h = Image.open(io.BytesIO(data)).size
        assert declared_pixels(data) == w * h
    assert declared_pixels(b"\x89PNG\r\n\x1a\n") == 0  # cut short: Pillow cannot read it either


def test_a_plain_canvas_skips_the_background_estimate_and_finds_the_same_ink(mnist):
    """The shortcut for ink on one exact grey (a canvas export, a clean scan) against the full
    estimate it replaces: the same ink and contrast, dark ink chosen."""
    from lenet.reading import background
    from lenet.reading import ink as ink_module

    rng = np.random.default_rng(3)
    clean_scan = np.full((120, 90), 240, np.uint8)
    clean_scan[20:100, 20:70] = 255 - np.asarray(Image.fromarray(mnist.test_images[5]).resize((50, 80)))
    clean_scan = np.minimum(clean_scan, 240)
    images = [disguise(d, "canvas", rng) for d in mnist.test_images[:6]] + [clean_scan]
    for pixels in images:
        small, _ = background.reduced(ink_module.grey(pixels), ink_module.analysis_side(pixels.shape))
        plain = ink_module.plain_ink(small)
        assert plain is not None
        paper, _, dark_ink, light_ink, reach = background.background(small, ink_module.DARK_MINORITY)
        assert ink_module.dark_is_ink(small, dark_ink, light_ink, reach)
        assert np.allclose(plain[0], dark_ink, atol=1e-6) and np.allclose(plain[1], paper - small, atol=1e-6)
    noisy = (np.clip(0.9 - 0.6 * (disguise(mnist.test_images[0], "canvas", rng)[..., 3] / 255)
                     + rng.normal(0, 0.02, (1, 1)), 0, 1) * 255).astype(np.uint8)
    noisy[0, 0] -= 1                                    # one border pixel off the paper's grey
    assert ink_module.plain_ink(ink_module.grey(noisy)) is None


def test_digit_on_squared_paper_and_tight_crop_read_right():
    """A digit on graph paper (grey grid every 16 px) and the same digit cropped so its ink touches
    every edge are read as the digit."""
    import lenet
    from lenet.data import disguise
    from lenet.data import mnist as datasets

    ds = datasets.load(None, download=False)
    model = lenet.load().model
    rng = np.random.default_rng(3)
    right_grid = right_tight = 0
    picks = rng.choice(len(ds.test_labels), 10, replace=False)
    for digit, label in zip(ds.test_images[picks], ds.test_labels[picks], strict=True):
        ink = disguise.ink_of(digit, 80)
        page = np.zeros((150, 150), np.float32)
        disguise.paste(page, ink, 35, (150 - ink.shape[1]) // 2)
        paper = 0.92 - 0.8 * page
        grid = np.zeros_like(page, bool)
        grid[5::16] = grid[:, 5::16] = True
        on_grid = np.where(grid, np.minimum(paper, 0.65), paper)
        tight = 0.9 - 0.8 * ink
        for image, name in ((on_grid, "grid"), (tight, "tight")):
            reading = read_digit((image * 255).astype(np.uint8))
            right = int(model.probabilities(reading.image[None])[0].argmax() == label)
            right_grid += right * (name == "grid")
            right_tight += right * (name == "tight")
    assert right_grid >= 9, right_grid
    assert right_tight >= 9, right_tight


@pytest.mark.parametrize("spng", [True, False])
def test_quick_decoding_gives_pillows_pixels(monkeypatch, spng):
    """libspng (a plain PNG, from its header, when pyspng is installed) or OpenCV decodes the plainest files;
    every file gives the pixels Pillow gives (the files they may not take, Pillow decodes), and a
    truncated JPEG or PNG is still an error."""
    from lenet.reading import image

    by_spng = []
    if spng:
        pytest.importorskip("pyspng")
        spng_decode = image.spng_decode
        monkeypatch.setattr(image, "spng_decode", lambda data: by_spng.append(spng_decode(data)) or by_spng[-1])
    else:
        monkeypatch.setattr(image, "spng_decode", lambda data: None)

    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated a quarter turn

    def encoded(im: Image.Image, fmt: str, **options) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **options)
        return buf.getvalue()

    base = Image.fromarray(colour)
    files = {"grey png": encoded(base.convert("L"), "PNG"), "rgb png": encoded(base, "PNG"),
             "rgba png": encoded(base.convert("RGBA"), "PNG"), "jpeg": encoded(base, "JPEG"),
             "progressive jpeg": encoded(base, "JPEG", progressive=True),
             "palette png": encoded(base.convert("P"), "PNG"), "grey+alpha png": encoded(base.convert("LA"), "PNG"),
             "transparent png": encoded(base, "PNG", transparency=(0, 0, 0)),
             "rotated jpeg": encoded(base, "JPEG", exif=exif), "rotated png": encoded(base, "PNG", exif=exif)}
    quick = []
    decode, plain_png = image.quick_decode, image.plain_png
    monkeypatch.setattr(image, "quick_decode", lambda im, data: quick.append(decode(im, data) is not None) or None)
    monkeypatch.setattr(image, "plain_png", lambda data: None)
    pillows = {name: image.decode_image(data) for name, data in files.items()}  # all by Pillow
    assert quick == [True] * 5 + [False] * 5  # the plain five taken by quick_decode, the rest not
    headers = []

    def header(data: bytes):
        headers.append(plain_png(data))
        return headers[-1]

    monkeypatch.setattr(image, "plain_png", header)
    monkeypatch.setattr(image, "quick_decode", decode)
    for name, data in files.items():
        pixels, scale = image.decode_image(data)
        assert np.array_equal(pixels, pillows[name][0]) and pixels.shape == pillows[name][0].shape, name
        assert scale == pillows[name][1]
    # The three plain PNGs read from their header (libspng, or Pillow when it is missing), the rest by Pillow.
    assert [h is not None for h in headers] == [True] * 3 + [False] * 7
    assert sum(p is not None for p in by_spng) == (3 if spng else 0)  # the three plain PNGs, once each
    for name in ("jpeg", "rgba png"):
        with pytest.raises(ValueError, match="cannot decode"):
            image.decode_image(files[name][:len(files[name]) // 2])


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_never_below_the_draft_side():
    """A JPEG over the working side is decoded at 1/2, 1/4 or 1/8 scale (draft mode), its longer
    side kept at DRAFT_SIDE or more (one too small to halve: reduced after decoding), turned by its
    orientation tag, and the scale given back says by how much; one within the working side is whole."""
    from lenet.reading.image import DRAFT_SIDE, WORK_SIDE, decode_image

    def jpeg(width: int, height: int, **options) -> bytes:
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :] * np.ones((height, 1), np.float32)
        buf = io.BytesIO()
        Image.fromarray(ramp.astype(np.uint8)).save(buf, "JPEG", **options)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # rotated a quarter turn
    for (width, height), shape, scale in (((2000, 1500), (750, 1000), 2.0), ((4000, 3000), (750, 1000), 4.0),
                                          ((1900, 900), (758, 1600), 1900 / 1600),
                                          ((1600, 1200), (1200, 1600), 1.0)):
        pixels, given = decode_image(jpeg(width, height))
        assert pixels.shape == shape and given == scale, (width, height)
        assert DRAFT_SIDE <= max(pixels.shape) <= WORK_SIDE
    pixels, given = decode_image(jpeg(2000, 1500, exif=exif))
    assert pixels.shape == (1000, 750) and given == 2.0  # turned: the ramp now runs down
    assert pixels[10, 375] < 60 < 200 < pixels[-10, 375]


SEVEN = [(70, 50), (210, 50), (180, 110), (150, 170), (125, 240)]  # on the page's 280 px pad


def drawn_seven(side: int = 280, width: int = 22) -> np.ndarray:
    """A 7 drawn as the web page's pen draws it: black strokes on transparent pixels."""
    from PIL import ImageDraw

    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    points = [(x * side / 280, y * side / 280) for x, y in SEVEN]
    ImageDraw.Draw(im).line(points, fill=(0, 0, 0, 255), width=width, joint="curve")
    return np.asarray(im)


def test_a_transparent_canvas_takes_the_fast_path_and_an_opaque_rgba_photo_does_not(monkeypatch):
    from lenet.reading.canvas import transparent_canvas

    canvas = drawn_seven()
    assert transparent_canvas(canvas) is not None
    photo = canvas.copy()
    photo[..., :3] = 255 - canvas[..., 3:]  # the same 7, dark on white, saved with opaque alpha
    photo[..., 2] = np.maximum(photo[..., 2], 60)  # blue ink: not the page's grey pad either
    photo[..., 3] = 255
    assert transparent_canvas(photo) is None
    off_edge = canvas.copy()
    off_edge[140, 0, 3] = 255  # ink on the edge: the canvas is not clean all round
    assert transparent_canvas(off_edge) is None
    assert transparent_canvas(canvas[..., [0, 3]]) is not None  # grey + alpha too
    assert transparent_canvas(canvas[..., :3]) is None  # no alpha at all

    read_on_both_paths(monkeypatch, canvas, photo)  # the photo takes the full path


def read_on_both_paths(monkeypatch, fast_input, full_input) -> None:
    """`fast_input` never reaches the full path (find_ink), `full_input` does, and both read alike:
    no doubts, boxes within 2 px."""
    from lenet.reading import digit

    calls = []
    full = digit.find_ink
    monkeypatch.setattr(digit, "find_ink", lambda *a, **k: calls.append(1) or full(*a, **k))
    fast = read_digit(fast_input)
    assert calls == []  # never reached the full path
    slow = read_digit(full_input)
    assert calls  # this one did
    assert fast.doubts == slow.doubts == ()
    assert max(abs(a - b) for a, b in zip(fast.box, slow.box, strict=True)) <= 2, (fast.box, slow.box)


def white_pad(rgba: np.ndarray) -> np.ndarray:
    """`rgba`'s drawing as the page's pad holds it: filled white, the ink as grey strokes, opaque."""
    grey = 255 - rgba[..., 3]
    return np.dstack([grey, grey, grey, np.full_like(grey, 255)])


def test_the_pages_white_pad_takes_the_fast_path_and_scans_and_photos_do_not(monkeypatch):
    from lenet.reading import canvas as canvas_module

    pad = white_pad(drawn_seven())
    ink = canvas_module.white_pad(pad)
    assert ink is not None and np.array_equal(ink, drawn_seven()[..., 3])
    assert canvas_module.white_pad(pad[..., 0]) is not None  # grey (mode L)
    assert canvas_module.white_pad(pad[..., [0, 3]]) is not None  # grey + alpha (mode LA)
    assert canvas_module.white_pad(pad[..., :3]) is not None  # RGB
    photo = pad.copy()
    photo[..., 2] = np.maximum(photo[..., 2], 60)  # blue ink: channels not equal
    noisy = pad[..., :3].astype(int) + np.random.default_rng(0).integers(-2, 3, pad[..., :3].shape)
    photo_like = np.clip(noisy, 0, 255).astype(np.uint8)  # a photo's noise, even on a white edge
    photo_like[0], photo_like[-1], photo_like[:, 0], photo_like[:, -1] = 255, 255, 255, 255
    scan = pad[..., 0].copy()
    scan[scan == 255] = 250  # a grey scan: paper not quite white at the edge
    see_through = pad.copy()
    see_through[100, 100, 3] = 254  # not opaque everywhere
    faint = np.maximum(pad, 140)  # no ink darker than mid grey
    for name, image in {"photo": photo, "photo-like": photo_like, "scan": scan,
                        "see-through": see_through, "faint": faint}.items():
        assert canvas_module.drawn_ink(image) is None, name

    read_on_both_paths(monkeypatch, pad, scan)  # the scan takes the full path


@pytest.mark.parametrize("thickness,grey", [(1, 90), (2, 90), (3, 170)])
def test_a_white_image_with_a_ruled_line_short_of_its_edge_takes_the_full_path(model, thickness, grey):
    """A saturated white scan with a ruled line that stops short of the edge: the canvas path takes
    no lines out, so the line would join the digit; the full path removes it."""
    from lenet.reading.canvas import white_pad as pad_ink

    pad = white_pad(drawn_seven())
    pad[246:246 + thickness, 15:265, :3] = np.minimum(pad[246:246 + thickness, 15:265, :3], grey)
    assert pad_ink(pad) is None
    across = white_pad(drawn_seven()).transpose(1, 0, 2).copy()  # and a column ruled down the page
    across[15:265, 30:30 + thickness, :3] = np.minimum(across[15:265, 30:30 + thickness, :3], grey)
    assert pad_ink(across) is None
    assert pad_ink(pad[20:260].copy()) is None  # an image taller than wide, or wider than tall, too
    assert pad_ink(across[:, 20:260].copy()) is None
    reading = read_digit(pad)
    assert model.probabilities(reading.image[None]).argmax(1)[0] == 7
    assert reading.box.bottom <= 246, reading.box  # the line is not part of the digit


@pytest.mark.parametrize("side,width", [(280, 22), (280, 6), (200, 40)])
def test_the_fast_path_reads_a_drawn_white_pad_digit_right(model, side, width):
    from lenet.reading.canvas import RULE_REACH
    from lenet.reading.canvas import white_pad as pad_ink

    pixels = white_pad(drawn_seven(side, width))
    # A fine pen's long bar looks like a line to the pad's check: that 7 takes the full path.
    assert (pad_ink(pixels) is not None) == (width > 2 * RULE_REACH)
    reading = read_digit(load_image(png_bytes(pixels)))
    assert model.probabilities(reading.image[None]).argmax(1)[0] == 7
    left, top, _, bottom = (v * 280 / side for v in reading.box)
    assert abs(left - 70) <= width and abs(top - 50) <= width and abs(bottom - 240) <= width, reading.box


@pytest.mark.parametrize("side,width", [(280, 22), (280, 6), (200, 40)])
def test_the_fast_path_reads_a_drawn_digit_right(model, side, width):
    pixels = drawn_seven(side, width)
    reading = read_digit(load_image(png_bytes(pixels)))
    assert model.probabilities(reading.image[None]).argmax(1)[0] == 7
    left, top, _, bottom = (v * 280 / side for v in reading.box)
    assert abs(left - 70) <= width and abs(top - 50) <= width and abs(bottom - 240) <= width, reading.box
    assert reading.image.max() == 255 and reading.image[:4].max() == 0  # fitted to MNIST's box


def test_a_white_image_with_a_form_box_round_a_small_digit_takes_the_full_path(model):
    """A printed box or underline shorter than the image on exactly white paper: the canvas path
    takes no form lines out, so the box would be read as the digit; the full path removes it."""
    import cv2

    from lenet.reading.canvas import white_pad as pad_ink

    page = np.full((300, 300), 255, np.uint8)
    cv2.rectangle(page, (100, 100), (200, 200), 0, 2)
    cv2.line(page, (150, 118), (150, 182), 0, 7)  # a 1 inside it
    assert pad_ink(page) is None
    reading = read_digit(page)
    assert reading.box.left > 130 and reading.box.right < 170, reading.box  # the 1, not the frame
    underlined = np.full((300, 300), 255, np.uint8)
    cv2.line(underlined, (150, 60), (150, 200), 0, 9)
    cv2.line(underlined, (90, 215), (210, 215), 0, 2)
    assert pad_ink(underlined) is None


def test_fit_box_resamples_as_pillows_lanczos_does():
    """fit_box's two products give what Pillow's LANCZOS resize of a float image gave (the step they
    replaced), to float32 rounding, for crops of the shapes a digit's can take: reduced, enlarged,
    already BOX on a side, one pixel."""
    from PIL import Image

    from lenet.reading.digit import BOX, fit_box

    rng = np.random.default_rng(0)
    shapes = [(1, 1), (1, 30), (5, 3), (BOX, BOX), (BOX, 7), (19, 25), (144, 116), (280, 40), (383, 200)]
    shapes += [tuple(int(v) for v in rng.integers(1, 300, 2)) for _ in range(40)]
    for height, width in shapes:
        crop = (rng.random((height, width)) * (rng.random((height, width)) > 0.4)).astype(np.float32)
        crop[height // 2, width // 2] = 1.0  # some ink
        scale = BOX / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        im = Image.frombuffer("F", (width, height), crop, "raw", "F", 0, 1).resize(size, Image.Resampling.LANCZOS)
        expected = np.maximum(np.asarray(im), 0)
        expected = expected / expected.max()
        got = fit_box(crop)
        assert got.shape == expected.shape and got.dtype == np.float32, (height, width)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=f"{height}x{width}")


def test_a_damaged_png_is_refused_with_or_without_libspng():
    from lenet.errors import ImageError
    from lenet.reading.image import chunks_intact

    digit = np.full((100, 100), 255, np.uint8)
    digit[20:80, 45:55] = 0
    data = bytearray(png_bytes(digit))
    assert chunks_intact(bytes(data))
    at = data.index(b"IDAT") + 10  # inside the image data
    data[at] ^= 0x10
    assert not chunks_intact(bytes(data))
    with pytest.raises(ImageError):
        load_image(bytes(data))


def test_a_long_thin_jpeg_is_not_drafted_below_its_working_size():
    from lenet.reading.image import draft_size

    assert draft_size(2000, 1500) == (1000, 750)  # a phone photo: decoded at half scale
    strip = np.full((20, 4000), 255, np.uint8)
    strip[4:16, 1990:1998] = 0
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, "JPEG")
    assert load_image(buf.getvalue()).shape == (8, 1600)  # as the same pixels in a PNG
