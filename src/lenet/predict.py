"""Predict digits in people's own image files: decode, preprocess, one batched forward pass.

Every input gets a result: a digit with its probabilities, or an error saying
why that file could not be used. One bad file never stops the others.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .preprocess import EXTENSIONS, load_image, preprocess


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; directories expanded to their image files, sorted by name (not recursive)."""
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS))
        else:
            paths.append(path)  # a missing file becomes its own error entry
    return paths


def top_k(probabilities: np.ndarray, k: int) -> list[dict]:
    order = np.argsort(-probabilities)[:k]
    return [{"digit": int(d), "probability": float(probabilities[d])} for d in order]


def predict_images(model, images: np.ndarray, k: int = 1) -> list[dict]:
    """Results for preprocessed uint8 images (N, 28, 28), one batched forward pass."""
    probs = model.probabilities(images)
    results = []
    for p in probs:
        best = int(p.argmax())
        r = {"digit": best, "probability": round(float(p[best]), 6),
             "probabilities": [round(float(v), 6) for v in p]}
        if k > 1:
            r["top"] = top_k(p, k)
        results.append(r)
    return results


def predict_files(model, paths: list[Path], k: int = 1, save_dir: Path | None = None) -> tuple[list[dict], float]:
    """One result per path, in order, and the images per second of the whole job."""
    t0 = time.perf_counter()
    results: list[dict] = []
    images, where = [], []
    for path in paths:
        try:
            images.append(preprocess(load_image(path)))
            where.append(len(results))
            results.append({"file": str(path)})
        except ValueError as e:
            message = str(e).removeprefix(f"{path}: ")  # load_image names the file; the entry does already
            results.append({"file": str(path), "error": message})
    predictions = predict_images(model, np.stack(images) if images else np.zeros((0, 28, 28), np.uint8), k)
    for i, pred in zip(where, predictions):
        results[i].update(pred)
    if save_dir is not None:
        save_preprocessed(save_dir, [results[i]["file"] for i in where], images)
    seconds = time.perf_counter() - t0
    return results, (len(paths) / seconds if seconds > 0 else 0.0)


def save_preprocessed(directory: Path, names: list[str], images: list[np.ndarray]) -> None:
    """Write each 28x28 image the network saw as DIR/<input name>.png (numbered if names repeat)."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for name, image in zip(names, images):
        stem, n = Path(name).stem, 1
        target = stem
        while target in used:
            n += 1
            target = f"{stem}-{n}"
        used.add(target)
        Image.fromarray(image, "L").save(directory / f"{target}.png")


def format_result(r: dict) -> str:
    if "error" in r:
        return f"{r['file']}: error: {r['error']}"
    if "top" in r:
        return f"{r['file']}: " + ", ".join(f"{t['digit']} ({t['probability']:.4f})" for t in r["top"])
    return f"{r['file']}: {r['digit']} ({r['probability']:.4f})"
