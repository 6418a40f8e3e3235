"""Scoring a model on a folder of the user's own labelled images (`lenet evaluate DIR`), torch-free.

The layout is torchvision's ImageFolder: one subfolder per class, named by the digit its images
show (DIR/7/x.png), images anywhere below it. Each image goes through the reader, as
`lenet predict` reads it (lenet.reading), so the score is what a user of `predict` would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.errors import DataError


@dataclass(frozen=True)
class FolderScore:
    """How a model read a labelled folder."""
    folder: str
    n: int                        # images, read or not
    correct: int
    confusion: list[list[int]]    # [label][answer] counts over the images that could be read
    mistakes: list[dict]          # file, label, digit, probability, unsure: the most probable first
    unreadable: list[dict]        # file, label, error: no digit found, cannot decode, ...

    @property
    def accuracy(self) -> float:
        """Correct answers over every image: one that could not be read counts as wrong."""
        return self.correct / self.n

    def to_json(self) -> dict:
        return {"folder": self.folder, "n": self.n, "correct": self.correct, "accuracy": self.accuracy,
                "confusion": self.confusion, "mistakes": self.mistakes, "unreadable": self.unreadable}


def labelled_images(folder: Path, num_classes: int) -> list[tuple[Path, int]]:
    """(image, label) for every image under `folder`'s class subfolders, sorted by path. A
    subfolder whose name is not a class of the model is an error, so no image is silently left out."""
    from lenet.reading.inputs import image_files

    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected one subfolder per digit: {folder}/7/x.png)")
    pairs: list[tuple[Path, int]] = []
    strangers: list[str] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (sub.name.isdigit() and int(sub.name) < num_classes):
            strangers.append(sub.name)
            continue
        pairs.extend((path, int(sub.name)) for path in image_files(sub, recursive=True))
    if strangers:
        raise DataError(f"{folder}: subfolders must be named by the class of their images, 0 to "
                         f"{num_classes - 1}; found {', '.join(repr(s) for s in strangers[:5])}")
    if not pairs:
        raise DataError(f"{folder}: no labelled images: put each image in the subfolder of its digit "
                         f"({folder}/7/x.png)")
    return pairs


def score_folder(model, folder: str | Path) -> FolderScore:
    """Read every labelled image under `folder` with `model` (a NumpyModel), as `lenet predict`
    reads them, and score the answers."""
    from lenet.reading.predict import stream_files

    folder = Path(folder)
    pairs = labelled_images(folder, model.config.num_classes)
    paths = [p for p, _ in pairs]
    classes = model.config.num_classes
    confusion = np.zeros((classes, classes), np.int64)
    mistakes, unreadable = [], []
    for (path, label), entry in zip(pairs, stream_files(model, paths), strict=True):
        r = entry.read
        if r is None:
            unreadable.append({"file": str(path), "label": label, "error": entry.error})
            continue
        confusion[label, r.digit] += 1
        if r.digit != label:
            mistakes.append({"file": str(path), "label": label, "digit": r.digit,
                             "probability": r.probability, "unsure": r.unsure})
    mistakes.sort(key=lambda m: -m["probability"])
    return FolderScore(str(folder), len(pairs), int(np.trace(confusion)), confusion.tolist(), mistakes, unreadable)


SHOWN = 20  # mistakes and unreadable images listed in the text report; --json lists every one


def format_folder_score(score: FolderScore) -> str:
    """Accuracy, the confusion matrix (rows: the folder's label, columns: the answer) and the mistakes."""
    read = score.n - len(score.unreadable)
    lines = [f"{score.folder}: accuracy {score.accuracy:.4f} ({score.correct:,} of {score.n:,} images"
             + (f"; {len(score.unreadable):,} could not be read, counted wrong" if score.unreadable else "") + ")"]
    if read:
        classes = len(score.confusion)
        width = max(4, len(f"{max(max(row) for row in score.confusion):,}") + 1)
        lines.append("confusion (rows: the folder's label, columns: the answer):")
        lines.append("     " + "".join(f"{c:>{width}}" for c in range(classes)))
        lines.extend(f"{label:>4} " + "".join(f"{v:>{width},}" if v else f"{'.':>{width}}" for v in row)
                     for label, row in enumerate(score.confusion) if sum(row))
    if score.mistakes:
        lines.append(f"mistakes ({len(score.mistakes):,}, the surest first):")
        lines.extend(f"  {m['file']}: labelled {m['label']}, read as {m['digit']} ({m['probability']:.2f}"
                     + (", unsure)" if m["unsure"] else ")") for m in score.mistakes[:SHOWN])
    if score.unreadable:
        lines.append(f"could not be read ({len(score.unreadable):,}):")
        lines.extend(f"  {u['file']}: {u['error']}" for u in score.unreadable[:SHOWN])
    if len(score.mistakes) > SHOWN or len(score.unreadable) > SHOWN:
        lines.append(f"(the first {SHOWN} of each; --json lists them all)")
    return "\n".join(lines)
