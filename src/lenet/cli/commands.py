"""The `lenet` commands: each takes the parsed arguments, calls library functions and prints what they did."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from lenet.cli.progress import PROGRESS_FROM, Progress
from lenet.config import DEFAULT_RECIPE, RECIPES, Recipe
from lenet.errors import ExitStatus, ImageError, LenetError, UsageError

MAX_DEFAULT_WORKERS = 8  # lenet serve's processes unless --workers says: one per core up to this


def choose_recipe(args) -> Recipe:
    """The named recipe (or --arch's own) with each flag given overriding its field."""
    recipe = RECIPES[args.recipe or DEFAULT_RECIPE[args.arch or "lenet5"]]
    chosen = recipe.override(**{f.name: getattr(args, f.name) for f in Recipe.knobs()})  # Recipe checks them
    given = [f"--{name}" for name in ("beta1", "beta2") if getattr(args, name, None) is not None]
    if given and chosen.optimizer == "sgd":
        raise UsageError(f"{' and '.join(given)} set Adam's decays, and the optimizer is sgd: add --optimizer adam "
                         f"(or adamw), or leave {' and '.join(given)} out")
    return chosen


def cmd_train(args) -> int:
    from lenet import cpu

    threads = cpu.prepare(args.threads)  # before torch is imported: OpenMP reads its settings once

    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import resolve_device
    from lenet.files import check_writable_dir, printable
    from lenet.nn.model_file import MODEL_FILE
    from lenet.training.checkpoint import CHECKPOINT_FILE, recorded_data_dir
    from lenet.training.distributed import setup
    from lenet.training.run import RunOptions, train_on

    recipe = None if args.resume else choose_recipe(args)  # bad values are refused before any work
    out = Path(args.out)
    # An elastic restart runs the same command again: it resumes (or refuses) on its own terms.
    elastic_restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
    if not (args.resume or args.overwrite or elastic_restart) and (out / MODEL_FILE).is_file():
        raise UsageError(f"--out {out} already holds a finished model ({out / MODEL_FILE}): pass --overwrite "
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
        raise LenetError(f"rank {dist.rank}: lost contact with another process ({str(e).splitlines()[0]}); "
                         f"the last checkpoint in {out} is intact: continue with --resume") from None
    finally:
        dist.close()
    if dist.is_main:
        print(f"saved {printable(out / 'model.safetensors')}: {info['validation']} accuracy "
              f"{info['metrics'].get('val_accuracy', float('nan')):.4f}")
    return ExitStatus.SUCCESS


def print_printable(*parts, **kw) -> None:
    """print, with control characters in what it prints escaped (training's log names --out)."""
    from lenet.files import printable

    print(*(printable(p) for p in parts), **kw)


def cmd_evaluate(args) -> int:
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # the NumPy pass: two BLAS threads on two cores only fight
        from lenet.cpu import one_blas_thread

        one_blas_thread()
    from lenet.data import mnist as datasets
    from lenet.evaluation.scoring import evaluate_models, format_table
    from lenet.files import printable

    if args.folder is not None:
        if args.shifts:
            raise UsageError("--shifts is for the MNIST test set; a folder of your images is read as predict reads it")
        return evaluate_folder(args)
    paths = args.model or [default_model()]
    if args.report:
        from lenet.files import check_writable_dir
        check_writable_dir(args.report, "--report")  # now, not after the evaluation
    ds = datasets.load(args.data_dir)
    result = evaluate_models(paths, ds, args.device, args.shifts)
    if args.report:
        from dataclasses import replace

        from lenet.evaluation.report import write_report
        result = replace(result, report=write_report(result, ds, Path(args.report)))
    if args.json:
        print(json.dumps(result.to_json(), allow_nan=False))
        return ExitStatus.SUCCESS
    print(printable(format_table(result), keep_lines=True))
    if result.report is not None:
        from lenet.evaluation.report import format_mistakes, format_per_class
        print(format_per_class(result.report["per_class"]))
        print(format_mistakes(result.report))
        print(f"report written to {printable(args.report)}: confusion.png, mistakes.png, report.json")
    return ExitStatus.SUCCESS


def evaluate_folder(args) -> int:
    """`lenet evaluate DIR`: one model, torch-free, on the user's labelled images."""
    from lenet.cpu import one_blas_thread

    one_blas_thread()  # the images are spread over one process per core, as in predict
    from lenet.evaluation.folder import format_folder_score, score_folder
    from lenet.nn.numpy_model import NumpyModel

    if args.model and len(args.model) > 1:
        raise UsageError("a folder is scored with one --model (an ensemble only on the test set)")
    if args.report:
        raise UsageError("--report is for the test set; for a folder, --json gives every mistake")
    score = score_folder(NumpyModel.load((args.model or [default_model()])[0]), Path(args.folder))
    print(json.dumps(score.to_json()) if args.json else format_folder_score(score))
    return ExitStatus.SUCCESS


def cmd_predict(args) -> int:
    import time

    from lenet.cpu import one_blas_thread

    one_blas_thread()  # a folder is spread over one process per core
    from lenet.files import printable
    from lenet.nn.numpy_model import NumpyModel
    from lenet.reading.inputs import check_save_dir
    from lenet.reading.predict import predict_numbers, stream_files
    from lenet.reading.region import Region, write_annotated

    region = Region.parse(args.crop) if args.crop else None
    model = NumpyModel.load(args.model or default_model())
    paths = input_paths(args.inputs, args.recursive)
    save = check_save_dir(Path(args.save_preprocessed), paths) if args.save_preprocessed else None
    annotate = check_save_dir(Path(args.annotate), paths, "--annotate") if args.annotate else None
    k = min(args.top_k, model.config.num_classes)
    t0 = time.perf_counter()
    if args.number:
        stream = predict_numbers(model, paths, k, region)
    else:
        stream = stream_files(model, paths, k, region=region)
    # Results are printed as they come, in input order; a progress bar on stderr when it is a
    # terminal and the folder is large.
    progress = Progress(len(paths)) if sys.stderr.isatty() and len(paths) >= PROGRESS_FROM else None
    results, done, failed, drawn = [], 0, 0, 0
    for r in stream:  # printed before anything is saved: a failed save loses no prediction
        line = json.dumps(r.to_json(), allow_nan=False) if args.json else printable(r.text())
        out = sys.stderr if r.error is not None and not args.json else sys.stdout
        if progress is not None:
            progress.clear_for(out)
        print(line, file=out)
        done, failed = done + 1, failed + (r.error is not None)
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
        save_and_say(save, results, args.number)
    return ExitStatus.ERROR if failed else ExitStatus.SUCCESS


def input_paths(inputs: list[str], recursive: bool) -> list[Path]:
    """The image files to read; a folder's subfolders with images are named when not read."""
    from lenet.reading.inputs import collect_inputs, subfolders_with_images

    paths = collect_inputs(inputs, recursive)
    skipped = [] if recursive else [d for item in inputs if Path(item).is_dir()
                                    for d in subfolders_with_images(Path(item))]
    if not paths:
        raise ImageError("no image files found in " + ", ".join(inputs)
                         + (f" (but in {len(skipped)} of its subfolders: add --recursive)" if skipped else ""))
    if skipped:
        print(f"note: {len(skipped)} subfolder(s) with images not looked in ({skipped[0]}"
              f"{', ...' if len(skipped) > 1 else ''}); add --recursive to read them too", file=sys.stderr)
    return paths


def save_and_say(save: Path, results: list, number: bool) -> None:
    """--save-preprocessed: write each 28x28 the network saw (`results`: FileReadings), and say where
    and under which names."""
    from lenet.files import printable
    from lenet.reading.predict import save_preprocessed

    written = save_preprocessed(save, results)
    plain = [name for r in results for name, _ in r.seen()]  # the names given when they are free
    renamed = sum(p.stem != stem for p, stem in zip(written, plain, strict=False))
    print(f"wrote {len(written)} preprocessed images{' (one per digit)' if number else ''} to {printable(save)}"
          + (f" ({renamed} under numbered names: the plain names were taken)" if renamed else ""),
          file=sys.stderr)


def cmd_explain(args) -> int:
    from lenet.evaluation.explain import draw_figure, explain
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
        print(json.dumps(result.to_json(), allow_nan=False))
        return ExitStatus.SUCCESS
    draw_figure(result, model, pixels, output)
    p = result.probabilities
    print(f"wrote {printable(output)}: {printable(args.image)} reads as {result.digit} ({p[result.digit]:.4f}), "
          f"runner-up {result.runner_up} ({p[result.runner_up]:.4f})")
    return ExitStatus.SUCCESS


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
    return ExitStatus.SUCCESS


def cmd_export_web(args) -> int:
    from lenet.web import write_site  # torch- and onnx-free

    site = write_site(args.web, args.model or default_model())
    print(f"wrote {site.directory}: {', '.join(site.files)} ({site.runtime_bytes / 1024:.0f} KB of page and "
          f"script, {site.model_bytes / 1024:.0f} KB of model); open {site.directory / 'index.html'} in a browser, "
          f"or host the folder (python -m http.server -d {site.directory} -b 127.0.0.1)")
    return ExitStatus.SUCCESS


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
    return ExitStatus.SUCCESS


def cmd_serve(args) -> int:
    from lenet.cpu import one_blas_thread, usable_cores

    one_blas_thread()  # batch-1 inference, one process per core
    from lenet.serving.app import serve

    if not 0 < args.timeout <= 3600:
        raise UsageError(f"--timeout must be from 0 to 3600 seconds, got {args.timeout}")
    workers = args.workers or min(usable_cores(), MAX_DEFAULT_WORKERS)
    if args.samples and not args.learn:
        raise UsageError("--samples is the folder --learn keeps its samples in: give --learn too")
    samples = None
    if args.learn:
        from lenet.data.samples import default_dir
        samples = args.samples or default_dir()
    serve(args.model, args.host, args.port, args.timeout, args.max_connections, workers, samples)
    return ExitStatus.SUCCESS


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
