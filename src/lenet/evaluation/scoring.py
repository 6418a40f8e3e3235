"""Score saved models on the test set, alone and as an ensemble (averaged probabilities)."""

from __future__ import annotations

import numpy as np

from lenet.errors import DataError


def evaluate_models(paths: list[str], ds, device_name: str = "auto") -> dict:
    """Test-set metrics of each model and, for several, of their averaged probabilities.

    The top-level `accuracy`, `n` and `per_class_accuracy` are the ensemble's
    (or the single model's). Runs on torch when it is installed, else on the
    NumPy forward pass (the inference-only install)."""
    labels = ds.test_labels.astype(np.int64)
    models, total = [], None
    for path in paths:
        probs, config, info = model_probabilities(path, ds, device_name)
        if config.num_classes < ds.num_classes:
            raise DataError(f"{path}: the model knows {config.num_classes} classes, the data has {ds.num_classes}")
        hit = probs.argmax(1) == labels
        loss = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)).mean())
        models.append({"model": str(path), "arch": config.arch, "accuracy": float(hit.mean()), "loss": loss,
                       "recorded": info.get("metrics", {}).get("val_accuracy")})
        total = probs if total is None else total + probs
    probs = total / len(paths)
    pred = probs.argmax(1)
    hit = pred == labels
    cm = confusion_matrix(labels, pred, probs.shape[1])
    per_class = np.diag(cm) / np.maximum(cm.sum(1), 1)  # each class's recall
    from lenet.evaluation.calibration import expected_calibration_error

    return {
        "calibration_error": round(expected_calibration_error(probs, labels), 6),  # ECE, 15 bins
        "accuracy": float(hit.mean()),
        "n": int(len(labels)),
        "correct": int(hit.sum()),
        "per_class_accuracy": [round(float(a), 6) for a in per_class],
        "models": models,
        "ensemble": len(paths) > 1,
        "_probabilities": probs,
        "_labels": labels,
        "_confusion": cm,
    }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, -1)


def model_probabilities(path, ds, device_name: str):
    """(probabilities (N, classes) on the test set, config, info) of one saved model."""
    try:
        import torch
    except ImportError:
        from lenet.nn.numpy_model import NumpyModel
        model = NumpyModel.load(path)
        check_images(path, model.config, ds)
        return model.probabilities(ds.test_images), model.config, model.info

    from lenet.nn.torch_model import load_model
    from lenet.training.loop import Split, resolve_device, score

    device = resolve_device(device_name)
    model, config, info = load_model(path, device)
    check_images(path, config, ds)
    model.to(memory_format=torch.channels_last)  # the layout the CPU convolutions are fastest in
    split = Split.of(ds.test_images, ds.test_labels, "test", device)
    return score(model, split, config, return_probabilities=True)["probabilities"], config, info


def check_images(path, config, ds) -> None:
    if config.image_size != ds.image_shape[0]:
        raise DataError(f"{path}: the model takes {config.image_size}px images, the data has {ds.image_shape}")


def format_table(result: dict) -> str:
    lines = []
    for m in result["models"]:
        lines.append(f"{m['model']}: accuracy {m['accuracy']:.4f} ({m['arch']})")
    if result["ensemble"]:
        lines.append(f"ensemble of {len(result['models'])}: accuracy {result['accuracy']:.4f}")
    lines.append(f"test accuracy {result['accuracy']:.4f} ({result['correct']:,} / {result['n']:,}); "
                 f"expected calibration error {result['calibration_error']:.4f}")
    lines.append("per class: " + "  ".join(f"{i}:{a:.4f}" for i, a in enumerate(result["per_class_accuracy"])))
    return "\n".join(lines)
