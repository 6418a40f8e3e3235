"""Reading people's images: decode them, find the ink, read one digit or a row of digits.

image.py decodes files with bounds; ink.py finds the ink and its marks (canvas.py, on a clean
transparent canvas or white pad); digit.py makes MNIST's 28x28 form of one digit; number.py
reads a row of digits; predict.py runs the network on them.
"""

from lenet.reading.digit import Reading, preprocess, read_digit
from lenet.reading.image import load_image
from lenet.reading.number import read_number

__all__ = ["Reading", "load_image", "preprocess", "read_digit", "read_number"]
