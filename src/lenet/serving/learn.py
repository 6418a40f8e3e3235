"""`lenet serve --learn`: corrections from the page become samples, and the model learns them.

POST /teach stores the image with its right label in the samples folder
(lenet.data.samples). After every LEARN_EVERY new samples the server runs
`python -m lenet teach` on the whole folder in a child process, at a lower
priority and on one thread, so /predict keeps answering at its pace and this
process never imports torch. The child writes the new model atomically; only
then is it loaded and swapped in, one assignment on the event loop. A server
killed mid-way leaves every sample and the previous model (the child dies with
it, and its half-written file is a hidden temporary that nothing reads).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lenet.data.samples import MODEL, FolderFull, add_sample, count_samples
from lenet.errors import LenetError
from lenet.nn.numpy_model import NumpyModel
from lenet.reading.digit import read_digit
from lenet.serving.batcher import in_worker
from lenet.serving.inputs import RequestError, prepared
from lenet.serving.workers import end_with_parent

LEARN_EVERY = 3       # new samples that start a fine-tune
CHILD_NICENESS = 10   # the fine-tune yields the CPU to the server's requests
LOG_TAIL = 2000       # characters of a failed fine-tune's output kept for /model
STEPS_VAR = "LENET_TEACH_STEPS"  # the background fine-tune's --steps when set: for a test that cannot wait

router = APIRouter()


def lower_priority() -> None:
    """In the child, before it runs: nicer than the server, and ended if the server dies."""
    os.nice(CHILD_NICENESS)
    end_with_parent()


def answering(model: NumpyModel, name: str) -> str:
    """Which model answers, in the page's words: "yours: 12 samples" for a taught one, else `name`
    ("bundled", or the file's name)."""
    card = model.info.get("teach")
    if isinstance(card, dict) and isinstance(card.get("samples"), int):
        return f"yours: {card['samples']} samples"
    return name


class Learner:
    """The samples folder, the fine-tune running in the background (at most one), and the swap."""

    def __init__(self, directory: Path, base_model: Path, every: int = LEARN_EVERY):
        self.directory, self.base_model, self.every = directory, base_model, every
        self.samples = count_samples(directory)
        self.taught = 0           # samples the answering model learned from
        self.task: asyncio.Task | None = None
        self.failed = ""          # the last fine-tune's error, if it failed

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL

    def personal_model(self) -> NumpyModel | None:
        """The model taught from this folder before, if there is a readable one."""
        if not self.model_path.is_file():
            return None
        try:
            model = NumpyModel.load(self.model_path)
        except LenetError as e:
            print(f"lenet serve: {e}; answering with the base model", flush=True)
            return None
        self.taught = int(model.info.get("teach", {}).get("samples", 0))
        return model

    def status(self) -> dict:
        pending = max(0, self.samples - self.taught)
        return {"samples": self.samples, "taught": self.taught, "training": self.training,
                "until_learning": 0 if self.training else max(0, self.every - pending),
                "failed": self.failed}

    @property
    def training(self) -> bool:
        return self.task is not None and not self.task.done()

    def maybe_start(self, app) -> None:
        if not self.training and self.samples - self.taught >= self.every:
            self.task = asyncio.get_running_loop().create_task(self.fine_tune(app))

    async def fine_tune(self, app) -> None:
        """One `lenet teach` run on every sample so far, from the base model; then the swap."""
        count = self.samples
        command = [sys.executable, "-m", "lenet", "teach", str(self.directory), "--model", str(self.base_model),
                   "--out", str(self.model_path), "--threads", "1"]
        if os.environ.get(STEPS_VAR):
            command += ["--steps", os.environ[STEPS_VAR]]
        proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, preexec_fn=lower_priority)
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            self.failed = output.decode(errors="replace")[-LOG_TAIL:]
            self.taught = count  # these samples are not tried again until more come
            print(f"lenet serve: learning failed ({proc.returncode}): {self.failed.strip()[-300:]}", flush=True)
            return
        try:
            model = await asyncio.to_thread(NumpyModel.load, self.model_path)
        except LenetError as e:
            self.failed, self.taught = str(e), count
            return
        app.state.model = model           # the swap: requests from here on get the new model
        app.state.batcher.model = model
        app.state.answering = answering(model, MODEL)
        self.taught, self.failed = int(model.info.get("teach", {}).get("samples", count)), ""
        print(f"lenet serve: now answering with the model taught from {self.taught} samples", flush=True)
        self.maybe_start(app)  # corrections that came in meanwhile


@router.post("/teach", summary="Store a correction: this image is a `label`",
             description="The same inputs as /predict, and `?label=7`. The image is stored in the samples "
                         f"folder; after every {LEARN_EVERY} new samples the model is fine-tuned on all of "
                         "them in the background and swapped in when done (GET /model says which answers).")
async def teach_route(request: Request, label: int):
    learner: Learner = request.app.state.learner
    classes = request.app.state.model.config.num_classes
    if not 0 <= label < classes:
        raise RequestError(422, f"label {label}: must be from 0 to {classes - 1}")
    prepare, args, _ = await prepared(request)

    def work():
        given = {}

        def read(pixels, scale=1.0):
            given["pixels"] = pixels
            return read_digit(pixels, scale)

        reading = prepare(*args, read=read)
        try:
            path = add_sample(learner.directory, given["pixels"], reading.image, label, classes, source="serve")
        except LenetError as e:
            raise RequestError(e.http_status if isinstance(e, FolderFull) else 422, str(e)) from None
        return path

    path = await in_worker(request, work)
    learner.samples += 1
    learner.maybe_start(request.app)
    return JSONResponse({"stored": str(path.relative_to(learner.directory)), "label": label,
                         "answering": request.app.state.answering, "learning": learner.status()})
