"""The answers' shapes, as the routes' response models: the OpenAPI schema at /docs. Each mirrors
the `to_json()` of the result it is written from (lenet.reading.prediction); tests/test_serve.py
checks that every answer validates against its model."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictionAnswer(BaseModel):
    """POST /predict: one digit."""
    digit: int
    probability: float = Field(description="of `digit`")
    probabilities: list[float] = Field(description="one per class")
    unsure: bool = Field(description="a reason in `doubts` says not to trust the answer")
    doubts: list[str]
    box: list[int] = Field(description="the digit's ink in the image: left, top, right, bottom (exclusive)")
    preprocessed: list[list[int]] | None = Field(None, description="the 28x28 the network saw, when asked for")


class DigitAnswer(BaseModel):
    """One digit of a number."""
    digit: int
    probability: float
    unsure: bool
    doubts: list[str]
    box: list[int] = Field(description="left, top, right, bottom (exclusive)")


class NumberAnswer(BaseModel):
    """POST /predict/number: a row of digits."""
    number: str = Field(description="the digits left to right, with a leading minus and a decimal point or comma")
    digits: list[DigitAnswer]
    unsure: bool = Field(description="any digit (or cut between them) is in doubt")
    preprocessed: list[list[list[int]]] = Field(description="the 28x28 the network saw, one per digit")


class Kernel(BaseModel):
    of: str
    shape: list[int]
    values: str = Field(description="base64 of uint8")


class Layer(BaseModel):
    name: str
    title: str
    shape: list[int]
    values: str = Field(description="base64 of uint8, C*H*W, each map stretched to 0..255")
    kernel: Kernel | None = None


class ExplainAnswer(BaseModel):
    """POST /explain: the prediction and every layer."""
    digit: int
    probability: float
    probabilities: list[float]
    preprocessed: list[list[int]]
    layers: list[Layer]
    unsure: bool
    doubts: list[str]
    box: list[int]


class BatchEntry(BaseModel):
    """One file of POST /predict/batch: its prediction, or its error and HTTP status."""
    file: str
    digit: int | None = None
    probability: float | None = None
    probabilities: list[float] | None = None
    unsure: bool | None = None
    doubts: list[str] | None = None
    box: list[int] | None = None
    preprocessed: list[list[int]] | None = None
    error: str | None = None
    status: int | None = None


class BatchAnswer(BaseModel):
    results: list[BatchEntry]
