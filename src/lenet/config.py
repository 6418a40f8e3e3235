"""Configuration as data: what a model is (`ModelConfig`) apart from how it was trained (`Recipe`).

A saved model carries its `ModelConfig`, so loading it needs no flags. A recipe
is a named, documented set of training hyperparameters; command-line flags
override its fields one by one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

ARCHS = ("lenet5", "seed", "fast")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "onecycle")

# MNIST's training-set pixel statistics after /255 (shared/data/mnist/README.md).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network and feed it: stored with its weights."""
    arch: str = "lenet5"          # one of ARCHS (see model.py)
    activation: str = "sigmoid"   # after C3, C5 and F6 in lenet5 (the text's choice)
    num_classes: int = 10         # from the labels of the training data
    image_size: int = 28          # input height = width, pixels
    # Input contract: x = (pixel * scale - mean) / std, pixel in 0..255, white ink on black.
    scale: float = 1 / 255        # 1.0 feeds raw 0..255 floats (the tutorial's Keras code)
    mean: float = MNIST_MEAN
    std: float = MNIST_STD

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, schedule, batch, epochs, initialisation, augmentation."""
    name: str
    arch: str
    activation: str = "sigmoid"
    standardize: bool = True      # False: the tutorial's raw 0..255 float pixels
    init: str = "xavier"          # "xavier": Glorot-uniform weights, zero biases (Keras's default); "torch"
    optimizer: str = "sgd"
    lr: float = 0.1               # peak learning rate
    momentum: float = 0.0         # SGD momentum
    nesterov: bool = False
    weight_decay: float = 0.0
    batch_size: int = 64          # the tutorial's
    epochs: int = 5
    schedule: str = "constant"    # "onecycle": linear warm-up over 20% of steps, then cosine to 0
    label_smoothing: float = 0.0
    augment: bool = False         # random affine on the batch tensor (augment.py)
    summary: str = ""             # one line for --help and the README

    def model_config(self, num_classes: int = 10, image_size: int = 28) -> ModelConfig:
        if self.standardize:
            return ModelConfig(self.arch, self.activation, num_classes, image_size)
        return ModelConfig(self.arch, self.activation, num_classes, image_size, scale=1.0, mean=0.0, std=1.0)

    def override(self, **changes) -> "Recipe":
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES = {
    "tutorial": Recipe(
        "tutorial", "seed", standardize=False, optimizer="sgd", lr=0.1, batch_size=64, epochs=5,
        summary="the tutorial's Keras code: seed network, raw 0..255 pixels, Glorot init, SGD 0.1, batch 64"),
    "lenet5": Recipe(
        "lenet5", "lenet5", activation="sigmoid", optimizer="sgd", lr=0.1, momentum=0.9, batch_size=64, epochs=20,
        schedule="onecycle", augment=True,
        summary="the text's LeNet-5 (sigmoid): standardised pixels, Xavier init, SGD 0.1 with momentum 0.9, "
                "one-cycle, augmentation, 20 epochs"),
    "fast": Recipe(
        "fast", "fast", activation="relu", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, batch_size=128, epochs=2, schedule="onecycle", label_smoothing=0.1,
        summary="a ReLU LeNet with batch norm, 2 epochs of one-cycle Nesterov SGD: 99% in about 20 s"),
    "best": Recipe(
        "best", "fast", activation="relu", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, batch_size=128, epochs=30, schedule="onecycle", label_smoothing=0.1, augment=True,
        summary="the fast network with random-affine augmentation, 30 epochs one-cycle"),
}
DEFAULT_RECIPE = {"lenet5": "lenet5", "seed": "tutorial", "fast": "fast"}
