"""The evaluation report: confusion matrix, per-class precision and recall, the most confident mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lenet.files import write_text_atomic
from lenet.figures import figure, save

WORST = 36  # mistakes shown in the grid


def per_class(cm: np.ndarray) -> list[dict]:
    rows = []
    for c in range(len(cm)):
        tp, predicted, actual = cm[c, c], cm[:, c].sum(), cm[c].sum()
        rows.append({"class": c, "precision": float(tp / predicted) if predicted else 0.0,
                     "recall": float(tp / actual) if actual else 0.0, "support": int(actual)})
    return rows


def write_report(result: dict, ds, directory: Path) -> dict:
    """Write confusion.png, mistakes.png and report.json to `directory`; return the report."""
    probs, labels, cm = result["_probabilities"], result["_labels"], result["_confusion"]
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    worst = wrong[np.argsort(-probs[wrong, pred[wrong]])][:WORST]
    report = {
        "accuracy": result["accuracy"], "n": result["n"], "models": [m["model"] for m in result["models"]],
        "per_class": per_class(cm), "confusion_matrix": cm.tolist(),
        "most_confident_mistakes": [{"index": int(i), "true": int(labels[i]), "predicted": int(pred[i]),
                                     "probability": round(float(probs[i, pred[i]]), 6)} for i in worst],
    }
    directory.mkdir(parents=True, exist_ok=True)
    plot_confusion(cm, directory / "confusion.png")
    plot_mistakes(ds.test_images, report["most_confident_mistakes"], directory / "mistakes.png")
    write_text_atomic(directory / "report.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    return {"directory": str(directory), "per_class": report["per_class"]}


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    n = len(cm)
    fig = figure(figsize=(0.6 * n + 2, 0.6 * n + 1.5))
    ax = fig.subplots()
    # Log colour scale: the diagonal holds ~1,000 per class and mistakes a handful.
    ax.imshow(np.log1p(cm), cmap="Blues")
    for t in range(n):
        for p in range(n):
            if cm[t, p]:
                ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=8,
                        color="white" if t == p else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
           title=f"Confusion matrix ({cm.trace():,} / {cm.sum():,} right)")
    save(fig, path)


def plot_mistakes(images: np.ndarray, mistakes: list[dict], path: Path) -> None:
    cols = 9
    rows = max(1, -(-len(mistakes) // cols))
    fig = figure(figsize=(cols * 1.2, rows * 1.45))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m in zip(axes.flat, mistakes):
        ax.imshow(images[m["index"]], cmap="gray")
        ax.set_title(f"{m['true']}→{m['predicted']} {m['probability']:.2f}", fontsize=8)
    fig.suptitle("Most confident mistakes: true→predicted, probability", fontsize=10)
    save(fig, path)


def format_per_class(rows: list[dict]) -> str:
    lines = ["class  precision  recall  support"]
    lines += [f"{r['class']:>5}  {r['precision']:>9.4f}  {r['recall']:>6.4f}  {r['support']:>7,}" for r in rows]
    return "\n".join(lines)
