"""The Python API: what the `lenet` command does, as functions a notebook can call.

    import lenet

    clf = lenet.load()                          # the bundled model; or lenet.load("runs/fast")
    p = clf.predict("digit.png")                # also bytes, a PIL image or a NumPy array
    print(p.digit, p.probability, p.to_json())
    several = clf.predict_many(["a.png", "b.png"])  # one Prediction each
    row = clf.read_number("row.png")            # a NumberReading: row.number, row.digits (Predictions)

    result = lenet.train("fast", data_dir="data/MNIST", out="runs/fast", epochs=1)
    print(result.accuracy, result.model_path)
    print(lenet.evaluate(result.model_path).accuracy)

`load` and `Classifier.predict` run on NumPy alone, like `lenet predict`; `train`
and `evaluate` import torch when called. Arguments are checked by the library
functions underneath, so the API and the command give the same errors: every
bad input (a file that is not an image, pixels that are not finite numbers, an
empty list, an `out` that is a file) raises ValueError with the command's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet.errors import ImageError, UsageError
from lenet.evaluation.scoring import Evaluation, evaluate_models
from lenet.nn.numpy_model import NumpyModel
from lenet.reading.digit import read_digit
from lenet.reading.image import decode_image
from lenet.reading.predict import judge_readings, read_digits
from lenet.reading.prediction import NumberReading, Prediction


class Classifier:
    """A saved model, ready to read digits. Build it with `lenet.load`."""

    def __init__(self, model: NumpyModel):
        self.model = model

    @property
    def config(self):
        """The model's ModelConfig: architecture, classes, input normalisation."""
        return self.model.config

    @property
    def info(self) -> dict:
        """What the model file records: recipe, command, metrics per epoch, versions."""
        return self.model.info

    def predict(self, x) -> Prediction:
        """The digit in `x`: a file path, the file's bytes, a PIL image, or a NumPy array (H, W) grey
        or (H, W, C) colour (uint8, or floats 0..255 or 0..1 as lenet.reading.values says), of any
        size, dark ink on light paper or the reverse. The image is prepared as MNIST was
        (lenet.reading) before the network sees it. An image that holds no digit, or cannot be read
        (pixels that are not numbers, or NaN or infinite), raises ValueError. Several images:
        `predict_many`."""
        if isinstance(x, (list, tuple)):
            raise UsageError("predict takes one image; predict_many takes a list of them")
        return self.predict_many([x])[0]

    def predict_many(self, images) -> list[Prediction]:
        """One Prediction per image of the non-empty list `images` (each any input `predict` takes),
        in order, the network run once over them all."""
        if not isinstance(images, (list, tuple)) or not images:
            raise ImageError("no images given: predict_many takes a non-empty list of images")
        return judge_readings(self.model, [read_digit(*pixels_of(item)) for item in images])

    def read_number(self, x) -> NumberReading:
        """The row of digits in `x` (any input `predict` takes), left to right: a NumberReading, the
        number as text and one Prediction per digit, as `lenet predict --number` reads it. Unsure
        where any digit is (see each Prediction's doubts)."""
        pixels, scale = pixels_of(x)
        return read_digits(self.model, pixels, scale=scale)

    def add_sample(self, image, label: int, samples: str | Path | None = None) -> Path:
        """Keep `image` (any input `predict` takes) as a sample of `label` in the samples folder
        (None: the user data folder's, as `lenet serve --learn` keeps it), the 28x28 read as
        `predict` reads it; `lenet.teach(samples)` then learns from them. Returns the 28x28's path."""
        from lenet.data.samples import add_sample, default_dir

        pixels, _ = pixels_of(image)  # the scale: a sample keeps no box
        return add_sample(samples or default_dir(), pixels, read_digit(pixels).image, label,
                          self.config.num_classes, source="api")

    def __repr__(self) -> str:
        c = self.config
        accuracy = self.info.get("metrics", {}).get("val_accuracy")
        validation = self.info.get("validation", "validation")
        return f"Classifier({c.arch}, {c.num_classes} classes, {validation} accuracy {accuracy})"


def pixels_of(x) -> tuple[np.ndarray, float]:
    """An image given any way the API takes it, as a pixel array, and the scale the decoder reduced
    it by (so boxes are in the coordinates of the image as given)."""
    if isinstance(x, (str, Path)):
        return decode_image(x)
    if isinstance(x, (bytes, bytearray)):
        return decode_image(bytes(x))
    if hasattr(x, "mode") and hasattr(x, "size"):  # a PIL image
        from lenet.reading.image import to_array_mode
        return np.asarray(to_array_mode(x)), 1.0
    if isinstance(x, np.ndarray):
        from lenet.reading.values import as_uint8
        return as_uint8(x), 1.0  # floats 0..1 or 0..255, as the server reads them
    raise ImageError(f"cannot read a digit from a {type(x).__name__}: give a path, bytes, a PIL image or "
                     f"a NumPy array")


def load(model: str | Path | None = None) -> Classifier:
    """A classifier from a saved model: an output folder or a .safetensors file; None: the bundled model."""
    from lenet.pretrained import bundled_model_path

    return Classifier(NumpyModel.load(model or bundled_model_path()))


@dataclass
class TrainResult:
    """What `lenet.train` produced."""
    model_path: Path         # the saved model (load it with lenet.load)
    history: list[dict]      # one row per epoch: train/val loss and accuracy, seconds, images/s, lr
    info: dict = field(repr=False)  # everything the model file records

    @property
    def accuracy(self) -> float:
        """Validation accuracy after the last epoch (the test set unless `holdout` was given)."""
        return self.history[-1]["val_accuracy"]


RUN_SETTINGS = {"seed": 0, "subset": None, "holdout": 0, "resume": False, "log_every": 50, "progress": True,
                "plots": True, "snapshots": False}  # lenet.train's run settings besides the recipe, and their defaults


def train(recipe: str = "lenet5", data_dir: str | Path | None = None, out: str | Path = "output", *,
          device: str = "auto", **settings) -> TrainResult:
    """Train as `lenet train` does, with a progress bar that works in a notebook and a terminal.

    `recipe` names a recipe (lenet.config.RECIPES: tutorial, lenet5, fast, best); `settings` are the
    run's (RUN_SETTINGS: seed, subset, holdout, resume, log_every, progress, plots, snapshots) and
    changes to the recipe's fields: arch, activation, lr, momentum, epochs, batch_size, augment, ...
    (the flags of `lenet train`, with underscores). Ctrl-C (a notebook's interrupt too) stops after
    the current batch with a resumable checkpoint in `out`: train(..., resume=True) continues."""
    from lenet.config import RECIPES, Recipe
    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import resolve_device
    from lenet.files import check_writable_dir
    from lenet.training.distributed import Dist
    from lenet.training.run import RunOptions, train_on

    run = {**RUN_SETTINGS, **{k: v for k, v in settings.items() if k in RUN_SETTINGS}}
    overrides = {k: v for k, v in settings.items() if k not in RUN_SETTINGS}
    knobs = {f.name for f in Recipe.knobs()}
    unknown = sorted(set(overrides) - knobs)
    if unknown:
        raise UsageError(f"unknown training settings {unknown}; the run's are: {', '.join(RUN_SETTINGS)}; "
                         f"the recipe's: {', '.join(sorted(knobs))}")
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    chosen = None if run["resume"] else RECIPES[recipe].override(**overrides)  # checks every value
    if run["resume"] and data_dir is None:
        from lenet.training.checkpoint import CHECKPOINT_FILE, recorded_data_dir
        data_dir = recorded_data_dir(Path(out) / CHECKPOINT_FILE)
    dist = Dist(device=resolve_device(device))
    check_writable_dir(out, "--out")  # now, not after the training, as the command does
    ds = datasets.load(data_dir)
    options = RunOptions(**run, epochs=overrides.get("epochs") if run["resume"] else None,
                         command=f"lenet.train({recipe!r}, ...)")
    info = train_on(ds, chosen, out, options, dist=dist)
    return TrainResult(Path(out) / "model.safetensors", info["history"], info)


def teach(samples: str | Path | None = None, model: str | Path | None = None, out: str | Path | None = None, *,
          data_dir: str | Path | None = None, steps: int | None = None, seed: int = 0) -> TrainResult:
    """Fine-tune `model` (None: the bundled one) on the samples folder `samples` (None: the user data
    folder's) as `lenet teach` does, MNIST replayed; the new model goes to `out` (None: the samples
    folder's model.safetensors). history[-1]["val_accuracy"] is its MNIST test accuracy; its card
    (info["teach"]) has the samples per label and the accuracy before."""
    from lenet.data import mnist as datasets
    from lenet.data.samples import MODEL, default_dir
    from lenet.pretrained import bundled_model_path
    from lenet.training.teach import Teaching
    from lenet.training.teach import teach as teach_on

    samples = Path(samples) if samples is not None else default_dir()
    teaching = Teaching() if steps is None else Teaching(steps=steps)
    info = teach_on(samples, datasets.load(data_dir), model or bundled_model_path(), out, teaching=teaching,
                    seed=seed, command="lenet.teach(...)")
    path = Path(out) if out is not None else samples / MODEL
    return TrainResult(path / MODEL if path.is_dir() else path, info["history"], info)


EvalResult = Evaluation  # what lenet.evaluate returns, under the name it has had


def evaluate(model: str | Path | list | None = None, data_dir: str | Path | None = None,
             device: str = "auto", shifts: int = 0) -> Evaluation:
    """Score a saved model (a list of them: their ensemble) on the test set; None: the bundled model.
    `shifts` 4 or 8: test-time augmentation over one-pixel shifts. Runs on torch when installed,
    else on NumPy."""
    from lenet.data import mnist as datasets
    from lenet.pretrained import bundled_model_path

    paths = [str(p) for p in (model if isinstance(model, (list, tuple)) else [model or bundled_model_path()])]
    return evaluate_models(paths, datasets.load(data_dir), device, shifts)
