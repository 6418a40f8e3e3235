"""The HTTP prediction service and the drawing page: FastAPI on uvicorn.

Inference is the torch-free NumPy path. A small image sent to /predict is read on the event
loop and predicted together with the others ready at the same moment (batcher.py); larger
images and the other routes' work run in one worker thread, so the loop keeps answering
meanwhile. With `--workers N`, N such processes share the port (workers.py). This module
assembles the app: the model is loaded once in `lifespan` and held in the app's state, the
routes (routes.py, learn.py) are included, and the errors become JSON. Every request is
bounded: connections, headers and body by guard.py, then content type (415), declared pixels
(413), decoding time, and what cannot be decoded (400) or holds no digit (422) is a JSON error
with a message (inputs.py).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from lenet import __version__
from lenet.errors import LenetError, UsageError
from lenet.nn.numpy_model import NonFiniteOutput, NumpyModel
from lenet.serving.batcher import INFERENCE_THREADS, Batcher
from lenet.serving.guard import MAX_BODY, MAX_CONNECTIONS, REQUEST_TIMEOUT, Guard, allowed_hosts
from lenet.serving.routes import STATIC, router
from lenet.serving.workers import run


async def request_error(request, exc: LenetError):
    """Any refusal, the request's or the library's: its type gives the status."""
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status)


async def model_error(request, exc: NonFiniteOutput):
    """The model's fault, not the request's: a 500 that says so, never an answer from NaN."""
    return JSONResponse({"error": str(exc)}, status_code=500)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model once, before the first request; hold it in the app's state."""
    from lenet.data.samples import MODEL
    from lenet.pretrained import bundled_model_path
    from lenet.serving.learn import Learner, answering

    base = Path(app.state.model_path or bundled_model_path())
    app.state.model = NumpyModel.load(base)
    app.state.answering = answering(app.state.model, "bundled" if app.state.model_path is None else base.name)
    app.state.learner = None
    if app.state.samples is not None:  # --learn: a model taught from this folder before answers
        app.state.learner = Learner(app.state.samples, base)
        personal = app.state.learner.personal_model()
        if personal is not None:
            app.state.model, app.state.answering = personal, answering(personal, MODEL)
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
    # Starlette types a handler as taking any Exception, though it is called only with its own class
    app.add_exception_handler(LenetError, request_error)  # type: ignore[arg-type]
    app.add_exception_handler(NonFiniteOutput, model_error)  # type: ignore[arg-type]
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
