"""The evaluation report: confusion matrix, per-class precision and recall, every mistake, with
the test images whose own label human reviewers judged wrong marked among them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.figures import figure, save
from lenet.files import write_text_atomic

SHOWN = 120  # mistakes drawn in mistakes.png, most confident first; report.json lists them all

LABEL_ERRORS_SOURCE = ("Northcutt, Athalye & Mueller 2021, Pervasive Label Errors in Test Sets Destabilize "
                       "Machine Learning Benchmarks; github.com/cleanlab/label-errors, mturk/mnist_mturk.json")


@dataclass(frozen=True)
class KnownLabelError:
    """A test image five human reviewers judged: its given label, the label cleanlab proposed, the votes."""
    label: int       # the label MNIST gives
    proposed: int    # the label cleanlab's cross-validated model proposed to the reviewers
    votes: tuple[int, int, int]  # reviewers who chose (the given label, the proposed one, neither)

    def to_json(self) -> dict:
        given, proposed, neither = self.votes
        return {"label": self.label, "proposed": self.proposed,
                "votes": {"given": given, "proposed": proposed, "neither": neither}}


# The MNIST test images (index into t10k, 0-based) whose given label fewer than 3 of the 5 Mechanical
# Turk reviewers chose: of the 100 that cleanlab flagged, the 15 that the paper counts as label errors.
# Typed in from LABEL_ERRORS_SOURCE (each entry's id, given_original_label, our_guessed_label, mturk).
KNOWN_LABEL_ERRORS = {
    947: KnownLabelError(8, 9, (0, 5, 0)),
    1621: KnownLabelError(0, 6, (2, 3, 0)),
    1901: KnownLabelError(9, 4, (2, 3, 0)),
    2130: KnownLabelError(4, 9, (2, 2, 1)),
    2462: KnownLabelError(2, 0, (0, 4, 1)),
    2597: KnownLabelError(5, 3, (0, 4, 1)),
    2654: KnownLabelError(6, 1, (0, 2, 3)),
    3520: KnownLabelError(6, 4, (2, 0, 3)),
    3558: KnownLabelError(5, 0, (1, 4, 0)),
    5937: KnownLabelError(5, 3, (1, 3, 1)),
    6651: KnownLabelError(0, 6, (0, 5, 0)),
    6783: KnownLabelError(1, 6, (2, 3, 0)),
    8527: KnownLabelError(4, 9, (2, 2, 1)),
    9679: KnownLabelError(6, 3, (2, 0, 3)),
    9729: KnownLabelError(5, 6, (2, 3, 0)),
}
MNIST_TEST_SIZE = 10_000


def is_mnist_test_set(labels: np.ndarray) -> bool:
    """Whether `labels` are MNIST's test labels, which the indices above refer to (Fashion-MNIST,
    EMNIST or a folder of other digits has other labels at those places)."""
    return len(labels) == MNIST_TEST_SIZE and all(
        int(labels[i]) == known.label for i, known in KNOWN_LABEL_ERRORS.items())


@dataclass(frozen=True)
class Mistake:
    """One wrongly answered test image."""
    index: int          # into the test set, 0-based
    label: int          # the test set's label
    predicted: int
    probability: float  # of the predicted class
    known_label_error: KnownLabelError | None  # the image's own label is known to be wrong

    def to_json(self) -> dict:
        return {"index": self.index, "label": self.label, "predicted": self.predicted,
                "probability": self.probability,
                "known_label_error": self.known_label_error.to_json() if self.known_label_error else None}


def list_mistakes(probs: np.ndarray, labels: np.ndarray, known: dict[int, KnownLabelError]) -> list[Mistake]:
    """Every image whose most probable class is not its label, most confident first, each marked
    when it is in `known`."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    return [Mistake(int(i), int(labels[i]), int(pred[i]), round(float(probs[i, pred[i]]), 6), known.get(int(i)))
            for i in wrong]


def label_errors_summary(mistakes: list[Mistake], labels: np.ndarray, known: dict[int, KnownLabelError]) -> dict:
    """How the known label errors fared: among the mistakes, answered as the reviewers' majority
    chose, and the accuracy on the test set without them."""
    missed = [m for m in mistakes if m.known_label_error]
    agreed = [m for m in missed
              if (e := m.known_label_error) is not None and e.votes[1] >= 3 and m.predicted == e.proposed]
    rest = len(labels) - len(known)
    return {"source": LABEL_ERRORS_SOURCE, "indices": sorted(known), "among_mistakes": len(missed),
            "answered_as_reviewers_chose": len(agreed),
            "accuracy_without_them": round((rest - (len(mistakes) - len(missed))) / rest, 6)}


def write_report(result, ds, directory: Path) -> dict:
    """Write confusion.png, mistakes.png and report.json to `directory` from `result` (a
    scoring.Evaluation); return the report's summary."""
    probs, labels, cm = result.probabilities, result.labels, result.confusion
    known = KNOWN_LABEL_ERRORS if is_mnist_test_set(labels) else {}
    mistakes = list_mistakes(probs, labels, known)
    summary = label_errors_summary(mistakes, labels, known) if known else None
    report = {
        "accuracy": result.accuracy, "n": result.n, "models": [m["model"] for m in result.models],
        "shifts": result.shifts,  # test-time augmentation, when asked for
        "per_class": per_class(cm), "confusion_matrix": cm.tolist(),
        "known_label_errors": summary,  # None unless the test set is MNIST's
        "mistakes": [m.to_json() for m in mistakes],
    }
    directory.mkdir(parents=True, exist_ok=True)
    plot_confusion(cm, directory / "confusion.png")
    plot_mistakes(ds.test_images, mistakes, directory / "mistakes.png")
    write_text_atomic(directory / "report.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    return {"directory": str(directory), "per_class": report["per_class"], "mistakes": len(mistakes),
            "known_label_errors": summary}


def per_class(cm: np.ndarray) -> list[dict]:
    rows = []
    for c in range(len(cm)):
        tp, predicted, actual = cm[c, c], cm[:, c].sum(), cm[c].sum()
        rows.append({"class": c, "precision": float(tp / predicted) if predicted else 0.0,
                     "recall": float(tp / actual) if actual else 0.0, "support": int(actual)})
    return rows


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


def plot_mistakes(images: np.ndarray, mistakes: list[Mistake], path: Path) -> None:
    """The most confident SHOWN mistakes; a red frame marks a known label error."""
    shown = mistakes[:SHOWN]
    cols = 10
    rows = max(1, -(-len(shown) // cols))
    fig = figure(figsize=(cols * 1.2, rows * 1.45 + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, m in zip(axes.flat, shown, strict=False):
        ax.imshow(images[m.index], cmap="gray")
        title = f"#{m.index} {m.label}→{m.predicted} {m.probability:.2f}"
        if m.known_label_error:
            # axis("off") hides the spines, so the frame is drawn as a rectangle over the image.
            h, w = images[m.index].shape
            ax.add_patch(_frame(w, h))
        ax.set_title(title, fontsize=7, color="red" if m.known_label_error else "black")
    count = f"all {len(mistakes)}" if len(mistakes) <= SHOWN else f"the {SHOWN} most confident of {len(mistakes)}"
    known = sum(1 for m in mistakes if m.known_label_error)
    fig.suptitle(f"Mistakes ({count}): #index label→predicted, probability"
                 + (f"\nred: {known} whose own label human reviewers judged wrong (Northcutt et al. 2021)"
                     if known else ""),
                 fontsize=10)
    save(fig, path)


def _frame(width: int, height: int):
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, -0.5), width, height, fill=False, edgecolor="red", linewidth=2.5)


def format_per_class(rows: list[dict]) -> str:
    lines = ["class  precision  recall  support"]
    lines += [f"{r['class']:>5}  {r['precision']:>9.4f}  {r['recall']:>6.4f}  {r['support']:>7,}" for r in rows]
    return "\n".join(lines)


def format_mistakes(summary: dict) -> str:
    """One line: how many mistakes, and how many of them are known label errors."""
    n = summary["mistakes"]
    line = f"{n:,} mistake{'' if n == 1 else 's'}"
    known = summary["known_label_errors"]
    if known:
        line += (f"; {known['among_mistakes']} of them among the {len(known['indices'])} test images whose label "
                 f"human reviewers judged wrong (Northcutt et al. 2021), {known['answered_as_reviewers_chose']} "
                 f"answered as most reviewers chose; accuracy without those {len(known['indices'])}: "
                 f"{known['accuracy_without_them']:.4f}")
    return line
