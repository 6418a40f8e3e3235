"""Inference off the request: the inference thread (`in_worker`), and one forward pass for the
small images that are ready together (`Batcher`)."""

from __future__ import annotations

import asyncio

import anyio
from fastapi import Request

from lenet.reading.predict import judge_readings
from lenet.reading.prediction import Prediction

# Inference threads: the work holds the GIL most of the time, so more threads than
# this only fight over it (benchmarks/serve_load.py compares).
INFERENCE_THREADS = 1
INLINE_PIXELS = 128 * 128  # /predict reads images up to this size on the event loop (Batcher); larger in the thread


async def in_worker(request: Request, fn, *args):
    """Run blocking work off the event loop, which keeps answering meanwhile."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=request.app.state.limiter)


class Batcher:
    """One forward pass for the readings of all the requests that are ready together.

    Runs on the event loop. The first reading to arrive schedules `flush` with call_soon, which
    runs after the callbacks already queued: the other requests whose bytes came in the same
    turn of the loop add their readings first: one forward pass of several images costs less
    than one each."""

    def __init__(self, model):
        self.model = model
        self.waiting: list = []

    async def predict(self, reading) -> Prediction:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((reading, future))
        if len(self.waiting) == 1:
            loop.call_soon(self.flush)
        return await future

    def flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        try:
            results = judge_readings(self.model, [reading for reading, _ in waiting])
        except Exception as e:  # each request gets the failure, as its own would
            for _, future in waiting:
                if not future.done():
                    future.set_exception(e)
            return
        for result, (_, future) in zip(results, waiting, strict=True):
            if not future.done():  # a client that went away cancelled its future
                future.set_result(result)
