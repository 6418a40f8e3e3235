"""The HTTP prediction service and the drawing page: FastAPI on uvicorn.

Inference is the torch-free NumPy path (infer.py). A small image sent to
/predict is read on the event loop and predicted together with the others
ready at the same moment (`Batcher`); larger images and the other routes' work
run in one worker thread, so the loop keeps answering meanwhile. With
`--workers N`, N such processes share the port (`run`, `supervise`). Routes are defined
at module level; the model is loaded once in `lifespan` and held in the app's
state. Every request is bounded: connections, headers and body by guard.py,
then content type (415), declared pixels (413), decoding time, and what cannot
be decoded (400) or holds no digit (422) is a JSON error with a message.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from lenet import __version__
from lenet.errors import LenetError, OverBudget, TooLarge, UsageError
from lenet.evaluation.explain import explain_seen, to_tiles
from lenet.nn.model_file import test_accuracy
from lenet.nn.numpy_model import NonFiniteOutput, NumpyModel
from lenet.reading.digit import read_digit
from lenet.reading.image import declared_pixels, decode_image
from lenet.reading.number import MAX_DIGITS
from lenet.reading.predict import doubts_of, judged, predict_each, predict_images, public, read_digits
from lenet.reading.values import as_uint8
from lenet.serving.guard import (
    KEEP_ALIVE,
    MAX_BODY,
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT,
    BodyTooLarge,
    Guard,
    GuardedProtocol,
    allowed_hosts,
)

MAX_BATCH = 64               # images per /predict/batch request
# Work per request, bounded before decoding: pixels the images' headers declare, all images
# together (a 1.7 KB WebP can declare 40 megapixels and cost 677 MB to decode), and the time
# decoding may take; the rest of a batch past that is answered with an error each.
MAX_REQUEST_PIXELS = 24_000_000
BATCH_SECONDS = 5.0
NUMBER_SECONDS = 2.0  # the time one /predict/number image may take to read (its work is bounded too: number.py)
# Inference threads: the work holds the GIL most of the time, so more threads than
# this only fight over it. benchmarks/serve_load.py, 2 cores, 8 clients, side by
# side: 253 req/s (p99 57 ms) with anyio's default 40 threads, 333 (p99 35 ms) with 1.
INFERENCE_THREADS = 1
INLINE_PIXELS = 128 * 128  # /predict reads images up to this size on the event loop (Batcher); larger in the thread
IMAGE_TYPES = {"image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "image/tiff",
               "application/octet-stream"}
STATIC = Path(__file__).parent / "static"


class RequestError(LenetError):
    """A refused request, with the HTTP status it is answered with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.http_status, self.message = status, message


def decode(data: bytes, name: str = "upload", read=read_digit):
    """Image bytes -> what `read` makes of them (a Reading), with the HTTP status of each failure."""
    try:
        pixels, scale = decode_image(data, name)
    except LenetError as e:  # its type says which: TooLarge 413, ImageError 400
        raise RequestError(e.http_status, str(e)) from None
    return from_pixels(pixels, lambda pixels: read(pixels, scale=scale))  # boxes in the upload's coordinates


def from_pixels(pixels: np.ndarray, read=read_digit):
    try:
        return read(pixels)
    except LenetError as e:
        # A decoded image it cannot read is a 422, unless the type says more (too many digits, out of time).
        raise RequestError(e.http_status if isinstance(e, (TooLarge, OverBudget)) else 422, str(e)) from None


def pixels_from_json(body: bytes) -> np.ndarray:
    """A JSON body {"pixels": rows of numbers 0..255 or 0..1} -> uint8 array; bad JSON is a 400, a bad shape a 422."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # also nesting past Python's stack, integers of 5,000 digits
        raise RequestError(400, "the body is not valid JSON (or nests too deep, or has too long numbers)") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, 'expected a JSON object {"pixels": [[...28 numbers...], ...28 rows]}')
    try:
        arr = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise RequestError(422, "pixels must be rows of numbers") from None
    if arr.ndim != 2 or not (8 <= arr.shape[0] <= 512 and 8 <= arr.shape[1] <= 512):
        raise RequestError(422, f"pixels must be a 2-D grid, 28x28 (8 to 512 a side); got shape {arr.shape}")
    try:
        return as_uint8(arr)  # 0..255, or 0..1: the Python API's contract (values.py)
    except LenetError as e:
        raise RequestError(422, str(e)) from None


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def form_files(request: Request) -> list[tuple[bytes, str]]:
    try:
        form = await request.form(max_files=MAX_BATCH + 1, max_fields=MAX_BATCH + 10)
    except BodyTooLarge:
        raise  # Guard answers 413
    except Exception as e:  # noqa: BLE001 - the multipart parser's errors vary by version
        raise RequestError(400, f"malformed multipart form ({e})") from None
    files = []
    for _, value in form.multi_items():
        if hasattr(value, "read"):
            files.append((await value.read(), value.filename or "upload"))
    return files


def check_pixel_budget(files: list[tuple[bytes, str]]) -> int:
    """The pixels the images declare together; 413 before any decoding when over MAX_REQUEST_PIXELS."""
    total = sum(declared_pixels(data) for data, _ in files)
    if total > MAX_REQUEST_PIXELS:
        raise RequestError(413, f"the images declare {total:,} pixels together; at most "
                                f"{MAX_REQUEST_PIXELS:,} per request")
    return total


async def in_worker(request: Request, fn, *args):
    """Run blocking work off the event loop, which keeps answering meanwhile."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=request.app.state.limiter)


def answers(model, readings: list) -> list[dict]:
    """The results for Readings, in one forward pass."""
    predictions = predict_images(model, np.stack([reading.image for reading in readings]))
    return [judged(model, p, reading) for p, reading in zip(predictions, readings)]


class Batcher:
    """One forward pass for the readings of all the requests that are ready together.

    Runs on the event loop. The first reading to arrive schedules `flush` with call_soon, which
    runs after the callbacks already queued: the other requests whose bytes came in the same
    turn of the loop add their readings first. With 8 clients on 2 processes that is a few at
    a time; a forward pass of 4 images costs 0.64 ms against 4 x 0.26 ms one at a time."""

    def __init__(self, model):
        self.model = model
        self.waiting: list = []

    async def predict(self, reading) -> dict:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((reading, future))
        if len(self.waiting) == 1:
            loop.call_soon(self.flush)
        return await future

    def flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        try:
            results = answers(self.model, [reading for reading, _ in waiting])
        except Exception as e:  # noqa: BLE001 - each request gets the failure, as its own would
            for _, future in waiting:
                if not future.done():
                    future.set_exception(e)
            return
        for result, (_, future) in zip(results, waiting):
            if not future.done():  # a client that went away cancelled its future
                future.set_result(result)


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


async def prepared(request: Request):
    """(prepare, args, pixels) for the one image of a /predict-style request: prepare(*args) is the
    Reading; pixels what the image declares (the work it will take). Reads the body; refuses bad
    content types and pixel budgets."""
    kind = content_type(request)
    if kind == "application/json":
        image = pixels_from_json(await request.body())
        return from_pixels, (image,), image.size
    if kind == "multipart/form-data":
        files = await form_files(request)
        if len(files) != 1:
            raise RequestError(422, f"expected one file in the form, got {len(files)}")
        return decode, files[0], check_pixel_budget(files)
    if kind in IMAGE_TYPES:
        data = await request.body()
        return decode, (data,), check_pixel_budget([(data, "upload")])
    raise RequestError(415, f"unsupported content type {kind or '(none)'}: send an image "
                            "(image/png, image/jpeg, ...), multipart/form-data or application/json")


@router.post("/predict", summary="Predict one digit",
             description="Send an image (multipart field `file`, or the raw bytes with an image/* "
                         'content type), or JSON `{"pixels": 28x28 numbers 0..255 (or 0..1)}`. '
                         "With `?preprocessed=true` the answer also holds the 28x28 the network saw.")
async def predict(request: Request, preprocessed: bool = False):
    model = request.app.state.model
    prepare, args, pixels = await prepared(request)
    if pixels <= INLINE_PIXELS:
        # A small image: read on the event loop (well under a millisecond for MNIST's form, a few
        # for the full path), predicted with whatever else is ready. A thread hop would cost more
        # than the work, and its thread would fight the loop for the GIL.
        reading = prepare(*args)
        result = await request.app.state.batcher.predict(reading)
    else:
        def work():
            reading = prepare(*args)
            return reading, answers(model, [reading])[0]

        reading, result = await in_worker(request, work)
    if preprocessed:
        result["preprocessed"] = reading.image.tolist()
    # A JSONResponse as is: FastAPI's generic encoder would walk the result in Python.
    return JSONResponse(result)


@router.post("/predict/number", summary="Read a row of digits",
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
        result = prepare(*args, read=lambda pixels, scale=1.0: read_digits(model, pixels, deadline=deadline, scale=scale))
        result["preprocessed"] = [image.tolist() for image in result.pop("_seen")]
        return result

    return JSONResponse(await in_worker(request, work))

@router.post("/explain", summary="Predict one digit and show every layer",
             description="The same inputs as /predict. Answers the prediction and each layer's name, shape and "
                         "values (base64 of uint8, each map stretched to 0..255), with the convolution kernels.")
async def explain_route(request: Request):
    model = request.app.state.model
    prepare, args, _ = await prepared(request)

    def work():
        reading = prepare(*args)
        result = to_tiles(explain_seen(model, reading.image, False), model)
        doubts = doubts_of(model, result, reading)
        return {**result, "unsure": bool(doubts), "doubts": doubts, "box": list(reading.box)}

    return JSONResponse(await in_worker(request, work))


@router.post("/predict/batch", summary="Predict several digits",
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

    def prepare(item):
        if time.monotonic() > deadline:
            raise RequestError(503, f"not decoded: the request's {BATCH_SECONDS:g} s of work were spent")
        return decode(*item)

    def work():
        results = predict_each(request.app.state.model, [(name, (data, name)) for data, name in files], prepare,
                               error=lambda name, e: {"error": e.message, "status": e.http_status})
        if preprocessed:
            for r in results:
                if "_seen" in r:
                    r["preprocessed"] = r["_seen"].tolist()
        return [public(r) for r in results]

    return JSONResponse({"results": await in_worker(request, work)})


async def request_error(request, exc: LenetError):
    """Any refusal, the request's or the library's: its type gives the status."""
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status)


async def model_error(request, exc: NonFiniteOutput):
    """The model's fault, not the request's: a 500 that says so, never an answer from NaN."""
    return JSONResponse({"error": str(exc)}, status_code=500)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model once, before the first request; hold it in the app's state."""
    from lenet.pretrained import bundled_model_path
    from lenet.serving.learn import Learner, answering

    base = Path(app.state.model_path or bundled_model_path())
    app.state.model = NumpyModel.load(base)
    app.state.answering = answering(app.state.model, app.state.model_path is None)
    app.state.learner = None
    if app.state.samples is not None:  # --learn: a model taught from this folder before answers
        app.state.learner = Learner(app.state.samples, base)
        personal = app.state.learner.personal_model()
        if personal is not None:
            app.state.model, app.state.answering = personal, answering(personal, False)
    app.state.limiter = anyio.CapacityLimiter(INFERENCE_THREADS)
    app.state.batcher = Batcher(app.state.model)
    app.state.started = time.time()
    yield


def create_app(model_path: str | Path | None = None, host: str = "127.0.0.1",
               samples: str | Path | None = None) -> FastAPI:
    """The app for a server bound to `host` (which sets the Host names it answers to); with a
    `samples` folder, it learns from corrections (POST /teach, learn.py)."""
    # No /docs or /redoc: their viewers load scripts from a CDN and are blank offline; the API
    # page of our own is /static/api.html, the schema /openapi.json.
    app = FastAPI(title="lenet", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Handwritten digit recognition with LeNet. POST an image, get the digit.")
    app.state.model_path = model_path
    app.state.samples = Path(samples).expanduser() if samples is not None else None
    app.add_middleware(Guard, hosts=allowed_hosts(host), limit=MAX_BODY)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    if samples is not None:
        from lenet.serving.learn import router as learn_router

        app.include_router(learn_router)
    app.add_exception_handler(LenetError, request_error)
    app.add_exception_handler(NonFiniteOutput, model_error)
    return app


def serve(model_path: str | None, host: str, port: int, request_timeout: float = REQUEST_TIMEOUT,
          max_connections: int = MAX_CONNECTIONS, workers: int = 1, samples: str | Path | None = None) -> None:
    """Serve the model at `model_path` (None: the bundled one) until interrupted; learning from
    corrections into the `samples` folder when one is given (one worker process then)."""
    if model_path is not None:
        NumpyModel.load(model_path)  # a bad model file is a one-line error before the server starts
    if samples is not None:
        import importlib.util

        from lenet.files import check_writable_dir

        if importlib.util.find_spec("torch") is None:  # looked up, not imported: serving never imports it
            raise UsageError("--learn fine-tunes with torch, which is not installed: pip install 'lenet[train]'")
        check_writable_dir(samples, "--samples")
        workers = 1  # one learner, one model swapped in: the samples are counted in one process
        print(f"lenet serve: learning from corrections; samples in {samples}", flush=True)
    run(create_app(model_path, host, samples), host, port, request_timeout, max_connections, workers)


def run(app, host: str, port: int, request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
        workers: int = 1) -> None:
    """Serve `app` with our bounds until interrupted: in this process, or in `workers` forked processes.
    Each has its own event loop and inference thread, and loads the model (about 60 MB each).

    The workers each listen on a socket of their own bound to the same port (SO_REUSEPORT), and the
    kernel (Linux) spreads the connections over them by a hash of their addresses. One socket
    shared by all does not: the worker that wakes first accepts every connection waiting, so 8
    clients connecting at once all went to one worker while the other sat idle
    (benchmarks/serve_load.py, per-process CPU time). This process holds the port meanwhile with
    a socket that never listens, so nothing is routed to it."""
    import uvicorn

    def config(beat=None) -> uvicorn.Config:
        # uvicorn's own 503 is a backstop behind ours (which first makes room if it can): it also counts
        # tasks, which can outlive their connection. uvicorn calls `beat` from its main loop, once a second.
        return uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False,
                              http=GuardedProtocol.with_limits(request_timeout, max_connections),
                              limit_concurrency=2 * max_connections + 1, timeout_keep_alive=KEEP_ALIVE,
                              callback_notify=beat, timeout_notify=0)

    try:
        # First a socket that does not share: its bind fails while anything holds the port, another
        # server's sharing sockets included, so two servers never split one port between them (and
        # a busy port is one line of error, not uvicorn's log of its failed start).
        with port_socket(host, port, share=False) as probe:
            port = probe.getsockname()[1]
    except OSError as e:
        raise LenetError(f"cannot listen on {host}:{port} ({e.strerror or e}): "
                         f"choose another --port, or stop what holds it") from None
    if workers <= 1:
        uvicorn.Server(config()).run()
        return
    if not hasattr(socket, "SO_REUSEPORT"):  # (Windows) one shared socket
        shared = config().bind_socket()
        supervise(lambda beat: uvicorn.Server(config(beat)).run(sockets=[shared]), workers)
        return
    try:
        held = port_socket(host, port)
    except OSError as e:
        raise LenetError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    print(f"lenet serve: answering on http://{host}:{port} (Press CTRL+C to quit)", flush=True)
    with held:  # the port held while workers come and go
        supervise(lambda beat: uvicorn.Server(config(beat)).run(sockets=[port_socket(host, port)]), workers)


def port_socket(host: str, port: int, share: bool = True) -> socket.socket:
    """A TCP socket bound to (host, port), with SO_REUSEPORT when `share`, not yet listening (uvicorn
    listens once the app has started, so no connection waits on a worker still loading its model)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def end_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, even by SIGKILL, so no worker
    outlives the server (elsewhere a no-op)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


@dataclass(frozen=True)
class Supervision:
    """How `supervise` keeps its worker processes answering."""

    restart_seconds: float = 10.0   # a worker that ran this long is replaced at once; a younger one after a back-off
    max_backoff: float = 30.0       # seconds: the back-off doubles from 1 s up to this while workers keep dying young
    liveness_seconds: float = 10.0  # a worker whose event loop has not beaten for this long is killed and replaced
    startup_seconds: float = 120.0  # a new worker's time to load its model and beat for the first time
    give_up_after: int = 5          # workers in a row that end before their first beat: the server stops, exit 1
    stop_seconds: float = 30.0      # once told to stop, the workers' time to finish their requests; then SIGKILL


def exit_reason(code: int) -> str:
    import signal

    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def supervise(serve_one, workers: int, policy: Supervision = Supervision()) -> None:
    """Run `serve_one(beat)` in `workers` forked processes until this one is interrupted (SIGINT, SIGTERM):
    then stop them all (SIGTERM: uvicorn finishes the requests in flight) and wait for them.

    Each worker's event loop awaits `beat()` about once a second; it stamps the worker's slot in memory
    shared with this process. A worker that dies, or whose stamp grows older than `policy.liveness_seconds`
    (stopped, or its loop stuck), is killed and replaced: at once when it had run a while, else after a
    back-off that doubles. Workers that keep ending before they ever beat cannot be helped by restarting:
    the server stops with a one-line reason (SystemExit, exit code 1), for a service manager to see."""
    import mmap
    import os
    import signal

    # time.monotonic() of each slot's last beat, 0 before the first; the clock is the same in every process.
    beats = memoryview(mmap.mmap(-1, 8 * workers)).cast("d")
    slots: dict[int, int] = {}      # pid -> slot
    born: dict[int, float] = {}     # pid -> when it was started
    due: dict[int, float] = {}      # slot -> when its replacement starts

    def start(slot: int) -> None:
        beats[slot] = 0.0
        pid = os.fork()
        if pid == 0:  # the worker: uvicorn installs its own signal handlers
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            end_with_parent()

            async def beat() -> None:
                beats[slot] = time.monotonic()

            code = 0
            try:
                serve_one(beat)
            except BaseException:  # noqa: BLE001 - a worker's failure is reported by its exit code
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        slots[pid], born[pid] = slot, time.monotonic()

    stopping: list[float] = []

    def signal_all(sig) -> None:
        for pid in slots:
            try:
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)  # a stopped worker acts on it too
            except ProcessLookupError:
                pass

    def stop(signum, frame) -> None:
        stopping.append(time.monotonic())
        signal_all(signal.SIGTERM)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    give_up = ""
    young = 0  # workers in a row that ended before their first beat
    hung: set[int] = set()
    backoff = 0.0
    try:
        for slot in range(workers):
            start(slot)
        print(f"lenet serve: {workers} worker processes ({', '.join(map(str, sorted(slots)))})", flush=True)
        while slots or (due and not stopping):
            time.sleep(0.2)
            now = time.monotonic()
            for pid in list(slots):
                try:
                    ended, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    ended, status = pid, 0
                if ended == 0:
                    continue
                slot, lived = slots.pop(pid), now - born.pop(pid)
                if stopping:
                    continue
                young = 0 if beats[slot] > 0 else young + 1
                if young >= policy.give_up_after:
                    give_up = (f"lenet serve: {young} worker processes in a row ended before answering "
                               f"(the last: {exit_reason(os.waitstatus_to_exitcode(status))}); stopping")
                    stop(signal.SIGTERM, None)
                    continue
                backoff = 0.0 if lived >= policy.restart_seconds else min(max(1.0, 2 * backoff), policy.max_backoff)
                print(f"lenet serve: worker {pid} ended ({exit_reason(os.waitstatus_to_exitcode(status))}); "
                      f"starting another{f' in {backoff:g} s' if backoff else ''}", flush=True)
                due[slot] = now + backoff
            if stopping:
                if now - stopping[0] > policy.stop_seconds:
                    signal_all(signal.SIGKILL)
                continue
            for pid, slot in slots.items():
                silent = now - (beats[slot] or born[pid])
                if pid not in hung and silent > (policy.liveness_seconds if beats[slot] else policy.startup_seconds):
                    hung.add(pid)
                    print(f"lenet serve: worker {pid} has not answered for {silent:.0f} s; replacing it", flush=True)
                    os.kill(pid, signal.SIGKILL)  # reaped on the next turn, and replaced like any that dies
            for slot, when in list(due.items()):
                if now >= when:
                    del due[slot]
                    start(slot)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if give_up:
        raise SystemExit(give_up)
