"""Figures: the tutorial's validation-accuracy curve and a loss/accuracy panel."""

from __future__ import annotations

from pathlib import Path

from lenet.files import write_atomic


def figure(**kw):
    """A matplotlib Figure that only ever goes to a file. Made without pyplot, so it needs no
    display and leaves alone the backend of a notebook that trains with lenet (switching it to
    Agg, as this module once did, silently ended the notebook's inline plots)."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def plot_history(history: list[dict], out: Path) -> list[Path]:
    """Write val_acc.png (the tutorial's plot) and curves.png (train/validation loss and accuracy)."""
    epochs = [h["epoch"] for h in history]
    paths = [out / "val_acc.png", out / "curves.png"]

    fig = figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(epochs, [h["val_accuracy"] for h in history], marker="o")
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    ax.grid(alpha=0.3)
    save(fig, paths[0])

    fig = figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    right.plot(epochs, [h["train_accuracy"] for h in history], marker="o", label="train")
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="o", label="validation")
    right.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    save(fig, paths[1])
    return paths


def save(fig, path: Path) -> None:
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
