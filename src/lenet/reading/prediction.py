"""What the reader answers: one digit (`Prediction`), a row of digits (`NumberReading`), and one
input file's entry (`FileReading`). Each is built once, where the image is read
(lenet.reading.predict), and given unchanged by `lenet predict`, the Python API and the server,
which write its `to_json()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lenet.reading.morphology import Box


@dataclass(frozen=True)
class Prediction:
    """What the network made of one image, or of one digit of a number."""
    digit: int
    probability: float                # of `digit`, rounded to 6 places as every probability here
    probabilities: tuple[float, ...]  # one per class (empty for the digits of a number)
    seen: np.ndarray = field(repr=False, compare=False)  # the 28x28 uint8 the network saw (white ink on black)
    box: Box                          # the digit's ink in the image as given
    unsure: bool = False              # a reason below says not to trust the answer
    doubts: tuple[str, ...] = ()      # why: several marks, faint, small, at the border, low probability
    top: tuple[tuple[int, float], ...] = ()  # the k likeliest (digit, probability) when k > 1 was asked

    def to_json(self) -> dict:
        """As `lenet predict --json` and POST /predict write it (without the file)."""
        out: dict[str, object] = {"digit": self.digit, "probability": self.probability}
        if self.probabilities:
            out["probabilities"] = list(self.probabilities)
        if self.top:
            out["top"] = [{"digit": d, "probability": p} for d, p in self.top]
        return {**out, "unsure": self.unsure, "doubts": list(self.doubts), "box": list(self.box)}


@dataclass(frozen=True)
class NumberReading:
    """A row of digits read left to right: the number as text (with a leading minus and a decimal
    point or comma where the row has them) and one Prediction per digit."""
    number: str
    digits: tuple[Prediction, ...]

    @property
    def unsure(self) -> bool:
        """Whether any digit (or any cut between them) is in doubt: see each digit's doubts."""
        return any(d.unsure for d in self.digits)

    @property
    def boxes(self) -> list[Box]:
        return [d.box for d in self.digits]

    def to_json(self) -> dict:
        """As `lenet predict --number --json` and POST /predict/number write it (without the file)."""
        return {"number": self.number, "digits": [d.to_json() for d in self.digits], "unsure": self.unsure}


@dataclass(frozen=True)
class FileReading:
    """One input file's entry in `lenet predict`: what was read in it, or why it could not be."""
    file: str
    read: Prediction | NumberReading | None = None
    error: str | None = None          # the message, when the file could not be read

    def __post_init__(self):
        if (self.read is None) == (self.error is None):
            raise ValueError("a FileReading holds either what was read or an error")  # a bug, not bad input

    def to_json(self) -> dict:
        if self.read is None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, **self.read.to_json()}
