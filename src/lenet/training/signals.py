"""Ctrl-C and SIGTERM during training: a request the loop honours between two steps."""

from __future__ import annotations

import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after a resumable checkpoint was written."""


class StopRequest:
    """Turns the first Ctrl-C (or SIGTERM) into a flag the loop checks between batches, so the
    checkpoint never holds half a step; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
