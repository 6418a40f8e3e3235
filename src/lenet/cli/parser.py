"""The `lenet` command's arguments: one parser, a subparser per command, each flag's help and default."""

from __future__ import annotations

import argparse
import textwrap

from lenet import __version__
from lenet.cli import commands
from lenet.cli.commands import MAX_DEFAULT_WORKERS
from lenet.config import DEFAULT_RECIPE, RECIPES, Recipe

EXAMPLES = {  # the end of each command's --help
    "train": """examples:
  lenet train                                   # LeNet-5, the text's network, 20 epochs into ./output
  lenet train --recipe fast --out runs/fast     # 99.2% in one epoch, in seconds
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
    p.add_argument("--log-every", type=whole(0), default=50, metavar="N",
                   help="print loss and accuracy every N batches")
    p.add_argument("--threads", type=whole(1, 1024),
                   help="CPU threads (default: the cores not busy with other work, measured at the start)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--snapshots", action="store_true", help="record how C1's filters learn: learning.png and "
                   "learning.gif in --out (8 snapshots in the first epoch, then one per epoch)")
    p.set_defaults(func=commands.cmd_train)


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
    p.add_argument("--shifts", type=int, choices=(0, 4, 8), default=0,
                   help="test-time augmentation: average each model's probabilities over the image and its 4 or "
                        "8 one-pixel shifts (default: 0, none); MNIST test set only")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=commands.cmd_evaluate)


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
    p.set_defaults(func=commands.cmd_predict)


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
    p.set_defaults(func=commands.cmd_explain)


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
    p.set_defaults(func=commands.cmd_export)


def add_teach(sub) -> None:
    from lenet.files import MODEL_FILE as MODEL  # not lenet.data.samples: parsing must not load NumPy

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
                   help="optimizer steps (default: 900)")
    p.add_argument("--seed", type=whole(0, 2**31 - 1), default=0, help="seeds the draws and the distortions")
    p.add_argument("--data-dir", help="MNIST, for replay and scoring (default: as for train)")
    p.add_argument("--threads", type=whole(1, 1024),
                   help="CPU threads (default: the cores not busy with other work, measured at the start)")
    p.set_defaults(func=commands.cmd_teach)


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
    p.set_defaults(func=commands.cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lenet", description="LeNet handwritten digit recognition on MNIST.")
    parser.add_argument("--version", action="version", version=f"lenet {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, show its whole stack instead of one line (also: LENET_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train(sub)
    add_evaluate(sub)
    add_predict(sub)
    add_explain(sub)
    add_export(sub)
    add_teach(sub)
    add_serve(sub)
    return parser

