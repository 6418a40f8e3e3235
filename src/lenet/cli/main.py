"""The `lenet` command: parses arguments and calls library functions, nothing more.

Exit codes: 0 success; 1 an error the message explains (bad data, bad model,
for `predict`: at least one input could not be used); 2 bad usage; 130
interrupted (a resumable checkpoint was written).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import textwrap
from pathlib import Path

from lenet import __version__
from lenet.config import DEFAULT_RECIPE, RECIPES, Recipe

MAX_DEFAULT_WORKERS = 8  # lenet serve's processes unless --workers says: one per core up to this

# Which extra brings an optional dependency (pyproject.toml), with what they bring in turn.
EXTRAS = {"torch": "train", "tqdm": "train", "matplotlib": "train", "onnx": "export", "onnxscript": "export",
          "onnxruntime": "export", "fastapi": "serve", "uvicorn": "serve", "starlette": "serve",
          "multipart": "serve", "python_multipart": "serve", "anyio": "serve", "httptools": "serve",
          "h11": "serve", "pydantic": "serve", "uvloop": "serve"}
COMMAND_EXTRA = {"train": "train", "export": "export", "serve": "serve"}  # a module not named above


def install_command(extra: str) -> str:
    """The pip command that adds `extra` to lenet as it is installed here: `pip install -e
    '<source folder>[extra]'` for an editable install (its direct_url.json, PEP 610), where
    `pip install 'lenet[extra]'` would fetch another copy from the index."""
    from importlib import metadata
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    try:
        record = json.loads(metadata.distribution("lenet").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        record = {}
    url = record.get("url", "") if isinstance(record, dict) else ""
    editable = isinstance(record, dict) and isinstance(record.get("dir_info"), dict) and record["dir_info"].get("editable")
    if editable and url.startswith("file:"):
        source = Path(url2pathname(urlsplit(url).path))
        where = "." if source == Path.cwd() else str(source)
        return f"pip install -e {shlex.quote(f'{where}[{extra}]')}"
    return f"pip install 'lenet[{extra}]'"


EXAMPLES = {  # the end of each command's --help
    "train": """examples:
  lenet train                                   # LeNet-5, the text's network, 20 epochs into ./output
  lenet train --recipe fast --out runs/fast     # 99.2% in one epoch, about 17 s in all on 2 CPU cores
  lenet train --resume --out runs/fast          # continue after Ctrl-C or a crash""",
    "evaluate": """examples:
  lenet evaluate                                # the bundled model on the MNIST test set
  lenet evaluate --model runs/fast --report report/   # confusion matrix, mistakes
  lenet evaluate my-digits/                     # your own images: my-digits/7/x.png, ...""",
    "predict": """examples:
  lenet predict docs/examples/photo-9.jpg       # one image
  lenet predict --json --top-k 3 my-digits/     # every image in a folder
  lenet predict --number docs/examples/number-2026.png   # a row of digits""",
    "explain": """examples:
  lenet explain docs/examples/photo-9.jpg       # writes explain-photo-9.png here
  lenet explain digit.png --model runs/fast --output inside.png
  lenet explain digit.png --json                # every layer's values instead""",
    "export": """examples:
  lenet export --output lenet.onnx              # the bundled model
  lenet export --model runs/fast --output fast.onnx
  lenet export --web site/                      # a drawing page that needs no server""",
    "teach": """examples:
  lenet teach my-samples/                       # the bundled model learns the digits in my-samples/7/, ...
  lenet teach my-samples/ --model runs/fast --out runs/mine""",
    "serve": """examples:
  lenet serve                                   # http://127.0.0.1:8000/ : draw a digit
  lenet serve --model runs/fast --port 9000
  lenet serve --learn                           # corrections on the page teach the model""",
}


class Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """States each default once: flags whose help already says it, or that are off by default, are left alone.
    The examples at the end (the epilog) keep their lines."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`), else a usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}" if high is not None
                                             else f"must be at least {low}, got {value}")
        return value
    return parse


def add_train(sub) -> None:
    recipes = "\n".join(textwrap.fill(f"{name}: {r.summary}", 78, initial_indent="  ", subsequent_indent="    ")
                         for name, r in RECIPES.items())
    p = sub.add_parser("train", help="train a network on MNIST (or any IDX dataset)",
                       description="Train LeNet. A recipe sets every hyperparameter; each flag overrides one.\n\n"
                                   f"recipes:\n{recipes}",
                       formatter_class=Help,
                       epilog=EXAMPLES["train"])
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="named hyperparameters (default: the --arch's own: "
                        + ", ".join(f"{a} -> {r}" for a, r in DEFAULT_RECIPE.items()) + ")")
    for f in Recipe.knobs():  # one flag per recipe field users may set, from the dataclass
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata["help"].replace("%", "%%") + " (default: the recipe's)"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_)
        else:
            p.add_argument(flag, type=type(f.default), choices=f.metadata["choices"], help=help_)
    p.add_argument("--seed", type=whole(0, 2**31 - 1), default=0, help="seeds initialisation, order and augmentation")
    p.add_argument("--subset", type=whole(1), metavar="N", help="train on the first N images only, for quick runs "
                   "(validation always uses every image) (default: all)")
    p.add_argument("--holdout", type=whole(0), default=0, metavar="N",
                   help="validate on the last N training images instead of the test set (0: the test set)")
    p.add_argument("--data-dir", help="folder with the four IDX files, or an image-folder tree (DIR/0, DIR/1, ... "
                   "or DIR/train/0, ..., DIR/test/0, ...) (default: $LENET_DATA_DIR, ./data/MNIST, "
                   "the user cache, else download)")
    p.add_argument("--out", default="output", help="folder for the model, checkpoint, metrics and plots")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present")
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint (its settings win; "
                   "the data where that run found it, unless --data-dir says)")
    p.add_argument("--overwrite", action="store_true", help="replace the finished model --out holds "
                   "(without it, a run into such a folder stops with an error)")
    p.add_argument("--checkpoint-every", type=whole(0), default=0, metavar="N",
                   help="write a mid-epoch checkpoint every N batches (0: about every minute of training)")
    p.add_argument("--log-every", type=whole(0), default=50, metavar="N", help="print loss and accuracy every N batches")
    p.add_argument("--threads", type=whole(1, 1024),
                   help="CPU threads (default: the cores not busy with other work, measured at the start)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--snapshots", action="store_true", help="record how C1's filters learn: learning.png and "
                   "learning.gif in --out (8 snapshots in the first epoch, then one per epoch)")
    p.set_defaults(func=cmd_train)


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score saved models on the test set, or on your own labelled images",
                       description=textwrap.fill(
                           "Score a model on the MNIST test set, or, given DIR, on your own images: one subfolder "
                           "per digit, named by it (DIR/7/x.png), each image read as `lenet predict` reads it. "
                           "For DIR it prints the accuracy, the confusion matrix and the mistakes.", 78),
                       formatter_class=Help,
                       epilog=EXAMPLES["evaluate"])
    p.add_argument("folder", nargs="?", metavar="DIR", help="a folder of labelled images, one subfolder per digit "
                   "(default: the MNIST test set)")
    p.add_argument("--model", action="append", help="output folder or .safetensors; repeat for an ensemble "
                   "(default: the bundled pretrained model)")
    p.add_argument("--data-dir", help="folder with the IDX files (default: as for train)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", metavar="DIR", help="also write a confusion matrix, per-class precision/recall "
                   "and every mistake (the known mislabelled MNIST test images marked) to DIR")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=cmd_evaluate)


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict the digit in your own images (no torch needed)",
                       description=textwrap.fill(
                           "Predict digits in image files (PNG, JPEG, BMP, GIF, WebP, TIFF) and folders of them. "
                           "The digit is found in the image (uneven light, either polarity, form lines, other "
                           "marks) and prepared the way MNIST was made. An answer to doubt is marked unsure, with "
                           "the reasons (several marks, faint, small, at the border, low probability); it still "
                           "counts as predicted. Exit code 0 when every input was predicted, 1 when at least one "
                           "could not be used.", 78),
                       formatter_class=Help,
                       epilog=EXAMPLES["predict"])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images (the images "
                   "directly in a folder, not those in its subfolders: see --recursive)")
    p.add_argument("--recursive", action="store_true", help="also read the images in the folders' subfolders, "
                   "all the way down")
    p.add_argument("--crop", metavar="X,Y,W,H", help="read only this rectangle of each image: left, top, width, "
                   "height in the image's pixels (a photo with more on it than the digit)")
    p.add_argument("--annotate", metavar="DIR", help="write each image to DIR with the digit's box and the answer "
                   "drawn on it (orange: unsure), to see what was read")
    p.add_argument("--model", help="output folder or .safetensors (default: the bundled pretrained model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--top-k", type=whole(1), default=1, metavar="K", help="show the K most probable digits")
    p.add_argument("--save-preprocessed", metavar="DIR", help="write the 28x28 image the network saw for each input")
    p.add_argument("--number", action="store_true",
                   help="each image holds a row of digits written left to right: read them all (\"2026\")")
    p.set_defaults(func=cmd_predict)


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="see inside the network: every layer's maps for an image (no torch needed)",
                       description=textwrap.fill(
                           "One figure, top to bottom like the text's: the image as given, the 28x28 the network "
                           "saw, every layer by its name and shape, the learned C1 and C3 kernels, and which "
                           "pixels decided (occlusion saliency for the answer and the runner-up).", 78),
                       formatter_class=Help, epilog=EXAMPLES["explain"])
    p.add_argument("image", help="an image file of one digit")
    p.add_argument("--model", help="output folder or .safetensors (default: the bundled pretrained model)")
    p.add_argument("--output", metavar="FILE", help="the PNG to write (default: explain-<image name>.png here)")
    p.add_argument("--json", action="store_true", help="print every layer's name, shape and values as JSON instead")
    p.set_defaults(func=cmd_explain)


def add_export(sub) -> None:
    from lenet.export import OPSET  # torch-free: export.py imports onnx and torch inside its function

    p = sub.add_parser("export", help="export a saved model to ONNX, or as a static drawing page (--web)",
                       formatter_class=Help,
                       epilog=EXAMPLES["export"])
    p.add_argument("--model", help="output folder or .safetensors (default: the bundled pretrained model)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", help="the .onnx file to write")
    where.add_argument("--web", metavar="DIR", help="write a static site into DIR: a drawing page that reads "
                       "digits in the browser, no server (open DIR/index.html, or host the folder anywhere)")
    p.add_argument("--opset", type=whole(13, 30), default=OPSET, help="ONNX opset version")
    p.set_defaults(func=cmd_export)


def add_teach(sub) -> None:
    from lenet.data.samples import MODEL

    p = sub.add_parser("teach", help="fine-tune a model on your own samples (DIR/7/*.png, ...)",
                       description=textwrap.fill(
                           "Fine-tune a model on the samples in DIR (one folder per label: DIR/0, DIR/1, ...; "
                           "any image predict reads), mixed with replayed MNIST training digits so that nothing "
                           "else is forgotten, each sample seen in many small distortions. Prints what it did "
                           "and the MNIST test accuracy before and after; writes a new model.", 78),
                       formatter_class=Help, epilog=EXAMPLES["teach"])
    p.add_argument("samples", metavar="DIR", help="the samples folder (lenet serve --learn keeps one)")
    p.add_argument("--model", help="the model to start from (default: the bundled pretrained model)")
    p.add_argument("--out", help=f"the model file (or folder) to write (default: DIR/{MODEL})")
    p.add_argument("--steps", type=whole(1, 10_000), default=None, metavar="N",
                   help="optimizer steps (default: 150)")
    p.add_argument("--seed", type=whole(0, 2**31 - 1), default=0, help="seeds the draws and the distortions")
    p.add_argument("--data-dir", help="MNIST, for replay and scoring (default: as for train)")
    p.add_argument("--threads", type=whole(1, 1024),
                   help="CPU threads (default: the cores not busy with other work, measured at the start)")
    p.set_defaults(func=cmd_teach)


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="HTTP prediction API and a drawing page",
                       formatter_class=Help,
                       epilog=EXAMPLES["serve"])
    p.add_argument("--model", help="output folder or .safetensors (default: the bundled pretrained model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it to the network")
    p.add_argument("--port", type=whole(1, 65535), default=8000, help="TCP port to listen on")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a client must send its whole request within this (408), and read each "
                        "answer without stalling this long; slower connections are closed")
    p.add_argument("--max-connections", type=whole(1, 100_000), default=256, metavar="N",
                   help="open connections at once (per worker process); more are answered 503")
    p.add_argument("--workers", type=whole(1, 64), default=None, metavar="N",
                   help=f"server processes sharing the port, about 60 MB each (default: one per core, "
                        f"at most {MAX_DEFAULT_WORKERS})")
    p.add_argument("--learn", action="store_true",
                   help="corrections sent from the page (POST /teach) are stored as samples, and after a few "
                        "the model is fine-tuned on them in the background (needs the train extra); one "
                        "worker process")
    p.add_argument("--samples", metavar="DIR", help="the samples folder for --learn (default: the user data "
                   "folder's lenet/samples)")
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lenet", description="LeNet handwritten digit recognition on MNIST.")
    parser.add_argument("--version", action="version", version=f"lenet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train(sub)
    add_evaluate(sub)
    add_predict(sub)
    add_explain(sub)
    add_export(sub)
    add_teach(sub)
    add_serve(sub)
    return parser


def choose_recipe(args) -> Recipe:
    """The named recipe (or --arch's own) with each flag given overriding its field."""
    recipe = RECIPES[args.recipe or DEFAULT_RECIPE[args.arch or "lenet5"]]
    return recipe.override(**{f.name: getattr(args, f.name) for f in Recipe.knobs()})  # Recipe checks them


def cmd_train(args) -> int:
    from lenet import cpu

    threads = cpu.prepare(args.threads)  # before torch is imported: OpenMP reads its settings once

    from lenet.data import mnist as datasets
    from lenet.files import check_writable_dir, printable
    from lenet.nn.model_file import MODEL_FILE
    from lenet.training.checkpoint import CHECKPOINT_FILE, recorded_data_dir
    from lenet.training.distributed import setup
    from lenet.evaluation.scoring import resolve_device
    from lenet.training.run import RunOptions, train_on

    recipe = None if args.resume else choose_recipe(args)  # bad values are refused before any work
    out = Path(args.out)
    if not (args.resume or args.overwrite) and (out / MODEL_FILE).is_file():
        raise ValueError(f"--out {out} already holds a finished model ({out / MODEL_FILE}): pass --overwrite "
                         f"to replace it, --resume to train it further, or choose another --out")
    dist = setup(resolve_device(args.device))  # one process, or one rank of a torchrun job
    if dist.is_main:
        print(threads, file=sys.stderr)
        if recipe is not None and recipe.arch == "lenet5" and recipe.activation == "sigmoid" and recipe.epochs <= 2:
            print(f"note: lenet5 with sigmoid learns slowly in {recipe.epochs} epoch(s); "
                  f"for a quick run that learns, use --recipe fast", file=sys.stderr)
        check_writable_dir(out, "--out")  # now, not after the training
    data_dir = args.data_dir
    if args.resume and data_dir is None:
        data_dir = recorded_data_dir(out / CHECKPOINT_FILE)
    try:
        ds = datasets.load(data_dir, download=dist.is_main)
        options = RunOptions(resume=args.resume, seed=args.seed, subset=args.subset, holdout=args.holdout,
                             epochs=args.epochs if args.resume else None, log_every=args.log_every,
                             progress=sys.stderr.isatty(), plots=not args.no_plots,
                             checkpoint_every=args.checkpoint_every, snapshots=args.snapshots,
                             # `python -m lenet` and torchrun run the same command
                             command="lenet " + shlex.join(args.argv))
        info = train_on(ds, recipe, out, options, dist=dist, log=print_printable)
    except RuntimeError as e:  # torch.distributed.DistError and gloo's connection errors
        if not dist.active:
            raise
        # Another rank died or hung: end this one with a message; torchrun ends the job.
        raise ValueError(f"rank {dist.rank}: lost contact with another process ({str(e).splitlines()[0]}); "
                         f"the last checkpoint in {out} is intact: continue with --resume") from None
    finally:
        dist.close()
    if dist.is_main:
        print(f"saved {printable(out / 'model.safetensors')}: {info['validation']} accuracy "
              f"{info['metrics'].get('val_accuracy', float('nan')):.4f}")
    return 0


def print_printable(*parts, **kw) -> None:
    """print, with control characters in what it prints escaped (training's log names --out)."""
    from lenet.files import printable

    print(*(printable(p) for p in parts), **kw)


def cmd_evaluate(args) -> int:
    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import evaluate_models, format_table
    from lenet.files import printable

    if args.folder is not None:
        return evaluate_folder(args)
    paths = args.model or [default_model()]
    if args.report:
        from lenet.files import check_writable_dir
        check_writable_dir(args.report, "--report")  # now, not after the evaluation
    ds = datasets.load(args.data_dir)
    result = evaluate_models(paths, ds, args.device)
    if args.report:
        from lenet.evaluation.report import write_report
        result["report"] = write_report(result, ds, Path(args.report))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, allow_nan=False))
        return 0
    print(printable(format_table(result), keep_lines=True))
    if args.report:
        from lenet.evaluation.report import format_mistakes, format_per_class
        print(format_per_class(result["report"]["per_class"]))
        print(format_mistakes(result["report"]))
        print(f"report written to {printable(args.report)}: confusion.png, mistakes.png, report.json")
    return 0


def evaluate_folder(args) -> int:
    """`lenet evaluate DIR`: one model, torch-free, on the user's labelled images."""
    from lenet.cpu import one_blas_thread

    one_blas_thread()  # the images are spread over one process per core, as in predict
    from lenet.evaluation.folder import format_folder_score, score_folder
    from lenet.nn.numpy_model import NumpyModel

    if args.model and len(args.model) > 1:
        raise ValueError("a folder is scored with one --model (an ensemble only on the test set)")
    if args.report:
        raise ValueError("--report is for the test set; for a folder, --json gives every mistake")
    score = score_folder(NumpyModel.load((args.model or [default_model()])[0]), Path(args.folder))
    print(json.dumps(score.to_json()) if args.json else format_folder_score(score))
    return 0


PROGRESS_FROM = 200  # files: fewer are done before a bar would be worth reading


class Progress:
    """A one-line progress bar on stderr (a terminal) for `lenet predict` on many files: done,
    total, images/s and the time left, redrawn at most five times a second. Results printed to
    the same terminal go above it (`clear_for` wipes the bar before such a line). Plain text,
    not tqdm: predicting needs NumPy and Pillow only.

    The rate is an exponential moving average of the rate between redraws, measured from the
    first result on (not from the start, which holds the process pool's start-up), and nothing is
    estimated before SETTLE_ITEMS results and SETTLE_SECONDS: results come in chunks, so an early
    estimate is off by orders of magnitude."""

    WIDTH = 30
    SETTLE_ITEMS = 20
    SETTLE_SECONDS = 2.0
    SMOOTHING = 0.3  # the newest rate's weight in the average

    def __init__(self, total: int, stream=None, clock=None):
        import time

        self.total, self.stream, self.clock = total, stream or sys.stderr, clock or time.perf_counter
        self.started = self.clock()
        self.drawn_at = -1.0
        self.drawn = False
        self.first = self.last = None  # (done, time) at the first and at the latest redraw
        self.rate = None  # images/s, smoothed

    def clear_for(self, out) -> None:
        """Wipe the bar if `out` writes to the terminal it is drawn on."""
        if self.drawn and (out is self.stream or out.isatty()):
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False

    def show(self, done: int) -> None:
        now = self.clock()
        if now - self.drawn_at < 0.2 and done < self.total:
            return
        self.drawn_at = now
        if self.last is None:
            self.first = (done, now)
        elif now > self.last[1]:
            recent = (done - self.last[0]) / (now - self.last[1])
            self.rate = recent if self.rate is None else self.SMOOTHING * recent + (1 - self.SMOOTHING) * self.rate
        self.last = (done, now)
        settled = (self.rate is not None and done - self.first[0] >= self.SETTLE_ITEMS
                   and now - self.first[1] >= self.SETTLE_SECONDS)
        if done == self.total:  # the whole run's rate, start-up included: what the summary line says
            elapsed = now - self.started
            rate, left = (f"  {done / elapsed:,.0f}/s" if elapsed > 0 else ""), ""
        elif settled:
            rate, left = f"  {self.rate:,.0f}/s", f", {(self.total - done) / max(self.rate, 1e-9):,.0f} s left"
        else:
            rate, left = "", ""
        filled = self.WIDTH * done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,} images"
                          f"{rate}{left}\033[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def cmd_predict(args) -> int:
    import time

    from lenet.cpu import one_blas_thread

    one_blas_thread()  # a folder is spread over one process per core
    from lenet.files import printable
    from lenet.nn.numpy_model import NumpyModel
    from lenet.reading.predict import (
        check_save_dir,
        collect_inputs,
        format_result,
        predict_numbers,
        public,
        save_preprocessed,
        stream_files,
        subfolders_with_images,
    )
    from lenet.reading.region import Region, write_annotated

    region = Region.parse(args.crop) if args.crop else None
    model = NumpyModel.load(args.model or default_model())
    paths = collect_inputs(args.inputs, args.recursive)
    skipped = [] if args.recursive else [d for item in args.inputs if Path(item).is_dir()
                                         for d in subfolders_with_images(Path(item))]
    if not paths:
        raise ValueError("no image files found in " + ", ".join(args.inputs)
                         + (f" (but in {len(skipped)} of its subfolders: add --recursive)" if skipped else ""))
    if skipped:
        print(f"note: {len(skipped)} subfolder(s) with images not looked in ({skipped[0]}"
              f"{', ...' if len(skipped) > 1 else ''}); add --recursive to read them too", file=sys.stderr)
    save = check_save_dir(Path(args.save_preprocessed), paths) if args.save_preprocessed else None
    annotate = check_save_dir(Path(args.annotate), paths, "--annotate") if args.annotate else None
    k = min(args.top_k, model.config.num_classes)
    t0 = time.perf_counter()
    if args.number:
        stream = predict_numbers(model, paths, k, region)
    else:
        stream = stream_files(model, paths, k, keep_seen=save is not None, region=region)
    # Results are printed as they come, in input order; a progress bar on stderr when it is a
    # terminal and the folder is large.
    progress = Progress(len(paths)) if sys.stderr.isatty() and len(paths) >= PROGRESS_FROM else None
    results, done, failed, drawn = [], 0, 0, 0
    for r in stream:  # printed before anything is saved: a failed save loses no prediction
        line = json.dumps(public(r), allow_nan=False) if args.json else printable(format_result(r))
        out = sys.stderr if "error" in r and not args.json else sys.stdout
        if progress is not None:
            progress.clear_for(out)
        print(line, file=out)
        done, failed = done + 1, failed + ("error" in r)
        if save is not None:
            results.append(r)
        if annotate is not None:
            drawn += write_annotated(annotate, r, region) is not None
        if progress is not None:
            progress.show(done)
    if progress is not None:
        progress.close()
    seconds = time.perf_counter() - t0
    rate = done / seconds if seconds > 0 else 0.0
    print(f"{done - failed} predicted, {failed} failed, {rate:,.0f} images/s", file=sys.stderr)
    if annotate is not None:
        print(f"wrote {drawn} annotated images to {annotate}", file=sys.stderr)
    if save is not None:
        written = save_preprocessed(save, results)
        # The names save_preprocessed gives when they are free: <name>.png, or <name>-d1.png ... per digit
        plain = [Path(r["file"]).stem + (f"-d{i + 1}" if args.number else "")
                 for r in results if "_seen" in r for i in range(len(r["_seen"]) if args.number else 1)]
        renamed = sum(p.stem != stem for p, stem in zip(written, plain))
        print(f"wrote {len(written)} preprocessed images{' (one per digit)' if args.number else ''} to {printable(save)}"
              + (f" ({renamed} under numbered names: the plain names were taken)" if renamed else ""),
              file=sys.stderr)
    return 1 if failed else 0


def cmd_explain(args) -> int:
    from lenet.evaluation.explain import draw_figure, explain, to_json
    from lenet.files import check_writable_file, printable
    from lenet.nn.numpy_model import NumpyModel
    from lenet.reading.image import load_image

    output = Path(args.output or f"explain-{Path(args.image).stem}.png")
    model_path = args.model or default_model()
    if not args.json:
        check_writable_file(output, "--output", inputs=[args.image, *model_files(model_path)])
    model = NumpyModel.load(model_path)
    pixels = load_image(args.image)
    result = explain(model, pixels)
    if args.json:
        print(json.dumps(to_json(result), allow_nan=False))
        return 0
    draw_figure(result, model, pixels, output)
    p = result["probabilities"]
    print(f"wrote {printable(output)}: {printable(args.image)} reads as {result['digit']} ({p[result['digit']]:.4f}), "
          f"runner-up {result['runner_up']} ({p[result['runner_up']]:.4f})")
    return 0


def cmd_export(args) -> int:
    if args.web:
        return cmd_export_web(args)
    import onnx  # noqa: F401 - fail early, before torch loads, when the export extra is missing

    from lenet.export import export_onnx
    from lenet.files import check_writable_file, printable

    model_path = args.model or default_model()
    check_writable_file(args.output, "--output", inputs=model_files(model_path))  # now, not after the export

    meta = export_onnx(model_path, args.output, args.opset)
    contract = json.loads(meta["input_contract"])
    print(f"wrote {printable(args.output)}: input {contract['input']} {contract['shape']} {contract['dtype']} "
          f"(0..255, white on black), output {contract['output']} {contract['output_shape']}")
    return 0


def cmd_export_web(args) -> int:
    from lenet.web import write_site  # torch- and onnx-free

    site = write_site(args.web, args.model or default_model())
    print(f"wrote {site.directory}: {', '.join(site.files)} ({site.runtime_bytes / 1024:.0f} KB of page and "
          f"script, {site.model_bytes / 1024:.0f} KB of model); open {site.directory / 'index.html'} in a browser, "
          f"or host the folder (python -m http.server -d {site.directory} -b 127.0.0.1)")
    return 0


def cmd_teach(args) -> int:
    from lenet import cpu

    threads = cpu.prepare(args.threads)  # before torch is imported: OpenMP reads its settings once
    print(threads, file=sys.stderr)
    from lenet.data import mnist as datasets
    from lenet.training.teach import Teaching, teach

    teaching = Teaching() if args.steps is None else Teaching(steps=args.steps)
    ds = datasets.load(args.data_dir)
    teach(args.samples, ds, args.model or default_model(), args.out, teaching=teaching, seed=args.seed,
          command="lenet " + shlex.join(args.argv))
    return 0


def cmd_serve(args) -> int:
    from lenet.cpu import one_blas_thread, usable_cores

    one_blas_thread()  # batch-1 inference, one process per core
    from lenet.serving.app import serve

    if not 0 < args.timeout <= 3600:
        raise ValueError(f"--timeout must be from 0 to 3600 seconds, got {args.timeout}")
    workers = args.workers or min(usable_cores(), MAX_DEFAULT_WORKERS)
    if args.samples and not args.learn:
        raise ValueError("--samples is the folder --learn keeps its samples in: give --learn too")
    samples = None
    if args.learn:
        from lenet.data.samples import default_dir
        samples = args.samples or default_dir()
    serve(args.model, args.host, args.port, args.timeout, args.max_connections, workers, samples)
    return 0


def default_model() -> str:
    from lenet.pretrained import bundled_model_path
    return str(bundled_model_path())


def model_files(model: str) -> list[Path]:
    """The files --model names (a folder: its model.safetensors and .json), which an --output must not replace."""
    path = Path(model)
    if path.is_dir():
        from lenet.nn.model_file import MODEL_FILE
        path = path / MODEL_FILE
    return [Path(model), path, path.with_suffix(".json")]


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `lenet ... | head` ends quietly
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not valid UTF-8 must not end the run with UnicodeEncodeError.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    from lenet.files import printable  # a file name in a message is shown escaped, never raw

    try:
        return args.func(args)
    except ValueError as e:
        print(f"lenet {args.command}: error: {printable(e, keep_lines=True)}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, read-only file system, permissions: one line, not a traceback
        where = f" ({printable(e.filename)})" if e.filename else ""
        print(f"lenet {args.command}: error: {printable(e.strerror or e)}{where}", file=sys.stderr)
        return 1
    except ImportError as e:  # an optional dependency of this command is not installed
        extra = EXTRAS.get((e.name or "").split(".")[0], COMMAND_EXTRA.get(args.command, "dev"))
        print(f"lenet {args.command}: error: needs {e.name}, which is not installed: "
              f"{install_command(extra)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # train's Interrupted says where its checkpoint is
        print(f"lenet {args.command}: {printable(e or 'interrupted')}", file=sys.stderr)
        return 130
