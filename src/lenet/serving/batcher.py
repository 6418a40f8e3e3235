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
MOST = 8  # readings one forward pass waits for: more saves little and makes the first one wait longer


async def in_worker(request: Request, fn, *args):
    """Run blocking work off the event loop, which keeps answering meanwhile."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=request.app.state.limiter)


class Batcher:
    """One forward pass for the readings of all the requests that are ready together.

    Runs on the event loop. The first reading to arrive schedules `flush` with call_soon, which
    runs after the callbacks already queued: the other requests whose bytes came in the same
    turn of the loop add their readings first: one forward pass of several images costs less
    than one each. Readings of larger images, made in the inference thread (`read_and_predict`),
    wait for the others being read there, up to `most` together: those requests came together."""

    def __init__(self, model, most: int = MOST):
        self.model, self.most = model, most
        self.waiting: list = []
        self.reading = 0  # requests reading in (or waiting for) the inference thread
        self.inline = 0   # readings waiting that were made on the event loop
        self.due = False  # a flush is scheduled

    async def predict(self, reading, inline: bool = True) -> Prediction:
        """Predict `reading` in the next pass: at once with what else is ready when it was read on
        the event loop (`inline`), else with the others being read in the thread."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((reading, future))
        self.inline += inline
        self.schedule()
        return await future

    async def read_and_predict(self, request: Request, read, *args) -> Prediction:
        """`read(*args)` in the inference thread, then predicted with the readings made beside it."""
        self.reading += 1
        try:
            reading = await in_worker(request, read, *args)
        finally:
            self.reading -= 1
            self.schedule()  # the readings that waited for this one go now if it was the last
        return await self.predict(reading, inline=False)

    def schedule(self) -> None:
        # A reading made on the event loop never waits for the thread's: it goes in the next pass.
        ready = self.inline or self.reading == 0 or len(self.waiting) >= self.most
        if self.waiting and not self.due and ready:
            self.due = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.due = False
        waiting, self.waiting, self.inline = self.waiting, [], 0
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
