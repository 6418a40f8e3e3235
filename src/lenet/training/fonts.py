"""Printed digits rendered from fonts on the machine: what MNIST lacks (a 1 with a flag and a foot,
a 4 closed at the top, a crossed 7, strokes of every weight), for training and for measuring.

Training uses only the fonts matplotlib ships (DejaVu, STIX, Computer Modern): a dependency of
`lenet[train]`, so nothing is downloaded. Each digit is drawn on paper at a random size, weight,
slant and position, then goes through the same preprocessing (`reading.digit.read_digit`) as a
user's image, so the network learns from what it will be shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Font files with the ten digits drawn as digits (cmmi10 has old-style figures, cmsy/cmex none).
MATPLOTLIB_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf",
    "cmti10.ttf",
)


def matplotlib_fonts() -> list[Path]:
    """The font files above, from the installed matplotlib."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / name for name in MATPLOTLIB_FONTS if (folder / name).is_file()]


def draw(digit: int | str, font: Path, rng, height: int = 96, weight: int = 0, crossed: bool = False) -> np.ndarray:
    """One digit (or any character) in `font`, dark on light paper, grey uint8 of about 2 x height square.
    `weight` > 0 thickens the strokes by that many pixels (a heavy print), < 0 thins them."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    side = 2 * height
    face = ImageFont.truetype(str(font), height)
    im = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(im)
    left, top, right, bottom = pen.textbbox((0, 0), str(digit), font=face)
    x = (side - (right - left)) // 2 - left + int(rng.integers(-height // 4, height // 4 + 1))
    y = (side - (bottom - top)) // 2 - top + int(rng.integers(-height // 4, height // 4 + 1))
    pen.text((x, y), str(digit), fill=255, font=face)
    if crossed and digit == 7:
        # The continental 7: a short bar across the middle of the stem.
        drawn = np.asarray(im) > 127
        rows = np.flatnonzero(drawn.any(1))
        mid = (rows[0] + rows[-1]) // 2
        cols = np.flatnonzero(drawn[mid])
        if cols.size:
            centre, half = int(cols.mean()), max(4, (rows[-1] - rows[0]) // 5)
            thick = max(2, (cols[-1] - cols[0] + 1))
            pen.rectangle((centre - half, mid - thick // 2, centre + half, mid + (thick + 1) // 2), fill=255)
    if weight > 0:
        im = im.filter(ImageFilter.MaxFilter(2 * weight + 1))
    elif weight < 0:
        im = im.filter(ImageFilter.MinFilter(-2 * weight + 1))
    ink = np.asarray(im, np.float32) / 255
    paper = 0.92 + rng.normal(0, 0.01, ink.shape)
    return (np.clip(paper - 0.85 * ink, 0, 1) * 255).astype(np.uint8)


def printed_digits(fonts: list[Path], per_font: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8 as the network sees them, labels (N,)): every digit in every font,
    `per_font` times at random sizes and weights (every 7 also crossed once)."""
    from lenet.reading.digit import preprocess

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for font in fonts:
        for digit in range(10):
            for i in range(per_font):
                height = int(rng.integers(40, 120))
                weight = int(float(rng.choice([-1, 0, 0, 1, 2, 3])) * height / 60)
                images.append(preprocess(draw(digit, font, rng, height, weight, crossed=(digit == 7 and i == 0))))
                labels.append(digit)
    return np.stack(images), np.array(labels, np.uint8)
