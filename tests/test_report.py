"""The evaluation report: every mistake listed, and the known mislabelled MNIST test images marked."""

import json
from types import SimpleNamespace

import numpy as np

from lenet.evaluation.report import (
    KNOWN_LABEL_ERRORS,
    MNIST_TEST_SIZE,
    format_mistakes,
    is_mnist_test_set,
    write_report,
)
from lenet.evaluation.scoring import Evaluation, confusion_matrix


def synthetic_result(labels: np.ndarray, wrong: dict[int, tuple[int, float]]) -> Evaluation:
    """What evaluate_models returns for a model that is right everywhere except at `wrong`
    (index -> (predicted class, its probability))."""
    probs = np.full((len(labels), 10), 0.01, dtype=np.float32)
    probs[np.arange(len(labels)), labels] = 0.91
    for i, (cls, p) in wrong.items():
        probs[i] = (1 - p) / 9
        probs[i, cls] = p
    pred = probs.argmax(1)
    hit = pred == labels
    return Evaluation(float(hit.mean()), len(labels), int(hit.sum()), [], 0.0, [{"model": "synthetic"}], probs,
                      labels, confusion_matrix(labels, pred, 10))


def mnist_like_labels() -> np.ndarray:
    """10,000 labels that agree with MNIST's test labels at the known label errors."""
    labels = np.arange(MNIST_TEST_SIZE) % 10
    for i, known in KNOWN_LABEL_ERRORS.items():
        labels[i] = known.label
    return labels


def test_every_mistake_listed_and_known_label_errors_marked(tmp_path):
    labels = mnist_like_labels()
    # Two known label errors answered as the reviewers chose (947: 8, most said 9; 6651: 0, most
    # said 6), one answered otherwise, and three ordinary mistakes.
    wrong = {947: (9, 0.99), 6651: (6, 0.60), 2130: (7, 0.55), 5: ((labels[5] + 1) % 10, 0.97),
             17: ((labels[17] + 3) % 10, 0.51), 9999: ((labels[9999] + 1) % 10, 0.80)}
    ds = SimpleNamespace(test_images=np.zeros((MNIST_TEST_SIZE, 28, 28), np.uint8))
    summary = write_report(synthetic_result(labels, wrong), ds, tmp_path)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["shifts"] == 0  # no test-time augmentation, and the report says so
    listed = report["mistakes"]
    assert sorted(m["index"] for m in listed) == sorted(wrong)
    assert [m["probability"] for m in listed] == sorted((m["probability"] for m in listed), reverse=True)
    assert all(m["label"] == labels[m["index"]] and m["predicted"] == wrong[m["index"]][0] for m in listed)
    marked = {m["index"]: m["known_label_error"] for m in listed if m["known_label_error"]}
    assert sorted(marked) == [947, 2130, 6651]
    assert marked[947] == {"label": 8, "proposed": 9, "votes": {"given": 0, "proposed": 5, "neither": 0}}
    known = report["known_label_errors"]
    assert known["indices"] == sorted(KNOWN_LABEL_ERRORS) and len(known["indices"]) == 15
    assert known["among_mistakes"] == 3 and known["answered_as_reviewers_chose"] == 2
    assert known["accuracy_without_them"] == round((9_985 - 3) / 9_985, 6)
    assert summary["mistakes"] == 6 and summary["known_label_errors"] == known
    assert "3 of them among the 15" in format_mistakes(summary)
    for name in ("confusion.png", "mistakes.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_no_marking_on_other_test_sets(tmp_path):
    labels = mnist_like_labels()
    labels[947] = 3  # not MNIST's label there: the indices do not refer to this set
    assert not is_mnist_test_set(labels) and not is_mnist_test_set(labels[:100])
    ds = SimpleNamespace(test_images=np.zeros((MNIST_TEST_SIZE, 28, 28), np.uint8))
    summary = write_report(synthetic_result(labels, {947: (9, 0.9)}), ds, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["known_label_errors"] is None and report["mistakes"][0]["known_label_error"] is None
    assert format_mistakes(summary) == "1 mistake"


def test_known_label_errors_are_mnist_labels(mnist):
    # The typed-in labels are the real test set's: the indices are 0-based into t10k, as in the source.
    assert is_mnist_test_set(mnist.test_labels)
    for known in KNOWN_LABEL_ERRORS.values():
        assert known.proposed != known.label and sum(known.votes) == 5 and known.votes[0] < 3


def test_an_evaluation_is_one_type_whatever_the_flags():
    """`lenet evaluate --json` writes Evaluation.to_json(): the same keys with or without a report
    (which adds its own), never the arrays the report is drawn from."""
    from dataclasses import replace

    labels = np.arange(100) % 10
    result = synthetic_result(labels, {3: (4, 0.9)})
    keys = ["calibration_error", "accuracy", "n", "correct", "per_class_accuracy", "models", "ensemble", "shifts"]
    assert list(result.to_json()) == keys and result.correct == 99 and not result.ensemble
    assert list(replace(result, report={"mistakes": 1}).to_json()) == [*keys, "report"]
    json.dumps(result.to_json(), allow_nan=False)  # nothing but JSON in it
