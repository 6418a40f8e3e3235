"""Scoring: a torch model over a split (what training validates with), and saved models on the
test set, alone and as an ensemble (averaged probabilities).

torch is imported where it is used, so evaluating runs on the NumPy network where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lenet.errors import DataError, UsageError

if TYPE_CHECKING:
    import torch

    from lenet.config import ModelConfig

EVAL_BATCH = 256  # batches whose activations stay in cache
# Test-time augmentation: each image and its one-pixel shifts, the probabilities averaged over them.
# benchmarks/tta.py chooses among these on a holdout; a figure that uses them says so.
VIEWS = {0: [(0, 0)],
         4: [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)],
         8: [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]}


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, H, W), on the training device
    labels: torch.Tensor  # int64 (N,)
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def of(cls, images: np.ndarray, labels: np.ndarray, name: str, device="cpu") -> Split:
        """From a dataset's uint8 arrays (copied: they are read-only views of the file)."""
        import torch

        return cls(torch.from_numpy(images.copy()).to(device), torch.from_numpy(labels.astype(np.int64)).to(device),
                   name)


def resolve_device(name: str) -> torch.device:
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {name!r}: choose auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    return torch.device(name)


@dataclass(frozen=True)
class Score:
    """A torch model's scores over every image of a split (`score`)."""
    n: int
    loss: float                     # mean cross-entropy
    accuracy: float
    correct: int
    per_class_accuracy: list[float]
    # Each image's answer (N,), and its probabilities (N, classes) when they were asked for: None
    # under torchrun, where each rank saw only its share of the images.
    predictions: np.ndarray | None = field(repr=False, compare=False)
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)


def score(model, split: Split, config: ModelConfig, batch_size: int = EVAL_BATCH,
          return_probabilities: bool = False, dist=None) -> Score:
    """Loss, accuracy and per-class accuracy over every image of `split` (no batch is dropped).
    Under torchrun (`dist`, a lenet.training.distributed.Dist) each rank scores every world-th image
    and the sums are reduced: each image is scored exactly once. Predictions and probabilities are
    single-process only."""
    import torch
    import torch.nn.functional as F

    from lenet.nn.torch_model import normalize

    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    model.eval()
    images, labels = split.images[rank::world], split.labels[rank::world]
    n, num_classes = len(split), config.num_classes
    loss = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    preds, probs = [], []
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            # Channels-last input (and model, see model_probabilities and fit): faster on CPU.
            x = normalize(images[i:i + batch_size], config).contiguous(memory_format=torch.channels_last)
            y = labels[i:i + batch_size]
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").double()
            preds.append(logits.argmax(1))
            if return_probabilities:
                probs.append(torch.softmax(logits.float() / config.temperature, 1))
    pred = torch.cat(preds) if preds else labels[:0]
    hit = pred == labels
    sums = torch.cat([loss.view(1), torch.bincount(labels, minlength=num_classes).double(),
                      torch.bincount(labels[hit], minlength=num_classes).double()])
    if world > 1:
        dist.all_reduce(sums)
    per_class_total, per_class_hit = sums[1:1 + num_classes], sums[1 + num_classes:]
    correct = int(per_class_hit.sum())
    return Score(n, float(sums[0]) / n, correct / n, correct, (per_class_hit / per_class_total.clamp(min=1)).tolist(),
                 None if world > 1 else pred.cpu().numpy(),
                 torch.cat(probs).cpu().numpy() if return_probabilities and world == 1 else None)


@dataclass(frozen=True)
class Evaluation:
    """Test-set scores of saved models (`evaluate_models`, `lenet evaluate`, `lenet.evaluate`): the
    top-level figures are the ensemble's (averaged probabilities), or the single model's."""
    accuracy: float
    n: int                          # images scored: every test image
    correct: int
    per_class_accuracy: list[float]  # each class's recall
    calibration_error: float        # expected calibration error, 15 bins
    models: list[dict]              # each model alone: its path, arch, accuracy, loss, recorded accuracy
    probabilities: np.ndarray = field(repr=False, compare=False)  # (n, classes), the ensemble's
    labels: np.ndarray = field(repr=False, compare=False)         # (n,) the test labels
    confusion: np.ndarray = field(repr=False, compare=False)      # counts[true, predicted]
    report: dict | None = None      # the --report's summary, once written (report.write_report)
    shifts: int = 0                 # test-time augmentation: one-pixel shifts averaged in (VIEWS), 0 for none

    @property
    def ensemble(self) -> bool:
        return len(self.models) > 1

    @property
    def per_class(self) -> list[float]:
        """`per_class_accuracy`, by the name lenet.evaluate's result has had."""
        return self.per_class_accuracy

    def to_json(self) -> dict:
        """As `lenet evaluate --json` writes it."""
        out = {"calibration_error": self.calibration_error, "accuracy": self.accuracy, "n": self.n,
               "correct": self.correct, "per_class_accuracy": self.per_class_accuracy, "models": self.models,
               "ensemble": self.ensemble, "shifts": self.shifts}
        return out if self.report is None else {**out, "report": self.report}


def held_out_scores(model, split: Split, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, classes), labels) as NumPy, for calibration."""
    import torch

    from lenet.nn.torch_model import normalize

    model.eval()
    with torch.inference_mode():
        logits = [model(normalize(split.images[i:i + EVAL_BATCH], config)).float().cpu()
                  for i in range(0, len(split), EVAL_BATCH)]
        return torch.cat(logits).numpy(), split.labels.cpu().numpy()


def shifted(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """(N, H, W) images moved by dx columns and dy rows, the background (0) filling in."""
    if dx == dy == 0:
        return images
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def evaluate_models(paths: list[str], ds, device_name: str = "auto", shifts: int = 0) -> Evaluation:
    """Test-set metrics of each model and, for several, of their averaged probabilities.

    The top-level `accuracy`, `n` and `per_class_accuracy` are the ensemble's
    (or the single model's). With `shifts` 4 or 8, each model's probabilities are the mean over
    the image and its one-pixel shifts (test-time augmentation). Runs on torch when it is
    installed, else on the NumPy forward pass (the inference-only install)."""
    if shifts not in VIEWS:
        raise UsageError(f"shifts {shifts}: choose one of {', '.join(map(str, VIEWS))}")
    labels = ds.test_labels.astype(np.int64)
    models: list[dict] = []
    total: np.ndarray | None = None
    for path in paths:
        probs, config, info = model_probabilities(path, ds, device_name, VIEWS[shifts])
        if config.num_classes < ds.num_classes:
            raise DataError(f"{path}: the model knows {config.num_classes} classes, the data has {ds.num_classes}")
        hit = probs.argmax(1) == labels
        loss = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)).mean())
        models.append({"model": str(path), "arch": config.arch, "accuracy": float(hit.mean()), "loss": loss,
                       "recorded": info.get("metrics", {}).get("val_accuracy")})
        total = probs if total is None else total + probs
    if total is None:
        raise UsageError("no model to evaluate")
    probs = total / len(paths)
    pred = probs.argmax(1)
    hit = pred == labels
    cm = confusion_matrix(labels, pred, probs.shape[1])
    per_class = np.diag(cm) / np.maximum(cm.sum(1), 1)  # each class's recall
    from lenet.evaluation.calibration import expected_calibration_error

    return Evaluation(float(hit.mean()), len(labels), int(hit.sum()), [round(float(a), 6) for a in per_class],
                      round(expected_calibration_error(probs, labels), 6), models, probs, labels, cm,
                      shifts=shifts)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, -1)


def model_probabilities(path, ds, device_name: str, views=VIEWS[0]):
    """(probabilities (N, classes) on the test set, the mean over `views` (dx, dy), config, info) of one
    saved model."""
    try:
        import torch
    except ImportError:
        from lenet.nn.numpy_model import NumpyModel
        model = NumpyModel.load(path)
        check_images(path, model.config, ds)
        each = [model.probabilities(shifted(ds.test_images, dx, dy)) for dx, dy in views]
        return np.mean(each, axis=0), model.config, model.info

    from lenet.nn.torch_model import load_model

    device = resolve_device(device_name)
    net, config, info = load_model(path, device)
    check_images(path, config, ds)
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format  # the layout the CPU convolutions are fastest in
    each = []
    for dx, dy in views:
        probs = score(net, Split.of(shifted(ds.test_images, dx, dy), ds.test_labels, "test", device), config,
                      return_probabilities=True).probabilities
        assert probs is not None  # asked for, in one process
        each.append(probs)
    return np.mean(each, axis=0), config, info


def check_images(path, config, ds) -> None:
    if config.image_size != ds.image_shape[0]:
        raise DataError(f"{path}: the model takes {config.image_size}px images, the data has {ds.image_shape}")


def format_table(result: Evaluation) -> str:
    lines = []
    for m in result.models:
        lines.append(f"{m['model']}: accuracy {m['accuracy']:.4f} ({m['arch']})")
    if result.ensemble:
        lines.append(f"ensemble of {len(result.models)}: accuracy {result.accuracy:.4f}")
    if result.shifts:
        lines.append(f"with test-time augmentation: each image and its {result.shifts} one-pixel shifts")
    lines.append(f"test accuracy {result.accuracy:.4f} ({result.correct:,} / {result.n:,}); "
                 f"expected calibration error {result.calibration_error:.4f}")
    lines.append("per class: " + "  ".join(f"{i}:{a:.4f}" for i, a in enumerate(result.per_class_accuracy)))
    return "\n".join(lines)
