"""A digest of the reader's answers on what users send, to check that a speed change reads the same.

    python benchmarks/reader_digest.py [--n 12] [--sets a,b,...]

For each set (reader_speed.py's kinds, benchmarks/realworld.py's sets, benchmarks/paper.py's sets
and its canvas drawings) a short hash of every reading: the 28x28 the network sees, the box and
the doubts of `read_digit` (or the error it raised), and for rows of digits the whole answer of
`read_digits`. Run it before and after a change: any line that differs names the set whose
readings changed. The same seed gives the same files; the printed sets use the fonts the machine has,
so compare with the other checkout run the same day (PYTHONPATH=OTHER/src python benchmarks/reader_digest.py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import paper  # noqa: E402
import reader_speed  # noqa: E402

from lenet.data import mnist as datasets  # noqa: E402
from lenet.reading.digit import read_digit  # noqa: E402
from lenet.reading.image import load_image  # noqa: E402


def realworld():
    spec = importlib.util.spec_from_file_location("realworld", HERE / "realworld.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reading_bytes(data: bytes) -> bytes:
    """What `read_digit` makes of one file, as bytes (its error's text when it raised one)."""
    try:
        r = read_digit(load_image(data))
    except ValueError as e:
        return f"error {e}".encode()
    return r.image.tobytes() + repr((r.box, r.doubts)).encode()


def number_bytes(model, data: bytes) -> bytes:
    from lenet.reading.predict import read_digits

    try:
        return repr(read_digits(model, load_image(data))).encode()
    except ValueError as e:
        return f"error {e}".encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12, help="images a set (default 12)")
    ap.add_argument("--sets", help="only these sets (comma-separated names as printed)")
    args = ap.parse_args()
    only = set(args.sets.split(",")) if args.sets else None
    ds = datasets.load(None, download=False)
    rw = realworld()
    sets: dict[str, list[bytes]] = {}
    made = reader_speed.labelled_inputs(list(reader_speed.KINDS), args.n, seed=3)
    for kind, (files, _) in made.items():
        sets[f"speed:{kind}"] = files
    for k, name in enumerate(rw.SETS):
        if name == "numbers-sklearn" and rw.sklearn_digits() is None:
            continue
        sets[f"realworld:{name}"] = [b for b, _ in rw.build(name, args.n, ds, np.random.default_rng([5, k]))]
    for k, name in enumerate(paper.SETS):
        rng = np.random.default_rng([1, k])
        pick = rng.choice(len(ds.test_labels), args.n, replace=False)
        sets[f"paper:{name}"] = [paper.SETS[name](d, rng) for d in ds.test_images[pick]]
    model = None
    whole = hashlib.sha256()
    if only is None or "paper:canvas-drawings" in only:
        canvas = paper.canvas_digest()
        print(f"{'paper:canvas-drawings':32s} {canvas}")
        whole.update(canvas.encode())
    for name, files in sets.items():
        if only is not None and name not in only:
            continue
        h = hashlib.sha256()
        for data in files:
            if isinstance(data, np.ndarray):  # paper.py's styles are arrays, read as they are
                try:
                    r = read_digit(data)
                    h.update(r.image.tobytes() + repr((r.box, r.doubts)).encode())
                except ValueError as e:
                    h.update(f"error {e}".encode())
            elif name in ("realworld:numbers", "realworld:numbers-sklearn"):
                if model is None:
                    import lenet
                    model = lenet.load().model
                h.update(number_bytes(model, data))
            else:
                h.update(reading_bytes(data))
        print(f"{name:32s} {h.hexdigest()[:16]}  ({len(files)} files)", flush=True)
        whole.update(h.digest())
    print(f"{'all':32s} {whole.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
