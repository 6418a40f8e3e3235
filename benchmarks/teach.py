"""Teach mode on styles the bundled model misreads: other numeral systems, other hands.

Devanagari (० १ २ ३ ४ ५ ६ ७ ८ ९) and Eastern Arabic (٠ ١ ٢ ٣ ٤ ٥ ٦ ٧ ٨ ٩) digits, from
the fonts of Debian's fonts-freefont-ttf and fonts-dejavu-core, and two other hands
writing 0 to 9: Daniel Kahn Gillmor's (fonts-dkg-handwriting, drawn from his
handwriting; its loop-topped 8 is read as a 0) and Femke Klaver's outlined letters
(fonts-femkeklaver). Each is drawn with pen-like variation (size, stroke thickness,
rotation, shear, position), dark ink on white as the page's pad gives it, and
read as `lenet predict` reads it. For each style
and each number of samples per digit (10, 3): that many renders of each digit
are stored with `add_sample`, `teach` fine-tunes the bundled model on them with
MNIST replayed, and the taught model is scored (NumPy, as `predict` runs it) on
unseen renders of that style, on renders in a font it was never taught, and on
MNIST's test set. Every figure is the mean over --seeds runs, with its spread.

    apt-get install -y fonts-freefont-ttf fonts-dkg-handwriting fonts-femkeklaver  # DejaVu has Eastern Arabic
    python benchmarks/teach.py --out benchmarks/results/teach.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

FONTS = Path("/usr/share/fonts/truetype")
STYLES = {
    # (first code point, fonts taught, a font kept apart to test on, or None where the hand has one face)
    "devanagari": (0x0966, ["freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf", "freefont/FreeSerif.ttf"],
                   "freefont/FreeSerifBold.ttf"),
    "eastern-arabic": (0x0660, ["dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "freefont/FreeSerif.ttf",
                                "dejavu/DejaVuSansMono.ttf"], "freefont/FreeSerifBold.ttf"),
    "dkg-hand": (0x30, ["fifthhorseman/dkgIt.ttf", "fifthhorseman/dkgBI.ttf", "fifthhorseman/dkg.ttf"],
                 "fifthhorseman/dkgBd.ttf"),
    "outlined-hand": (0x30, ["femkeklaver/femkeklaver.ttf"], None),
}
CANVAS = 200


def render(char: str, font_path: Path, rng: np.random.Generator) -> np.ndarray:
    """One digit, dark ink on white, as a pen would vary it: size, thickness, slant, turn, place."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), int(rng.integers(90, 140)))
    im = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(im)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    x = (CANVAS - (right - left)) / 2 - left + rng.uniform(-15, 15)
    y = (CANVAS - (bottom - top)) / 2 - top + rng.uniform(-15, 15)
    draw.text((x, y), char, fill=0, font=font, stroke_width=int(rng.integers(0, 6)), stroke_fill=0)
    shear = rng.uniform(-0.25, 0.25)
    im = im.transform(im.size, Image.Transform.AFFINE, (1, shear, -shear * CANVAS / 2, 0, 1, 0),
                      resample=Image.Resampling.BILINEAR, fillcolor=255)
    return np.asarray(im.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR, fillcolor=255))


def renders(first: int, fonts: list[str], per_digit: int, rng) -> tuple[list[np.ndarray], np.ndarray]:
    images, labels = [], []
    for d in range(10):
        for i in range(per_digit):
            images.append(render(chr(first + d), FONTS / fonts[i % len(fonts)], rng))
            labels.append(d)
    return images, np.array(labels)


def seen(images: list[np.ndarray]) -> np.ndarray:
    from lenet.reading.digit import read_digit

    return np.stack([read_digit(im).image for im in images])


def accuracy(model_path, images28: np.ndarray, labels: np.ndarray) -> float | None:
    from lenet.nn.numpy_model import NumpyModel
    from lenet.reading.predict import predict_images

    if not len(labels):
        return None  # nothing kept apart: the hand has one face
    model = NumpyModel.load(model_path)
    return float(np.mean([p.digit == y for p, y in zip(predict_images(model, images28), labels, strict=False)]))


def one_run(style: str, shots: int, seed: int, ds, teaching) -> dict:
    from lenet.data.samples import add_sample
    from lenet.pretrained import bundled_model_path
    from lenet.training.teach import teach

    first, fonts, apart = STYLES[style]
    rng = np.random.default_rng(seed)
    taught, taught_labels = renders(first, fonts, shots, rng)
    unseen28, unseen_labels = seen(renders(first, fonts, 30, rng)[0]), np.repeat(np.arange(10), 30)
    apart_images, apart_labels = renders(first, [apart], 20, rng) if apart else ([], np.arange(0))
    apart28 = seen(apart_images) if apart else np.zeros((0, 28, 28), np.uint8)
    base = bundled_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        for image, label in zip(taught, taught_labels, strict=False):
            add_sample(tmp, image, seen([image])[0], int(label), source="benchmark")
        t0 = time.perf_counter()
        info = teach(tmp, ds, base, Path(tmp) / "model.safetensors",
                     teaching=teaching, seed=seed, log=lambda *a: None)
        seconds = time.perf_counter() - t0
        model = Path(tmp) / "model.safetensors"
        return {"style": style, "shots": shots, "seed": seed,
                "unseen_before": accuracy(base, unseen28, unseen_labels),
                "unseen_after": accuracy(model, unseen28, unseen_labels),
                "other_font_before": accuracy(base, apart28, apart_labels),
                "other_font_after": accuracy(model, apart28, apart_labels),
                "mnist_before": info["teach"]["mnist_test_before"], "mnist_after": info["teach"]["mnist_test_after"],
                "teach_seconds": round(seconds, 1)}


def summary(runs: list[dict]) -> list[dict]:
    rows = []
    for style in STYLES:
        for shots in sorted({r["shots"] for r in runs}, reverse=True):
            group = [r for r in runs if r["style"] == style and r["shots"] == shots]
            if not group:
                continue
            row = {"style": style, "shots": shots, "runs": len(group)}
            for key in ("unseen_before", "unseen_after", "other_font_before", "other_font_after", "mnist_before",
                        "mnist_after", "teach_seconds"):
                values = np.array([r[key] for r in group if r[key] is not None])
                row[key] = None if not len(values) else {
                    "mean": round(float(values.mean()), 4), "min": round(float(values.min()), 4),
                    "max": round(float(values.max()), 4)}
            rows.append(row)
    return rows


def share(value: float | dict | None) -> str:
    """A run's share, or a summary's mean, as printed; "-" where nothing was kept apart."""
    if isinstance(value, dict):
        value = value["mean"]
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    p.add_argument("--shots", nargs="+", type=int, default=[10, 3], help="samples of each digit (default: 10 3)")
    p.add_argument("--seeds", type=int, default=3, help="runs per setting (default: 3)")
    p.add_argument("--first-seed", type=int, default=0, help="the runs' seeds count from this one (default: 0)")
    p.add_argument("--steps", type=int, help="teach steps (default: lenet teach's)")
    p.add_argument("--train-from", help="the first layer trained (default: lenet teach's)")
    p.add_argument("--data-dir", help="MNIST (default: as lenet train finds it)")
    p.add_argument("--out", help="write the runs and the summary as JSON here")
    args = p.parse_args()

    from lenet import cpu

    print(cpu.prepare(None))
    import torch

    from lenet.data import mnist as datasets
    from lenet.training.teach import Teaching

    chosen = {"steps": args.steps, "train_from": args.train_from}
    teaching = Teaching(**{k: v for k, v in chosen.items() if v is not None})
    ds = datasets.load(args.data_dir)
    runs = []
    for style in args.styles:
        for shots in args.shots:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = one_run(style, shots, seed, ds, teaching)
                runs.append(r)
                print(f"{style:15} {shots:2} per digit, seed {seed}: unseen {r['unseen_before']:.3f} -> "
                      f"{r['unseen_after']:.3f}, other font {share(r['other_font_before'])} -> "
                      f"{share(r['other_font_after'])}, MNIST {r['mnist_before']:.4f} -> {r['mnist_after']:.4f} "
                      f"({r['teach_seconds']} s)", flush=True)
    rows = summary(runs)
    for row in rows:
        print(f"{row['style']:15} {row['shots']:2} per digit ({row['runs']} runs): unseen "
              f"{row['unseen_before']['mean']:.3f} -> {row['unseen_after']['mean']:.3f} "
              f"[{row['unseen_after']['min']:.3f}, {row['unseen_after']['max']:.3f}], other font "
              f"{share(row['other_font_before'])} -> {share(row['other_font_after'])}, MNIST "
              f"{row['mnist_before']['mean']:.4f} -> {row['mnist_after']['mean']:.4f} "
              f"[{row['mnist_after']['min']:.4f}, {row['mnist_after']['max']:.4f}]")
    if args.out:
        result = {"command": "python benchmarks/teach.py " + " ".join(f"{a}" for a in __import__("sys").argv[1:]),
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, shared with other work",
                  "versions": {"torch": torch.__version__, "python": platform.python_version()},
                  "teaching": asdict(teaching), "summary": rows, "runs": runs}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
