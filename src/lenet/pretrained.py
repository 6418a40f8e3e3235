"""The pretrained model shipped inside the package, so predict and evaluate work without training."""

from __future__ import annotations

from pathlib import Path

from lenet.errors import ModelFileError

BUNDLED = "lenet-best.safetensors"
REJECTOR = "lenet-reject.safetensors"  # 10 digits and "not one digit" (scripts/train_reject.py)


def bundled_model_path() -> Path:
    path = Path(__file__).parent / "weights" / BUNDLED
    if not path.is_file():
        raise ModelFileError(f"the bundled model {path} is missing from this install; pass --model PATH")
    return path


def rejector_path() -> Path:
    path = Path(__file__).parent / "weights" / REJECTOR
    if not path.is_file():
        raise ModelFileError(f"the bundled rejector {path} is missing from this install; reinstall lenet")
    return path
