"""The reader's time per image, on what users send, one process, one BLAS thread.

    OPENBLAS_NUM_THREADS=1 python benchmarks/reader_speed.py [--rounds 15] [--images 20] [--steps]
        [--against OTHER_CHECKOUT]

Inputs, each from digits the network never trained on (drawn or scanned by other writers):

  drawing   what the page posts: a 280x280 opaque RGBA PNG of its pad, grey strokes (R = G = B) on
            white (MNIST test digits enlarged to about 200 px, 255 - their grey as the stroke);
  canvas-transparent  the same drawings exported without the white fill: the ink as alpha on
            transparent pixels (not in the default kinds' tables of folder.py and bench.py);
  scan      a 96x96 grey PNG of a real digit on paper: scikit-learn's UCI digits (8x8, by other
            writers) enlarged, paper grey with noise;
  photo     a ~330 px RGB JPEG of blue ink on uneven paper (light falling off across it);
  phone     a 2000x1500 JPEG phone photo of a page with a 60 px digit (disguise.photo);
  mnist     a 28x28 MNIST PNG: the shortcut (read as it is), labelled as one.

Each round reads every image of every kind once, the kinds interleaved (a busy machine slows
all of them alike); the figure is the median over rounds of the mean time per image, for
decoding + reading (`read_digit(load_image(bytes))`), for reading alone, and for round 1's
reader (benchmarks/round1/preprocess.py, decoding + reading) in the same rounds: on a shared
machine its column says how much slower the machine is than the quiet one its figures came
from. Wall time, and the process's CPU time (what a busy machine inflates least). `--steps`
prints where the time goes, per step (decoding included), for each kind. `--against DIR` times another
checkout's reader (DIR/src) beside this one's instead: two worker processes, one per checkout,
each holding the same inputs, take turns a round at a time, and the table gives both and their
ratio (decoding + reading).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lenet.data import disguise
from lenet.data import mnist as datasets
from lenet.reading import load_image, read_digit

HERE = Path(__file__).parent


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, "PNG")
    return buf.getvalue()


def drawn(digit: np.ndarray, rng) -> np.ndarray:
    """`digit` enlarged to about 200 px (its strokes near the page's 22 px pen) at a random place
    on a 280x280 pad: the ink, 0..255."""
    side = int(rng.integers(170, 230))
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    ink = np.zeros((280, 280), np.uint8)
    y, x = (int(v) for v in rng.integers(0, 280 - side, 2))
    ink[y:y + side, x:x + side] = big
    return ink


def drawing(digit: np.ndarray, rng) -> bytes:
    """What the page posts (app.js: the pad filled white, black anti-aliased strokes, toBlob's
    PNG): a 280x280 opaque RGBA PNG, grey strokes (255 - ink, R = G = B) on white."""
    grey = 255 - drawn(digit, rng)
    return png(np.dstack([grey, grey, grey, np.full_like(grey, 255)]), "RGBA")


def transparent_drawing(digit: np.ndarray, rng) -> bytes:
    """A canvas exported without its white fill: a 280x280 RGBA PNG, the ink as alpha on black."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = drawn(digit, rng)
    return png(rgba, "RGBA")


def scan(digit: np.ndarray, rng) -> bytes:
    """`digit`: grey uint8 at any size (UCI's 8x8, or MNIST's 28x28), enlarged to 72 px on paper."""
    ink = np.asarray(Image.fromarray(digit).resize((72, 72), Image.Resampling.BILINEAR))
    page = np.zeros((96, 96), np.float32)
    page[12:84, 12:84] = ink / 255
    grey = 0.88 - 0.7 * page + rng.normal(0, 0.02, page.shape)
    return png((np.clip(grey, 0, 1) * 255).astype(np.uint8))


def photo(digit: np.ndarray, rng) -> bytes:
    h, w = int(rng.integers(300, 340)), int(rng.integers(320, 360))
    ink = disguise.ink_of(digit, int(rng.integers(120, 200)))
    page = np.zeros((h, w), np.float32)
    disguise.paste(page, ink, int(rng.integers(10, h - ink.shape[0] - 10)),
                   int(rng.integers(10, w - ink.shape[1] - 10)))
    light = np.linspace(1.0, 0.6, w, dtype=np.float32)[None, :]
    rgb = np.stack([1 - 0.8 * page, 1 - 0.7 * page, 1 - 0.2 * page], -1) * (0.92 * light)[..., None]
    rgb = rgb + rng.normal(0, 0.015, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def scanned_digits(ds, n: int, rng) -> tuple[np.ndarray, np.ndarray, str]:
    """Digits to scan and their labels: scikit-learn's UCI digits by other writers when
    scikit-learn is installed, else MNIST test digits (and which)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        pick = rng.choice(len(ds.test_labels), n, replace=False)
        return ds.test_images[pick], ds.test_labels[pick], "MNIST test digits"
    uci = load_digits()
    # Its 1,797 digits, each once while there are enough (a folder of 2,000 repeats some).
    pick = rng.choice(len(uci.target), n, replace=n > len(uci.target))
    return (uci.images[pick] / 16 * 255).astype(np.uint8), uci.target[pick], "UCI digits (scikit-learn)"


# Each kind's row name (what it is, as a user sends it) and file suffix; real inputs first.
KINDS = {"drawing": ("page drawing, 280x280 white RGBA PNG", ".png"),
         "canvas-transparent": ("transparent canvas, 280x280 RGBA PNG", ".png"),
         "photo": ("photo-like file, ~330 px RGB JPEG", ".jpg"),
         "scan": ("scan, 96x96 grey PNG", ".png"),
         "phone": ("phone photo, 2000x1500 JPEG", ".jpg"),
         "mnist": ("MNIST-form 28x28 (the reader's shortcut: skips finding the ink)", ".png")}


def kinds_of(text: str) -> list[str]:
    """The kinds named in a comma-separated `text`, checked against KINDS."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise SystemExit(f"unknown input kind(s) {unknown or text!r}: choose from {', '.join(KINDS)}")
    return kinds


def labelled_inputs(kinds: list[str], n: int, seed: int = 0,
                    data_dir: str | None = None) -> dict[str, tuple[list[bytes], np.ndarray]]:
    """{kind: (n encoded files, their labels)} for each of `kinds`, from digits the network never
    trained on; the same seed gives the same files."""
    try:
        ds = datasets.load(data_dir, download=False)
    except (OSError, ValueError) as e:
        raise SystemExit(f"the inputs are made from MNIST's test digits: {e}; pass --data-dir or set "
                         "LENET_DATA_DIR") from None
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ds.test_labels), n, replace=False)
    digits, labels = ds.test_images[pick], ds.test_labels[pick]
    scanned, scanned_labels, source = scanned_digits(ds, n, rng)
    twin = copy.deepcopy(rng)  # the transparent drawings: the page drawings' placings, the others' draws kept
    makers = {"drawing": lambda: [drawing(d, rng) for d in digits],
              "canvas-transparent": lambda: [transparent_drawing(d, twin) for d in digits],
              "photo": lambda: [photo(d, rng) for d in digits],
              "scan": lambda: [scan(d, rng) for d in scanned],
              "phone": lambda: [disguise.photo(d, rng) for d in digits],
              "mnist": lambda: [png(d) for d in digits]}
    if "scan" in kinds:
        print(f"scans made from {source}")
    return {kind: (makers[kind](), scanned_labels if kind == "scan" else labels) for kind in kinds}


def inputs(n: int, seed: int = 0) -> dict[str, list[bytes]]:
    """{row name: n encoded files} of every kind (a quarter as many phone photos: they are large)."""
    made = labelled_inputs([k for k in KINDS if k != "phone"], n, seed)
    made["phone"] = labelled_inputs(["phone"], max(1, n // 4), seed)["phone"]
    return {KINDS[kind][0]: made[kind][0] for kind in KINDS}


def timed(images: list, fn) -> tuple[float, float]:
    """(wall ms, CPU ms) per image of `fn` over `images`."""
    wall, cpu = time.perf_counter(), time.process_time()
    for image in images:
        fn(image)
    return ((time.perf_counter() - wall) / len(images) * 1000, (time.process_time() - cpu) / len(images) * 1000)


def round1():
    """Round 1's reader: (load_image, preprocess) of benchmarks/round1/preprocess.py."""
    spec = importlib.util.spec_from_file_location("round1_preprocess", HERE / "round1" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_image, module.preprocess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--images", type=int, default=20, help="images of each kind (default 20)")
    ap.add_argument("--steps", action="store_true", help="also print the time per step of the reading")
    ap.add_argument("--against", metavar="DIR", help="another checkout: its reader beside this one's")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one side of --against
    args = ap.parse_args()
    if args.worker:
        return worker(args.images)
    if args.against:
        return against(Path(args.against), args.rounds, args.images)
    kinds = inputs(args.images)
    decoded = {kind: [load_image(b) for b in data] for kind, data in kinds.items()}
    old_load, old_preprocess = round1()
    readers = {"decode+read": (kinds, lambda b: read_digit(load_image(b))),
               "read": (decoded, read_digit),
               "round 1": (kinds, lambda b: old_preprocess(old_load(b)))}
    for kind in kinds:  # warm up
        for data, fn in readers.values():
            timed(data[kind][:2], fn)
    times: dict = {(kind, name): [] for kind in kinds for name in readers}
    for _ in range(args.rounds):
        for kind in kinds:
            for name, (data, fn) in readers.items():
                times[kind, name].append(timed(data[kind], fn))
    print(f"reader speed, ms per image, wall / CPU (median of {args.rounds} interleaved rounds, {args.images} "
          f"images a kind; {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, one BLAS thread "
          f"if OPENBLAS_NUM_THREADS=1: {os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})")
    print(f"{'input':66s} " + " ".join(f"{name:>15s}" for name in readers))
    for kind in kinds:
        cells = []
        for name in readers:
            wall, cpu = (statistics.median(v) for v in zip(*times[kind, name], strict=False))
            cells.append(f"{wall:7.2f} /{cpu:6.2f}")
        print(f"{kind:66s} " + " ".join(f"{c:>15s}" for c in cells))
    if args.steps:
        print_steps(kinds)
    return 0


def worker(n: int) -> int:
    """One side of --against: for each line on stdin, one round over every kind, a JSON line out."""
    kinds = inputs(n)
    for data in kinds.values():  # warm up
        timed(data[:2], lambda b: read_digit(load_image(b)))
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps({kind: timed(data, lambda b: read_digit(load_image(b))) for kind, data in kinds.items()}),
              flush=True)
    return 0


def against(other: Path, rounds: int, n: int) -> int:
    """This checkout's reader and `other`'s, a round each in turn (decoding + reading)."""
    if not (other / "src" / "lenet").is_dir():
        raise SystemExit(f"--against {other}: expected a checkout with src/lenet in it")
    here = Path(__file__).resolve().parent.parent
    sides = {}
    for name, root in (("this", here), ("other", other.resolve())):
        env = {**os.environ, "PYTHONPATH": str(root / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        sides[name] = subprocess.Popen([sys.executable, __file__, "--worker", "--images", str(n)], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for proc in sides.values():
        while (line := proc.stdout.readline()) and line.strip() != "ready":  # past what the inputs print
            pass
        if not line:
            raise SystemExit("a worker stopped before its inputs were ready")
    times: dict = {name: [] for name in sides}
    for r in range(rounds):
        for name in (sides if r % 2 == 0 else reversed(sides)):
            sides[name].stdin.write("round\n")
            sides[name].stdin.flush()
            times[name].append(json.loads(sides[name].stdout.readline()))
    for proc in sides.values():
        proc.stdin.close()
        proc.wait()
    print(f"decode + read, ms per image, wall / CPU, median of {rounds} rounds taken in turn, {n} images a kind "
          f"(a quarter as many phone photos); this: {here}, other: {other}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'input':66s} {'this':>15s} {'other':>15s} {'other/this':>10s}")
    for kind in times["this"][0]:
        cells = {name: [statistics.median(v) for v in zip(*(t[kind] for t in times[name]), strict=True)]
                 for name in sides}
        print(f"{kind:66s} " + " ".join(f"{w:7.2f} /{c:6.2f}" for w, c in cells.values())
              + f" {cells['other'][1] / cells['this'][1]:9.2f}x")
    return 0


# The reader's steps, each timed on its own (its own CPU time, without the steps it calls). A step is
# looked up in each module named (an older checkout holds the background's steps in ink.py).
STEPS = {"image": ("decode_image",),
         "ink": ("grey", "reduced", "plain_ink", "canvas", "unruled", "ink_on_paper", "ink_and_mask", "background",
                 "backgrounds", "plain_floor", "pooled", "expand", "dark_is_ink", "strong_ink", "joined",
                 "light_corners", "marks_of", "components", "closer_look", "stroke_width", "find_ink"),
         "canvas": ("transparent_canvas", "white_pad", "drawn_ink", "canvas_ink"),
         "background": ("reduced", "background", "backgrounds", "plain_floor", "pooled", "expand", "stroke_width"),
         "paper": ("sheet", "sheet_only", "unlined", "paper_lines", "lines_along", "broken_lines", "thin_dark"),
         "order": ("percentiles", "median", "row_medians"),
         "lines": ("form_lines", "line_candidates"),
         "digit": ("digit_marks", "read_marks", "even_strokes", "fit_box", "centre_of_mass_place", "find_digit")}


def print_steps(kinds: dict[str, list[bytes]], repeats: int = 3) -> None:
    """CPU ms per image of each step of decoding + reading, for each kind: the reader's functions
    wrapped with timers for this, each charged its own time only, biggest first."""
    import contextlib
    import functools
    import importlib

    own: dict[str, float] = {}
    stack: list[float] = []

    def timed_step(name, fn):
        @functools.wraps(fn)
        def step(*args, **kwargs):
            start = time.process_time()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                spent, inner = time.process_time() - start, stack.pop()
                own[name] = own.get(name, 0.0) + spent - inner
                if stack:
                    stack[-1] += spent
        return step

    modules = {}
    for name in STEPS:  # an older checkout (PYTHONPATH) may lack a module or a step: timed without it
        with contextlib.suppress(ImportError):
            modules[name] = importlib.import_module(f"lenet.reading.{name}")
    originals = {fn: getattr(modules[module], fn) for module, fns in STEPS.items() if module in modules
                 for fn in fns if hasattr(modules[module], fn)}
    users = [*modules.values(), importlib.import_module("lenet.reading")]
    patched = []
    for module in users:  # every module that holds one of them by name
        for fn, original in originals.items():
            if getattr(module, fn, None) is original:
                setattr(module, fn, timed_step(fn, original))
                patched.append((module, fn, original))
    try:
        print(f"CPU ms per image by step (each step's own time; {repeats} passes):")
        for kind, data in kinds.items():
            for b in data[:2]:
                modules["digit"].read_digit(modules["image"].load_image(b))
            own.clear()
            start = time.process_time()
            for _ in range(repeats):
                for b in data:
                    modules["digit"].read_digit(modules["image"].load_image(b))
            per = {fn: t / repeats / len(data) * 1000 for fn, t in own.items()}
            total = (time.process_time() - start) / repeats / len(data) * 1000
            print(f"{kind}: all {total:.2f} | " + ", ".join(
                f"{fn} {t:.2f}" for fn, t in sorted(per.items(), key=lambda kv: -kv[1]) if t >= 0.005))
    finally:
        for module, fn, original in patched:
            setattr(module, fn, original)


if __name__ == "__main__":
    raise SystemExit(main())
