"""What the reader answers: one digit (`Prediction`), a row of digits (`NumberReading`), and one
input file's entry (`FileReading`). Each is built once, where the image is read
(lenet.reading.predict), and given unchanged by `lenet predict`, the Python API and the server,
which write its `to_json()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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

    def text(self) -> str:
        """The line `lenet predict` prints."""
        read = self.read
        if read is None:
            return f"{self.file}: error: {self.error}"
        if isinstance(read, NumberReading):
            text = f"{self.file}: {read.number} (" + " ".join(f"{d.probability:.2f}" for d in read.digits) + ")"
            if any(d.top for d in read.digits):
                text += "  " + " | ".join(", ".join(f"{digit} ({p:.2f})" for digit, p in d.top) for d in read.digits)
            doubts = [f"digit {i + 1}: {'; '.join(d.doubts)}" for i, d in enumerate(read.digits) if d.unsure]
            return text + (f"  unsure: {' | '.join(doubts)}" if doubts else "")
        if read.top:
            text = f"{self.file}: " + ", ".join(f"{digit} ({p:.4f})" for digit, p in read.top)
        else:
            text = f"{self.file}: {read.digit} ({read.probability:.4f})"
        return text + (f"  unsure: {'; '.join(read.doubts)}" if read.unsure else "")

    def seen(self) -> list[tuple[str, np.ndarray]]:
        """(the name it is saved under, without .png; the 28x28) of each image the network saw:
        <file's stem>, or for a number one per digit, <stem>-d1, <stem>-d2, ..."""
        stem = Path(self.file).stem
        if isinstance(self.read, NumberReading):
            return [(f"{stem}-d{i + 1}", d.seen) for i, d in enumerate(self.read.digits)]
        return [(stem, self.read.seen)] if self.read is not None else []
