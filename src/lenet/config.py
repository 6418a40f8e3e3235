"""Configuration as data: what a model is (`ModelConfig`) apart from how it was trained (`Recipe`).

A saved model carries its `ModelConfig`, so loading it needs no flags. A recipe
is a named, documented set of training hyperparameters; command-line flags
override its fields one by one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from lenet.errors import ModelFileError, UsageError

ARCHS = ("lenet5", "seed", "fast")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "onecycle")

MAX_CLASSES = 1000  # far above any IDX dataset (EMNIST has 62); bounds what a model file may claim

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
    bn_eps: float = 1e-5          # batch norm's epsilon (fast), torch.nn.BatchNorm2d's default
    # Calibration (calibration.py), fitted on held-out training images: probabilities are
    # softmax(scores / temperature), and an answer below `unsure_below` is flagged unsure.
    temperature: float = 1.0
    unsure_below: float = 0.0

    def __post_init__(self):
        from lenet.nn.network import check_image_size

        _check_choice("model arch", self.arch, ARCHS)
        _check_choice("model activation", self.activation, ACTIVATIONS)
        check_int("model num_classes", self.num_classes, 2, MAX_CLASSES)
        check_int("model image_size", self.image_size, 1, 4096)
        check_image_size(self.arch, self.image_size, self.image_size)
        _check_number("model scale", self.scale, low=0, low_open=True)
        _check_number("model mean", self.mean)
        _check_number("model std", self.std, low=0, low_open=True)
        _check_number("model bn_eps", self.bn_eps, low=0, low_open=True, high=1)
        _check_number("model temperature", self.temperature, low=0.01, high=100)
        _check_number("model unsure_below", self.unsure_below, low=0, high=1, high_open=True)

    def normalize(self, pixels):
        """The input contract, written once: float pixels 0..255 (NumPy or torch) -> network input."""
        return (pixels * self.scale - self.mean) / self.std

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        if not isinstance(d, dict):
            raise ModelFileError(f"the model config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelFileError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


INITS = ("xavier", "xavier-gain", "torch")


def knob(default, help: str, choices: tuple | None = None):
    """A recipe field that users may set: its default, its help, its choices."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, schedule, batch, epochs, initialisation, augmentation."""
    # Every field with `knob` is a flag of `lenet train` (--name-with-dashes) and a keyword of
    # lenet.train(); its help is the flag's.
    name: str
    arch: str = knob("lenet5", "network", ARCHS)
    activation: str = knob("sigmoid", "after C3, C5, F6 of lenet5", ACTIVATIONS)
    standardize: bool = knob(True, "standardise pixels with MNIST's mean and std; off: the tutorial's raw 0..255")
    init: str = knob("xavier", "xavier: Glorot-uniform weights, zero biases (Keras's default); xavier-gain: "
                               "the same, x4 for sigmoid (Glorot & Bengio 2010); torch: PyTorch's default", INITS)
    optimizer: str = knob("sgd", "optimizer", OPTIMIZERS)
    lr: float = knob(0.1, "(peak) learning rate")
    momentum: float = knob(0.0, "SGD momentum")
    beta1: float = knob(0.9, "Adam's decay of its gradient average (its momentum)")
    beta2: float = knob(0.999, "Adam's decay of its squared-gradient average")
    nesterov: bool = knob(False, "Nesterov momentum")
    weight_decay: float = knob(0.0, "L2 on weights, not biases")
    batch_size: int = knob(64, "images per step (the global batch under torchrun)")
    epochs: int = knob(5, "epochs to train")
    schedule: str = knob("constant", "learning-rate schedule; onecycle: linear warm-up over --warmup of the "
                                     "steps, then cosine to 0", SCHEDULES)
    warmup: float = knob(0.2, "fraction of the steps the one-cycle warm-up takes")
    label_smoothing: float = knob(0.0, "label smoothing of the cross-entropy")
    augment: bool = knob(False, "random affine and elastic distortion of each batch (augment.py)")
    roughen: bool = knob(False, "vary pen width, resolution, blur and noise in each batch (augment.roughen)")
    printed: float = knob(0.0, "fraction of the training set added as printed digits rendered from the fonts "
                               "matplotlib ships (fonts.py)")
    ema: float = knob(0.0, "decay per step of an exponential moving average of the weights and batch-norm "
                           "statistics (it spans about 1/(1 - decay) steps), which each epoch's validation "
                           "scores and the run saves; 0: off")
    summary: str = ""             # one line for --help and the README

    def __post_init__(self):
        # Checked here, not in the CLI, so fit() from Python refuses what `lenet train` refuses.
        _check_choice(flag("arch"), self.arch, ARCHS)
        _check_choice(flag("activation"), self.activation, ACTIVATIONS)
        _check_choice(flag("init"), self.init, INITS)
        _check_choice(flag("optimizer"), self.optimizer, OPTIMIZERS)
        _check_choice(flag("schedule"), self.schedule, SCHEDULES)
        _check_number(flag("lr"), self.lr, low=0, low_open=True, high=MAX_LR)
        _check_number(flag("momentum"), self.momentum, low=0, high=1, high_open=True)
        _check_number(flag("beta1"), self.beta1, low=0, high=1, high_open=True)
        _check_number(flag("beta2"), self.beta2, low=0, high=1, high_open=True)
        _check_number(flag("weight_decay"), self.weight_decay, low=0, high=1, high_open=True)
        _check_number(flag("label_smoothing"), self.label_smoothing, low=0, high=1, high_open=True)
        _check_number(flag("warmup"), self.warmup, low=0, high=1, high_open=True)
        _check_number(flag("printed"), self.printed, low=0, high=1)
        _check_number(flag("ema"), self.ema, low=0, high=1, high_open=True)
        check_int(flag("batch_size"), self.batch_size, 1, 65536)
        check_int(flag("epochs"), self.epochs, 1, 10000)
        for name in ("standardize", "nesterov", "augment", "roughen"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{flag(name)} must be true or false, got {getattr(self, name)!r}")

    def model_config(self, num_classes: int = 10, image_size: int = 28) -> ModelConfig:
        if self.standardize:
            return ModelConfig(self.arch, self.activation, num_classes, image_size)
        return ModelConfig(self.arch, self.activation, num_classes, image_size, scale=1.0, mean=0.0, std=1.0)

    def override(self, **changes) -> Recipe:
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def knobs(cls) -> list:
        """The fields users may set (see `knob`)."""
        return [f for f in fields(cls) if "help" in f.metadata]


MAX_LR = 10.0  # far above any rate that trains these networks; 1e6 only makes NaN


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_choice(label: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{label} must be one of {', '.join(choices)}; got {value!r}")


def check_int(label: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{label} must be a whole number from {low:,} to {high:,}; got {value!r}")


def _check_number(label: str, value, low: float | None = None, high: float | None = None,
                  low_open: bool = False, high_open: bool = False) -> None:
    """A finite number within [low, high] (an open end where asked); else a ValueError naming the flag."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        rule = " and ".join(r for r in (lo, hi) if r)
        raise UsageError(f"{label} must be a finite number{' ' + rule if rule else ''}; got {value!r}")


RECIPES = {
    "tutorial": Recipe(
        "tutorial", "seed", standardize=False, optimizer="sgd", lr=0.1, batch_size=64, epochs=5,
        summary="the tutorial's Keras code: seed network, raw 0..255 pixels, Glorot init, SGD 0.1, batch 64"),
    "lenet5": Recipe(
        "lenet5", "lenet5", activation="sigmoid", init="xavier-gain", optimizer="sgd", lr=0.1, momentum=0.9,
        batch_size=64, epochs=20, schedule="onecycle", warmup=0.05, augment=True,
        summary="the text's LeNet-5 (sigmoid): standardised pixels, Xavier init with sigmoid's gain, SGD 0.1 with "
                "momentum 0.9, one-cycle (1 epoch warm-up), augmentation, 20 epochs"),
    "fast": Recipe(
        "fast", "fast", activation="relu", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, batch_size=128, epochs=1, schedule="onecycle", label_smoothing=0.1,
        summary="a ReLU LeNet with batch norm, 1 epoch of one-cycle Nesterov SGD: "
                "99.2% in one epoch (docs/speed.md: how long)"),
    # tuomaso/train_mnist_fast's optimizer and batch: the holdout's choice over fast's SGD (docs/speed.md: its speed).
    "fast-adam": Recipe(
        "fast-adam", "fast", activation="relu", optimizer="adam", lr=1e-2, beta1=0.7, beta2=0.9,
        batch_size=256, epochs=1, schedule="onecycle", label_smoothing=0.1,
        summary="fast with one-cycle Adam (lr 0.01, betas 0.7 and 0.9) at batch 256: 99.3% in one epoch "
                "(docs/speed.md: how long)"),
    # A fixed schedule (no score stops it), for the time to a mean of 99.5% over 10 seeds (the record).
    "sprint": Recipe(
        "sprint", "fast", activation="relu", optimizer="adam", lr=1e-2, beta1=0.7, beta2=0.9,
        batch_size=256, epochs=8, schedule="onecycle", label_smoothing=0.1, augment=True,
        summary="fast with augmentation (random affine and elastic) over 8 epochs: the time to a mean of 99.5% "
                "over 10 seeds (benchmarks/time_to_99.py)"),
    "best": Recipe(
        "best", "fast", activation="relu", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, batch_size=128, epochs=30, schedule="onecycle", label_smoothing=0.1, augment=True,
        ema=0.999,
        summary="the fast network with random-affine augmentation, 30 epochs one-cycle, scored and saved as the "
                "moving average of its weights"),
    "robust": Recipe(
        "robust", "fast", activation="relu", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, batch_size=128, epochs=30, schedule="onecycle", label_smoothing=0.0, augment=True,
        roughen=True, printed=0.1,
        summary="best, plus pen width, low resolution, blur and noise, and 10% printed digits (the bundled "
                "model); no label smoothing, so a clear digit can reach a probability near 1"),
}
DEFAULT_RECIPE = {"lenet5": "lenet5", "seed": "tutorial", "fast": "fast"}
