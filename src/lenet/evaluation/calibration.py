"""Probabilities that mean what they say, and when to say "unsure".

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017): one number T
divides the network's scores before the softmax, fitted to minimise the negative log-likelihood
on images the network did not train on (the `--holdout` part of the training set). It changes no
answer, only how sure each one claims to be. The expected calibration error (ECE: the gap between
confidence and accuracy, averaged over 15 confidence bins, weighted by their size) says how far
the probabilities are from the truth, before and after.

The unsure threshold is the probability below which FLAG_CORRECT of the correct held-out answers
fall: a budget of false alarms on MNIST-like digits; errors on other digits mostly fall below it.
"""

from __future__ import annotations

import numpy as np

BINS = 15
FLAG_CORRECT = 0.015   # the share of correct held-out answers flagged unsure


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    return float((np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the NLL of softmax(logits / T): golden-section search on
    log T (the NLL is convex in 1/T)."""
    logits, labels = logits.astype(np.float64), labels.astype(np.int64)
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    confidence, hit = probabilities.max(1), probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(float(hit[inside].mean()) - float(confidence[inside].mean()))
    return error


def unsure_threshold(probabilities: np.ndarray, labels: np.ndarray, flag: float = FLAG_CORRECT) -> float:
    """The probability below which `flag` of the correct answers fall."""
    confidence, hit = probabilities.max(1), probabilities.argmax(1) == labels
    return float(np.quantile(confidence[hit], flag)) if hit.any() else 0.0


def calibrate(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Temperature, unsure threshold and the ECE before and after, from held-out scores."""
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits.astype(np.float64)), softmax(logits.astype(np.float64) / temperature)
    return {"temperature": round(temperature, 6), "unsure_below": round(unsure_threshold(after, labels), 6),
            "ece_before": round(expected_calibration_error(before, labels), 6),
            "ece_after": round(expected_calibration_error(after, labels), 6), "images": len(labels)}
