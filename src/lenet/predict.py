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


def predict_each(model, items, prepare, k: int = 1, error=lambda name, e: {"error": str(e)}) -> list[dict]:
    """One result per (name, item), in order: `prepare(item)` makes the 28x28 image, and every
    image that could be made is predicted in one batched pass; an item whose `prepare` raised
    ValueError keeps its place with `error(name, exception)` instead. One bad input never stops the others.
    A predicted entry keeps the 28x28 the network saw under "_seen" (not printed; see `public`)."""
    results: list[dict] = []
    images, where = [], []
    for name, item in items:
        try:
            images.append(prepare(item))
            where.append(len(results))
            results.append({"file": name})
        except ValueError as e:
            results.append({"file": name, **error(name, e)})
    predictions = predict_images(model, np.stack(images) if images else np.zeros((0, 28, 28), np.uint8), k)
    for i, pred, image in zip(where, predictions, images):
        results[i].update(pred, _seen=image)
    return results


def predict_files(model, paths: list[Path], k: int = 1) -> tuple[list[dict], float]:
    """One result per path, in order, and the images per second of the whole job."""
    t0 = time.perf_counter()
    # load_image names the file in its message; the entry does already.
    results = predict_each(model, [(str(p), p) for p in paths], lambda p: preprocess(load_image(p)), k,
                           error=lambda name, e: {"error": str(e).removeprefix(f"{name}: ")})
    seconds = time.perf_counter() - t0
    return results, (len(paths) / seconds if seconds > 0 else 0.0)


def check_save_dir(directory: Path, paths: list[Path]) -> Path:
    """Refuse, before any work, a folder we cannot write or one that holds the inputs themselves."""
    from .files import check_writable_dir

    check_writable_dir(directory, "--save-preprocessed")
    here = directory.resolve()
    if any(p.resolve().parent == here for p in paths):
        raise ValueError(f"--save-preprocessed {directory}: the folder holds input images; "
                         f"choose another folder, so no input can be overwritten")
    return directory


def save_preprocessed(directory: Path, results: list[dict]) -> list[Path]:
    """Write each 28x28 image the network saw as DIR/<input name>.png. Never overwrites: a name
    already taken (by an earlier run, or two inputs with one stem) gets a number, -2, -3, ..."""
    from PIL import Image

    written = []
    for r in results:
        if "_seen" not in r:
            continue
        stem, n = Path(r["file"]).stem, 1
        while True:
            target = directory / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
            try:
                with open(target, "xb") as f:  # exclusive: fails rather than replace a file
                    Image.fromarray(r["_seen"], "L").save(f, "PNG")
                break
            except FileExistsError:
                n += 1
        written.append(target)
    return written


def public(result: dict) -> dict:
    """A result without its private entries (the image the network saw)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def format_result(r: dict) -> str:
    if "error" in r:
        return f"{r['file']}: error: {r['error']}"
    if "top" in r:
        return f"{r['file']}: " + ", ".join(f"{t['digit']} ({t['probability']:.4f})" for t in r["top"])
    return f"{r['file']}: {r['digit']} ({r['probability']:.4f})"
