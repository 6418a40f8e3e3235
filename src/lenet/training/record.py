"""What a training run records beside the weights: the metrics CSV, the versions, the weights' digest."""

from __future__ import annotations

import csv
import hashlib
import io
import platform
from pathlib import Path

import numpy as np
import torch

from lenet import __version__
from lenet.files import write_text_atomic


def versions() -> dict:
    return {"lenet": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second", "lr"]
    # raw_*: the weights themselves beside their moving average (--ema); test_*: test_each_epoch
    for extra in ("raw_val_accuracy", "test_accuracy", "raw_test_accuracy"):
        if history and extra in history[0]:
            cols.append(extra)
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    write_text_atomic(path, buf.getvalue())


def weights_digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
