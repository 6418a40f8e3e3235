"""The progress bar `lenet predict` draws on a terminal for a large folder."""

from __future__ import annotations

import sys

PROGRESS_FROM = 200  # files: fewer are done before a bar would be worth reading


class Progress:
    """A one-line progress bar on stderr (a terminal) for `lenet predict` on many files: done,
    total, images/s and the time left, redrawn at most five times a second. Results printed to
    the same terminal go above it (`clear_for` wipes the bar before such a line). Plain text,
    not tqdm: predicting needs NumPy and Pillow only.

    The rate is an exponential moving average of the rate between redraws, measured from the
    first result on (not from the start, which holds the process pool's start-up), and nothing is
    estimated before SETTLE_ITEMS results and SETTLE_SECONDS: results come in chunks, so an early
    estimate is off by orders of magnitude."""

    WIDTH = 30
    SETTLE_ITEMS = 20
    SETTLE_SECONDS = 2.0
    SMOOTHING = 0.3  # the newest rate's weight in the average

    def __init__(self, total: int, stream=None, clock=None):
        import time

        self.total, self.stream, self.clock = total, stream or sys.stderr, clock or time.perf_counter
        self.started = self.clock()
        self.drawn_at = -1.0
        self.drawn = False
        # (done, time) at the first and at the latest redraw; the first is set at the first redraw
        self.first: tuple[int, float] = (0, 0.0)
        self.last: tuple[int, float] | None = None
        self.rate: float | None = None  # images/s, smoothed

    def clear_for(self, out) -> None:
        """Wipe the bar if `out` writes to the terminal it is drawn on."""
        if self.drawn and (out is self.stream or out.isatty()):
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False

    def show(self, done: int) -> None:
        now = self.clock()
        if now - self.drawn_at < 0.2 and done < self.total:
            return
        self.drawn_at = now
        if self.last is None:
            self.first = (done, now)
        elif now > self.last[1]:
            recent = (done - self.last[0]) / (now - self.last[1])
            self.rate = recent if self.rate is None else self.SMOOTHING * recent + (1 - self.SMOOTHING) * self.rate
        self.last = (done, now)
        settled = (self.rate is not None and done - self.first[0] >= self.SETTLE_ITEMS
                   and now - self.first[1] >= self.SETTLE_SECONDS)
        if done == self.total:  # the whole run's rate, start-up included: what the summary line says
            elapsed = now - self.started
            rate, left = (f"  {done / elapsed:,.0f}/s" if elapsed > 0 else ""), ""
        elif settled and self.rate is not None:  # settled says so already; the type checker cannot see it
            rate, left = f"  {self.rate:,.0f}/s", f", {(self.total - done) / max(self.rate, 1e-9):,.0f} s left"
        else:
            rate, left = "", ""
        filled = self.WIDTH * done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,} images"
                          f"{rate}{left}\033[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
