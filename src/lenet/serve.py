"""The HTTP prediction service and the drawing page: FastAPI on uvicorn.

Inference is the torch-free NumPy path (infer.py), run in a worker thread so
the event loop keeps answering while a forward pass runs. Every request is
bounded: body size (413), content type (415), pixel count (413), and what
cannot be decoded (400) or holds no digit (422) is a JSON error with a message.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
import anyio

from . import __version__
from .infer import NumpyModel
from .predict import predict_images
from .preprocess import load_image, preprocess

MAX_BODY = 5 * 1024 * 1024   # bytes per request
MAX_BATCH = 64               # images per /predict/batch request
# Inference threads: the work holds the GIL most of the time, so more threads than
# this only fight over it. benchmarks/serve_load.py, 2 cores, 8 clients, side by
# side: 253 req/s (p99 57 ms) with anyio's default 40 threads, 333 (p99 35 ms) with 1.
WORKERS = 1
IMAGE_TYPES = {"image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "image/tiff",
               "application/octet-stream"}
STATIC = Path(__file__).parent / "static"


class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes with 413, by header or while streaming,
    before any of it reaches a handler."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self.refuse(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await self.refuse(send)

    async def refuse(self, send):
        body = json.dumps({"error": f"request body over {self.limit:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def decode(data: bytes, name: str = "upload") -> np.ndarray:
    """Image bytes -> the 28x28 uint8 image, with the HTTP status of each failure."""
    try:
        pixels = load_image(data, name)
    except ValueError as e:
        raise RequestError(413 if "over the limit" in str(e) else 400, str(e)) from None
    return from_pixels(pixels)


def from_pixels(pixels: np.ndarray) -> np.ndarray:
    try:
        return preprocess(pixels)
    except ValueError as e:
        raise RequestError(422, str(e)) from None


def pixels_from_json(payload) -> np.ndarray:
    """{"pixels": rows of numbers 0..255} -> uint8 array; any other shape is a 422."""
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, 'expected a JSON object {"pixels": [[...28 numbers...], ...28 rows]}')
    try:
        arr = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError(422, "pixels must be rows of numbers") from None
    if arr.ndim != 2 or not (8 <= arr.shape[0] <= 512 and 8 <= arr.shape[1] <= 512):
        raise RequestError(422, f"pixels must be a 2-D grid, 28x28 (8 to 512 a side); got shape {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise RequestError(422, "pixel values must be numbers from 0 to 255")
    return arr.round().astype(np.uint8)


def create_app(model_path: str | Path | None = None):
    from .pretrained import bundled_model_path

    model = NumpyModel.load(model_path or bundled_model_path())
    limiter = anyio.CapacityLimiter(WORKERS)

    async def in_worker(fn, *args):
        """Run blocking work off the event loop, which keeps answering meanwhile."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
    started = time.time()
    app = FastAPI(title="lenet", version=__version__,
                  description="Handwritten digit recognition with LeNet. POST an image, get the digit.")
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestError)
    async def request_error(request, exc: RequestError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    def answer(images: list[np.ndarray]) -> list[dict]:
        results = predict_images(model, np.stack(images))
        for r, image in zip(results, images):
            r["preprocessed"] = image.tolist()
        return results

    def predict_one(prepare, *args) -> dict:
        """Decode and predict in one worker-thread hop; errors become RequestError."""
        return answer([prepare(*args)])[0]

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health():
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/model")
    async def model_info():
        info = model.info
        return {"arch": model.config.arch, "activation": model.config.activation,
                "parameters": info.get("parameters"),
                "classes": model.config.num_classes,
                "test_accuracy": info.get("metrics", {}).get("val_accuracy"),
                "recipe": info.get("recipe", {}).get("name"), "command": info.get("command"),
                "version": __version__}

    @app.post("/predict", summary="Predict one digit",
              description="Send an image (multipart field `file`, or the raw bytes with an image/* "
                          'content type), or JSON `{"pixels": 28x28 numbers 0..255}`.')
    async def predict(request: Request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                payload = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError(400, "the body is not valid JSON") from None
            result = await in_worker(predict_one, from_pixels, pixels_from_json(payload))
        elif kind == "multipart/form-data":
            files = await form_files(request)
            if len(files) != 1:
                raise RequestError(422, f"expected one file in the form, got {len(files)}")
            result = await in_worker(predict_one, decode, *files[0])
        elif kind in IMAGE_TYPES:
            result = await in_worker(predict_one, decode, await request.body())
        else:
            raise RequestError(415, f"unsupported content type {kind or '(none)'}: send an image "
                                    "(image/png, image/jpeg, ...), multipart/form-data or application/json")
        # A JSONResponse as is: FastAPI's generic encoder would walk the 784 pixels in Python.
        return JSONResponse(result)

    @app.post("/predict/batch", summary="Predict several digits",
              description=f"multipart/form-data with up to {MAX_BATCH} files; one result (or error) per file.")
    async def predict_batch(request: Request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise RequestError(415, "send the images as multipart/form-data files")
        files = await form_files(request)
        if not files:
            raise RequestError(422, "no files in the form")
        if len(files) > MAX_BATCH:
            raise RequestError(413, f"{len(files)} files; at most {MAX_BATCH} per request")

        def work():
            results, images, where = [], [], []
            for data, name in files:
                try:
                    images.append(decode(data, name))
                    where.append(len(results))
                    results.append({"file": name})
                except RequestError as e:
                    results.append({"file": name, "error": e.message, "status": e.status})
            for i, r in zip(where, answer(images) if images else []):
                results[i].update(r)
            return results

        return JSONResponse({"results": await in_worker(work)})

    async def form_files(request) -> list[tuple[bytes, str]]:
        try:
            form = await request.form(max_files=MAX_BATCH + 1, max_fields=MAX_BATCH + 10)
        except Exception as e:  # noqa: BLE001 - the multipart parser's errors vary by version
            raise RequestError(400, f"malformed multipart form ({e})") from None
        files = []
        for _, value in form.multi_items():
            if hasattr(value, "read"):
                files.append((await value.read(), value.filename or "upload"))
        return files

    return app


def serve(model_path: str | None, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(model_path), host=host, port=port, log_level="info", access_log=False)
