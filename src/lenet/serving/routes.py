"""The routes: the drawing page, health and model info, and reading an image (/predict,
/predict/number, /explain, /predict/batch). Each reads the model from the app's state."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from lenet import __version__
from lenet.evaluation.explain import explain_seen
from lenet.nn.model_file import test_accuracy
from lenet.reading.number import MAX_DIGITS
from lenet.reading.predict import judged, predict_each, prediction_of, read_digits
from lenet.reading.prediction import Prediction
from lenet.serving.batcher import INLINE_PIXELS, in_worker
from lenet.serving.inputs import MAX_BATCH, RequestError, check_pixel_budget, content_type, decode, form_files, prepared
from lenet.serving.schema import BatchAnswer, ExplainAnswer, NumberAnswer, PredictionAnswer

BATCH_SECONDS = 5.0
NUMBER_SECONDS = 2.0  # the time one /predict/number image may take to read (its work is bounded too: number.py)
STATIC = Path(__file__).parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC / "index.html")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon():
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/health")
async def health(request: Request):
    return {"status": "ok", "uptime_seconds": round(time.time() - request.app.state.started, 1)}


@router.get("/model")
async def model_info(request: Request):
    model = request.app.state.model
    info = model.info
    return {"arch": model.config.arch, "activation": model.config.activation,
            "parameters": info.get("parameters"),
            "classes": model.config.num_classes,
            "test_accuracy": test_accuracy(info),
            "recipe": info.get("recipe", {}).get("name"), "command": info.get("command"),
            "answering": request.app.state.answering,
            "learning": learner.status() if (learner := request.app.state.learner) is not None else None,
            "version": __version__}


# The response models give the schema; the routes answer a JSONResponse of the result's to_json(),
# which FastAPI sends as it is: its own encoder would write the same floats otherwise (1e-6 for
# 1e-06), changing the answers' bytes, and validate what the result's type already fixed.
@router.post("/predict", summary="Predict one digit", response_model=PredictionAnswer,
             description="Send an image (multipart field `file`, or the raw bytes with an image/* "
                         'content type), or JSON `{"pixels": 28x28 numbers 0..255 (or 0..1)}`. '
                         "With `?preprocessed=true` the answer also holds the 28x28 the network saw.")
async def predict(request: Request, preprocessed: bool = False):
    prepare, args, pixels = await prepared(request)
    if pixels <= INLINE_PIXELS:
        # A small image: read on the event loop, predicted with whatever else is ready. A thread
        # hop would cost more than the work, and its thread would fight the loop for the GIL.
        prediction = await request.app.state.batcher.predict(prepare(*args))
    else:  # read in the thread, predicted with the others read beside it
        prediction = await request.app.state.batcher.read_and_predict(request, prepare, *args)
    result = prediction.to_json()
    if preprocessed:
        result["preprocessed"] = prediction.seen.tolist()
    return JSONResponse(result)


@router.post("/predict/number", summary="Read a row of digits", response_model=NumberAnswer,
             description="The same inputs as /predict; an image of several digits written left to right. Answers "
                         "the number as text and each digit with its probability, box and unsure flag. "
                         f"At most {MAX_DIGITS} digits (more: 413) and {NUMBER_SECONDS:g} s of work (then 503).")
async def predict_number(request: Request):
    model = request.app.state.model
    deadline = time.monotonic() + NUMBER_SECONDS
    prepare, args, _ = await prepared(request)

    def work():
        if time.monotonic() > deadline:  # waited its whole budget for a thread
            raise RequestError(503, f"not read: the request's {NUMBER_SECONDS:g} s were spent waiting; try again")
        number = prepare(*args,
                         read=lambda pixels, scale=1.0: read_digits(model, pixels, deadline=deadline, scale=scale))
        return {**number.to_json(), "preprocessed": [d.seen.tolist() for d in number.digits]}

    return JSONResponse(await in_worker(request, work))


@router.post("/explain", summary="Predict one digit and show every layer", response_model=ExplainAnswer,
             description="The same inputs as /predict. Answers the prediction and each layer's name, shape and "
                         "values (base64 of uint8, each map stretched to 0..255), with the convolution kernels.")
async def explain_route(request: Request):
    model = request.app.state.model
    prepare, args, _ = await prepared(request)

    def work():
        reading = prepare(*args)
        explanation = explain_seen(model, reading.image, False)
        prediction = judged(model, prediction_of(explanation.probabilities, reading.image), reading)
        return {**explanation.tiles(model), **prediction.to_json()}  # the layers, then the prediction

    return JSONResponse(await in_worker(request, work))


@router.post("/predict/batch", summary="Predict several digits", response_model=BatchAnswer,
             description=f"multipart/form-data with up to {MAX_BATCH} files; one result (or error) per file. "
                         "With `?preprocessed=true` each result also holds the 28x28 the network saw.")
async def predict_batch(request: Request, preprocessed: bool = False):
    if content_type(request) != "multipart/form-data":
        raise RequestError(415, "send the images as multipart/form-data files")
    files = await form_files(request)
    if not files:
        raise RequestError(422, "no files in the form")
    if len(files) > MAX_BATCH:
        raise RequestError(413, f"{len(files)} files; at most {MAX_BATCH} per request")
    check_pixel_budget(files)
    deadline = time.monotonic() + BATCH_SECONDS

    def decode_before_deadline(data: bytes, name: str):
        if time.monotonic() > deadline:
            raise RequestError(503, f"not decoded: the request's {BATCH_SECONDS:g} s of work were spent")
        return decode(data, name)

    def entry(name: str, result) -> dict:
        if not isinstance(result, Prediction):  # a RequestError: prepare makes every failure one
            return {"file": name, "error": result.message, "status": result.http_status}
        return {"file": name, **result.to_json(), **({"preprocessed": result.seen.tolist()} if preprocessed else {})}

    def work():
        results = predict_each(request.app.state.model, files, lambda item: decode_before_deadline(*item))
        return [entry(name, r) for (_, name), r in zip(files, results, strict=True)]


    return JSONResponse({"results": await in_worker(request, work)})
