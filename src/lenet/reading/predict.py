"""Predict digits in people's own image files: decode, preprocess, one batched forward pass.

Every input gets a result: a digit with its probabilities, or an error saying
why that file could not be used. One bad file never stops the others.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lenet.errors import LenetError
from lenet.reading import search
from lenet.reading.digit import Reading, at_scale, read_digit
from lenet.reading.image import decode_image
from lenet.reading.ink import as_box
from lenet.reading.morphology import Box
from lenet.reading.number import MAX_DIGITS, Piece, TooManyDigits, check_time, read_row
from lenet.reading.prediction import FileReading, NumberReading, Prediction


def top_k(probabilities: np.ndarray, k: int) -> tuple[tuple[int, float], ...]:
    order = np.argsort(-probabilities)[:k]
    return tuple((int(d), float(probabilities[d])) for d in order)


def prediction_of(probabilities: np.ndarray, seen: np.ndarray, k: int = 1) -> Prediction:
    """The network's answer for one image from its `probabilities` (one per class), before any
    judgement: the box is the whole of `seen`, the image it was given."""
    best = int(probabilities.argmax())
    return Prediction(best, round(float(probabilities[best]), 6), tuple(round(float(v), 6) for v in probabilities),
                      seen, Box(0, 0, seen.shape[1], seen.shape[0]), top=top_k(probabilities, k) if k > 1 else ())


def predict_images(model, images: np.ndarray, k: int = 1) -> list[Prediction]:
    """The answers for preprocessed uint8 images (N, 28, 28), one batched forward pass."""
    return [prediction_of(p, image, k) for p, image in zip(model.probabilities(images), images, strict=True)]


# p(not one digit) above which an answer is doubted: chosen so that few right answers on the last
# 5,000 training digits (which neither network trains on) score higher (docs/reading.md).
JUNK_ABOVE = 0.35

_rejector = None  # the bundled rejector, loaded on first use and kept


def rejector():
    """The bundled network with an 11th class, "not one digit" (scripts/train_reject.py), loaded once."""
    global _rejector
    if _rejector is None:
        from lenet.nn.numpy_model import NumpyModel
        from lenet.pretrained import rejector_path

        _rejector = NumpyModel.load(rejector_path())
    return _rejector


def junk_of(images: np.ndarray) -> np.ndarray:
    """p(not one digit) of each (N, 28, 28) uint8 image, by the rejector, in one pass."""
    if len(images) == 0:
        return np.zeros(0, np.float32)
    return rejector().probabilities(images)[:, -1]


def not_a_digit(p_junk: float) -> str:
    return f"does not look like a digit (p = {p_junk:.2f} that it is not one digit)"


# One row or column of a digit's 28x28 crosses at most this many strokes (an 8's middle column
# three, a few scrawled digits four); a spiral's or a coil's cross more. Ink: at least a quarter on.
MAX_CROSSINGS, CROSSING_INK = 4, 64


def crossings(images: np.ndarray) -> np.ndarray:
    """The most strokes one row or one column crosses, for each (N, 28, 28) uint8 image."""
    ink = images >= CROSSING_INK
    across = (ink[:, :, 1:] & ~ink[:, :, :-1]).sum(2) + ink[:, :, 0]
    down = (ink[:, 1:, :] & ~ink[:, :-1, :]).sum(1) + ink[:, 0, :]
    return np.maximum(across.max(1), down.max(1))


def coiled(n: int) -> str:
    return f"does not look like a digit (one line across it crosses {n} strokes)"


def doubts_of(model, probability: float, reading: Reading, p_junk: float | None = None) -> list[str]:
    """Why not to trust an answer of `probability`: what the preprocessing saw, a probability under
    the model's calibrated threshold (calibration.py), and the rejector's p(not one digit) over
    JUNK_ABOVE (`p_junk`: computed here when not given) or, failing that, strokes crossed more
    often than a digit's (a spiral)."""
    doubts = list(reading.doubts)
    if probability < model.config.unsure_below:
        p, threshold = under(probability, model.config.unsure_below)
        doubts.append(f"low probability ({p}, under {threshold})")
    if p_junk is None:
        p_junk = float(junk_of(reading.image[None])[0])
    if p_junk > JUNK_ABOVE:
        doubts.append(not_a_digit(p_junk))
    elif (n := int(crossings(reading.image[None])[0])) > MAX_CROSSINGS:
        doubts.append(coiled(n))
    return doubts


def under(p: float, threshold: float) -> tuple[str, str]:
    """p and threshold (p < threshold) printed with the fewest decimals, at least two, that show p
    under the threshold: never "0.94, under 0.94"."""
    for places in range(2, 10):
        a, b = f"{p:.{places}f}", f"{threshold:.{places}f}"
        if float(a) < float(b):
            return a, b
    return repr(p), repr(threshold)


def judged(model, prediction: Prediction, reading: Reading, p_junk: float | None = None) -> Prediction:
    """`prediction` of `reading` with its `unsure` flag, the reasons, and where the digit is."""
    doubts = doubts_of(model, prediction.probability, reading, p_junk)
    return replace(prediction, seen=reading.image, box=reading.box, unsure=bool(doubts), doubts=tuple(doubts))


def judge_readings(model, readings: list[Reading], k: int = 1) -> list[Prediction]:
    """The judged predictions (`judged`) of `readings`, in order: the network and the rejector
    each run once over them all."""
    if not readings:
        return []
    images = np.stack([r.image for r in readings])
    return [judged(model, pred, reading, float(p_junk))
            for pred, reading, p_junk in zip(predict_images(model, images, k), readings, junk_of(images), strict=True)]


def predict_each(model, items, prepare, k: int = 1) -> list[Prediction | LenetError]:
    """One result per item, in order: `prepare(item)` makes the Reading, and every image that could
    be read is predicted in one batched pass; an item whose `prepare` raised a LenetError keeps its
    place with the error instead. One bad input never stops the others."""
    readings: dict[int, Reading] = {}
    results: dict[int, Prediction | LenetError] = {}
    for i, item in enumerate(items):
        try:
            readings[i] = prepare(item)
        except LenetError as e:
            results[i] = e
    results.update(zip(readings, judge_readings(model, list(readings.values()), k), strict=True))
    return [results[i] for i in sorted(results)]


# A digit whose marks the best path weighing the rejector by one of these reads otherwise is doubted:
# a reading that holds only at one weighing of the two networks is a guess between them.
REWEIGH_JUNK = (0.3, 3.0)
# A way of cutting that scores within this of the best, reading other digits, makes the cut doubtful
# (chosen on numbers of held-out training digits: scripts/number_doubts.py).
CUT_MARGIN = 0.0
# A digit of a number over this p(not one digit) is doubted (number_doubts): with the model's own
# threshold on its probability and REWEIGH_JUNK, the rule that caught most wrong numbers of held-out
# training digits while flagging at most a tenth of the right ones (scripts/number_doubts.py --n 1200
# --seed 1). A doubt for digits over 1.3 row heights wide, tried there too, spent that budget better unused.
IN_NUMBER_JUNK_ABOVE = 0.5


def doubtful_cut(other: str) -> str:
    return f"the cut is doubtful: these marks also read as {other}"


def reweighed_cut(other: str) -> str:
    return f"the cut is doubtful: weighing the rejector otherwise reads these marks as {other}"


@dataclass(frozen=True)
class RowDigit:
    """One digit of a row's best path with the evidence its judgement weighs (`number_doubts`)."""
    piece: Piece              # its piece of the row: its reading at the analysis scale, whether cut or bridged
    prediction: Prediction    # the network's answer, before any judgement
    p_junk: float             # the rejector's p(not one digit)
    rival: str | None         # what the nearest path reading otherwise reads over these marks
    margin: float             # how far that path scores behind the best (inf: no such path)
    reweighed: str | None     # what the best path weighing the rejector by REWEIGH_JUNK reads here, if otherwise
    sign: str                 # the minus, point or comma standing before it, or ""


def weigh_row(model, pixels: np.ndarray, k: int = 1, deadline: float | None = None) -> list[RowDigit]:
    """The digits of the row in `pixels` on the path whose pieces look most like digits: of the ways
    to cut the row (`read_row`'s pieces: groups whole or cut, neighbours joined or bridged), the one
    whose pieces score best (`piece_score`: the model's probability and the rejector's p(one digit),
    less `shape_cost`, SPLIT_COST and BRIDGE_COST). Every distinct piece is predicted once, in one
    batched pass. A row of more than MAX_DIGITS digits is refused."""
    row = read_row(pixels, deadline)
    unique = [p.reading for p in row.pieces]
    check_time(deadline)
    images = np.stack([r.image for r in unique])
    predictions = dict(zip((id(r) for r in unique), predict_images(model, images, k), strict=True))
    junk = dict(zip((id(r) for r in unique), (float(p) for p in junk_of(images)), strict=True))
    height = max(r.box.height for r in unique)
    costs = {id(p.reading): search.shape_cost(p.reading.box, height) + (search.BRIDGE_COST if p.joins else 0.0)
             for p in row.pieces}

    def scores_with(weight: float) -> dict[int, float]:
        return {i: search.piece_score(predictions[i], junk[i], weight) - costs[i] for i in predictions}

    chosen = search.best_path(row.pieces, row.nodes, scores_with(search.JUNK_WEIGHT), predictions)
    path = [p for p, _, _ in chosen]
    reweighed: dict[int, str] = {}  # per piece of the path, what a path weighing the rejector otherwise reads
    for weight in REWEIGH_JUNK:
        for piece, text in search.differences(path, search.plain_path(row.pieces, row.nodes, scores_with(weight)),
                                       predictions).items():
            reweighed.setdefault(piece, text)
    if len(chosen) > MAX_DIGITS:
        raise TooManyDigits(f"{len(chosen)} digits in a row: at most {MAX_DIGITS} are read; "
                            f"crop the image to fewer digits")
    before: dict[int, str] = {}  # the digit a sign stands before -> the sign
    for at, char in row.signs:
        first = next((i for i, (p, _, _) in enumerate(chosen) if p.group >= at), None)
        if first is not None:
            before[first] = char
    return [RowDigit(p, predictions[id(p.reading)], junk[id(p.reading)], rival, margin, reweighed.get(id(p)),
                     before.get(i, ""))
            for i, (p, rival, margin) in enumerate(chosen)]


def number_doubts(model, digit: RowDigit) -> list[str]:
    """Why not to trust one digit of a number: what the preprocessing saw, a probability under the
    model's calibrated threshold, the rejector's p(not one digit) over IN_NUMBER_JUNK_ABOVE, strokes
    crossed more often than a digit's, another way of cutting within CUT_MARGIN that reads
    otherwise, or the best path at another weighing of the rejector (REWEIGH_JUNK) reading otherwise."""
    doubts = list(digit.piece.reading.doubts)
    below = model.config.unsure_below
    if digit.prediction.probability < below:
        p, threshold = under(digit.prediction.probability, below)
        doubts.append(f"low probability ({p}, under {threshold})")
    if digit.p_junk > IN_NUMBER_JUNK_ABOVE:
        doubts.append(not_a_digit(digit.p_junk))
    elif (n := int(crossings(digit.piece.reading.image[None])[0])) > MAX_CROSSINGS:
        doubts.append(coiled(n))
    if digit.rival is not None and digit.margin <= CUT_MARGIN:
        doubts.append(doubtful_cut(digit.rival))
    elif digit.reweighed is not None:
        doubts.append(reweighed_cut(digit.reweighed))
    return doubts


def read_digits(model, pixels: np.ndarray, k: int = 1, deadline: float | None = None,
                scale: float = 1.0) -> NumberReading:
    """A row of digits in one image: the number as text (with a leading minus and a decimal point
    or comma where the row has them), each digit with its probability, box,
    `unsure` flag and reasons (`number_doubts`); the whole is unsure when any digit or any cut is.
    The digits are those of `weigh_row`'s best path. A row of more than MAX_DIGITS digits is refused.
    `scale` as for `read_digit`: the boxes in the coordinates of the image as given."""
    digits = []
    text = ""
    for digit in weigh_row(model, pixels, k, deadline):
        doubts = tuple(number_doubts(model, digit))
        reading = at_scale(digit.piece.reading, scale)
        digits.append(replace(digit.prediction, probabilities=(), seen=reading.image, box=reading.box,
                              unsure=bool(doubts), doubts=doubts))
        text += digit.sign + str(digit.prediction.digit)
    return NumberReading(text, tuple(digits))


def predict_numbers(model, paths: list[Path], k: int = 1, region=None):
    """One result per path (a row of digits each: `lenet predict --number`), in order, as each is
    read (the command counts and times them); each digit with its `k` likeliest answers when k > 1,
    read in `region` (a lenet.reading.region.Region) of each image when given."""
    from lenet.reading.region import load_region, shifted

    for p in paths:
        try:
            if region is None:
                pixels, scale = decode_image(p)
                yield FileReading(str(p), read_digits(model, pixels, k, scale=scale))
                continue
            pixels, corner, scale = load_region(p, region)
            result = read_digits(model, pixels, k)
            digits = tuple(replace(d, box=as_box(shifted(d.box, corner, scale))) for d in result.digits)
            yield FileReading(str(p), replace(result, digits=digits))
        except LenetError as e:
            yield FileReading(str(p), error=str(e).removeprefix(f"{p}: "))


POOL_FROM = 64   # files from which reading them is spread over processes (a pool takes ~0.1 s to start)
BATCH = 256      # readings per forward pass
CHUNK = 128      # files per task of a pool process at most: read, preprocessed and predicted together
LAST_CHUNK = 8   # the smallest: the last tasks shrink so that the processes finish together
IN_FLIGHT = 2    # chunks per pool process submitted ahead: enough to keep it busy, few enough to bound memory


def read_file(path: Path, region=None) -> Reading | str:
    """A file's Reading (of its `region` when given, the box still in the whole image's
    coordinates), or the error message (load_image names the file; the entry does already).
    At module level, so a process pool can run it."""
    try:
        if region is None:
            return read_digit(*decode_image(path))
        from lenet.reading.region import load_region, shifted

        pixels, corner, scale = load_region(path, region)
        found = read_digit(pixels)
        return replace(found, box=as_box(shifted(found.box, corner, scale)))
    except LenetError as e:
        return str(e).removeprefix(f"{path}: ")


def stream_files(model, paths: list[Path], k: int = 1, workers: int | None = None, region=None):
    """One result per path, in input order, as they are ready: in a process pool (one process per
    core; in this process for fewer than POOL_FROM files or `workers` 1), each process reading,
    preprocessing and predicting CHUNK files at a time, so this process only passes results on.
    Nothing but the chunks in flight is held, so memory stays flat over any number of files;
    `region` (a lenet.reading.region.Region) is read in each. Each result is a FileReading."""
    from lenet.cpu import usable_cores

    workers = workers or usable_cores()
    if workers > 1 and len(paths) >= POOL_FROM:
        from concurrent.futures import Future, ProcessPoolExecutor

        start, pending = 0, deque[Future]()
        with ProcessPoolExecutor(max_workers=workers, initializer=_hold, initargs=(model,)) as pool:
            # IN_FLIGHT chunks per process submitted, taken in input order: the processes never wait
            # for work, and results cannot pile up when printing (or saving) is slower than reading.
            while start < len(paths) or pending:
                while start < len(paths) and len(pending) < IN_FLIGHT * workers:
                    size = chunk_size(len(paths) - start, workers)
                    pending.append(pool.submit(_predict_chunk, paths[start:start + size], k, region))
                    start += size
                yield from pending.popleft().result()
    else:
        yield from predicted(model, paths, (read_file(p, region) for p in paths), k)


def chunk_size(left: int, workers: int) -> int:
    """Files in the next chunk when `left` remain: a share of them, so the chunks shrink towards
    the end and the processes finish together, not one still at a big last chunk."""
    return max(LAST_CHUNK, min(CHUNK, left // (4 * workers)))


_model = None  # the model a pool process predicts with (set once by its initializer)


def _hold(model) -> None:
    global _model
    _model = model


def _predict_chunk(paths: list[Path], k: int, region=None) -> list[FileReading]:
    return list(predicted(_model, paths, (read_file(p, region) for p in paths), k))


def predicted(model, paths, readings, k: int):
    batch: list = []
    for path, reading in zip(paths, readings, strict=False):
        batch.append((path, reading))
        if len(batch) == BATCH:
            yield from predict_batch(model, batch, k)
            batch = []
    yield from predict_batch(model, batch, k)


def predict_batch(model, batch: list, k: int):
    judgements = iter(judge_readings(model, [r for _, r in batch if not isinstance(r, str)], k))
    for path, reading in batch:
        if isinstance(reading, str):
            yield FileReading(str(path), error=reading)
        else:
            yield FileReading(str(path), next(judgements))


def save_preprocessed(directory: Path, results: list[FileReading]) -> list[Path]:
    """Write each 28x28 image the network saw as DIR/<input name>.png. Never overwrites: a name
    already taken (by an earlier run, or two inputs with one stem) gets a number, -2, -3, ..."""
    from PIL import Image

    written = []
    for r in results:
        for name, image in r.seen():
            stem, n = name, 1
            while True:
                target = directory / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
                try:
                    with open(target, "xb") as f:  # exclusive: fails rather than replace a file
                        Image.fromarray(image, "L").save(f, "PNG")
                    break
                except FileExistsError:
                    n += 1
            written.append(target)
    return written
