"""The part of an image a user points at (`--crop`), and the image with what was read drawn on it
(`--annotate`): both in the coordinates of the image as the user sees it.

`load_image` reduces a large image to its working size; a region given in the file's own pixels
is scaled to that size here, so `--crop` means the same on a photo of any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.errors import ImageError, LenetError, UsageError

MAX_NUMBERED = 10_000  # <name>-2.png ... : names tried before giving up on a crowded folder

@dataclass(frozen=True)
class Region:
    """A rectangle of an image file, in its pixels: left, top, width, height."""
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> Region:
        """`x,y,w,h` as whole numbers: x, y from 0, width and height from 1."""
        parts = text.replace(" ", "").split(",")
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--crop {text!r}: expected x,y,w,h, four whole numbers (left, top, width, height "
                             f"in the image's pixels), e.g. 120,40,300,300") from None
        if x < 0 or y < 0 or w < 1 or h < 1:
            raise UsageError(f"--crop {text!r}: x and y must be at least 0, width and height at least 1")
        return cls(x, y, w, h)

    def within(self, pixels: np.ndarray, size: tuple[int, int], name: str) -> tuple[np.ndarray, tuple[int, int]]:
        """(the region of `pixels`, its top-left corner in `pixels`), where `pixels` is the image of
        `size` (width, height: the file's) as decoded, possibly reduced. An error names the file
        when the region lies outside it."""
        width, height = size
        if self.x >= width or self.y >= height:
            raise ImageError(f"{name}: --crop {self.x},{self.y},{self.w},{self.h} starts outside the "
                             f"{width}x{height} image")
        scale = pixels.shape[1] / width  # the same both ways: a reduction keeps the aspect ratio
        left, top = int(self.x * scale), int(self.y * scale)
        right = min(pixels.shape[1], max(left + 1, round(min(self.x + self.w, width) * scale)))
        bottom = min(pixels.shape[0], max(top + 1, round(min(self.y + self.h, height) * scale)))
        return pixels[top:bottom, left:right], (left, top)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file as shown: after its EXIF orientation, as load_image turns it."""
    from PIL import Image

    from lenet.reading.image import FORMATS

    with Image.open(path, formats=FORMATS) as im:
        width, height = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated a quarter turn
            return height, width
    return width, height


def load_region(path: str | Path, region: Region | None) -> tuple[np.ndarray, tuple[int, int], float]:
    """(the pixels to read, their top-left corner in the image as decoded, the scale decoding
    reduced it by): the whole image, or the `region` of it."""
    from lenet.reading.image import decode_image

    pixels, scale = decode_image(path)
    if region is None:
        return pixels, (0, 0), scale
    crop, corner = region.within(pixels, image_size(path), str(path))
    return crop, corner, scale


def shifted(box, corner: tuple[int, int], scale: float = 1.0) -> list[int]:
    """A box (left, top, right, bottom) found in a region of the decoded image, in the coordinates
    of the whole image as given."""
    left, top, right, bottom = box
    x, y = corner
    return [round((left + x) * scale), round((top + y) * scale), round((right + x) * scale),
            round((bottom + y) * scale)]


def annotated(pixels: np.ndarray, marks: list[tuple[list[int], str, bool]], region=None):
    """The image as an RGB PIL image with each (box, text, unsure) drawn on it: the box in green
    (orange when unsure), the text above it (below, at the top edge); the region read, when one
    was given, as a thin blue frame."""
    from PIL import Image, ImageDraw, ImageFont

    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] in (2, 4):  # transparency over white, as a viewer shows it
        alpha = a[..., -1:].astype(np.float32) / 255
        a = (a[..., :-1] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    image = Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a).convert("RGB")
    draw = ImageDraw.Draw(image)
    side = max(image.size)
    line = max(2, side // 300)
    try:
        font = ImageFont.load_default(size=max(12, side // 25))
    except TypeError:  # Pillow 10.0: one small bitmap font, no size
        font = ImageFont.load_default()
    if region is not None:
        draw.rectangle(region, outline=(40, 110, 255), width=max(1, line // 2))
    for (x, y, right, bottom), text, unsure in marks:
        w, h = right - x, bottom - y
        colour = (255, 150, 0) if unsure else (0, 200, 60)
        draw.rectangle((x - line, y - line, x + w + line - 1, y + h + line - 1), outline=colour, width=line)
        t_left, t_top, t_right, t_bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = t_right - t_left, t_bottom - t_top
        ty = y - line - th - 2 * line if y - line - th - 2 * line >= 0 else min(y + h + line, image.height - th)
        draw.rectangle((x - line, ty - line, x - line + tw + 2 * line, ty + th + line), fill=colour)
        draw.text((x, ty - t_top), text, fill=(0, 0, 0), font=font)
    return image


def write_annotated(directory: Path, result, region: Region | None) -> Path | None:
    """DIR/<input name>.png: the input with each digit's box and answer drawn (`result`: a
    lenet.reading.prediction.FileReading; None for an error entry). Never overwrites: a name
    already taken gets a number, -2, -3, ..."""
    read = result.read
    if read is None:
        return None
    path = Path(result.file)
    from lenet.reading.image import decode_image

    pixels, scale = decode_image(path)  # drawn at its working size: boxes scaled to it
    frame = None
    if region is not None:
        crop, corner = region.within(pixels, image_size(path), str(path))
        frame = (corner[0], corner[1], corner[0] + crop.shape[1] - 1, corner[1] + crop.shape[0] - 1)
    if hasattr(read, "digits"):  # a NumberReading
        marks = [(d.box, str(d.digit), d.unsure) for d in read.digits]
    else:
        marks = [(read.box, f"{read.digit} ({read.probability:.2f})", read.unsure)]
    marks = [([round(v / scale) for v in box], text, unsure) for box, text, unsure in marks]
    image = annotated(pixels, marks, frame)
    for n in range(1, MAX_NUMBERED + 1):
        target = directory / (f"{path.stem}.png" if n == 1 else f"{path.stem}-{n}.png")
        try:
            with open(target, "xb") as f:  # exclusive: fails rather than replace a file
                image.save(f, "PNG")
            return target
        except FileExistsError:
            continue
    raise LenetError(f"{directory}: {path.stem}.png to {path.stem}-{MAX_NUMBERED}.png are all taken; "
                     f"choose an empty --annotate folder")
