"""Serving with our bounds: one process, or N worker processes sharing the port (`run`), kept
answering by `supervise` (a worker that dies or whose event loop stops beating is replaced)."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

from lenet.errors import LenetError
from lenet.serving.guard import KEEP_ALIVE, MAX_CONNECTIONS, REQUEST_TIMEOUT, GuardedProtocol


def run(app, host: str, port: int, request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
        workers: int = 1) -> None:
    """Serve `app` with our bounds until interrupted: in this process, or in `workers` forked processes.
    Each has its own event loop and inference thread, and loads the model.

    The workers each listen on a socket of their own bound to the same port (SO_REUSEPORT), and the
    kernel (Linux) spreads the connections over them by a hash of their addresses. One socket
    shared by all does not: the worker that wakes first accepts every connection waiting, so
    clients connecting at once all went to one worker while the others sat idle
    (benchmarks/serve_load.py, per-process CPU time). This process holds the port meanwhile with
    a socket that never listens, so nothing is routed to it."""
    import uvicorn

    def config(beat=None) -> uvicorn.Config:
        # uvicorn's own 503 is a backstop behind ours (which first makes room if it can): it also counts
        # tasks, which can outlive their connection. uvicorn calls `beat` from its main loop.
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
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the worker just outlives a killed parent
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Supervision:
    """How `supervise` keeps its worker processes answering."""

    restart_seconds: float = 10.0   # a worker that ran this long is replaced at once; a younger one after a back-off
    max_backoff: float = 30.0       # seconds: the back-off doubles up to this while workers keep dying young
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



class Pool:
    """The worker processes `supervise` keeps: which slot each serves, when it started, the beats
    they stamp, and the replacements due. Each method is one step of the supervision loop."""

    def __init__(self, serve_one, workers: int, policy: Supervision):
        import mmap

        self.serve_one, self.policy = serve_one, policy
        # time.monotonic() of each slot's last beat, 0 before the first; the clock is the same in every process.
        self.beats = memoryview(mmap.mmap(-1, 8 * workers)).cast("d")
        self.slots: dict[int, int] = {}      # pid -> slot
        self.born: dict[int, float] = {}     # pid -> when it was started
        self.due: dict[int, float] = {}      # slot -> when its replacement starts
        self.stopping: list[float] = []
        self.give_up = ""
        self.young = 0  # workers in a row that ended before their first beat
        self.hung: set[int] = set()
        self.backoff = 0.0

    def start(self, slot: int) -> None:
        import os
        import signal

        beats = self.beats
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
                self.serve_one(beat)
            except BaseException:  # a worker's failure is reported by its exit code
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        self.slots[pid], self.born[pid] = slot, time.monotonic()

    def signal_all(self, sig) -> None:
        import os
        import signal

        for pid in self.slots:
            try:
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)  # a stopped worker acts on it too
            except ProcessLookupError:
                pass

    def stop(self, signum, frame) -> None:
        import signal

        self.stopping.append(time.monotonic())
        self.signal_all(signal.SIGTERM)

    @property
    def running(self) -> bool:
        return bool(self.slots or (self.due and not self.stopping))

    def reap(self, now: float) -> None:
        """Collect the workers that ended; schedule each one's replacement, or give up."""
        import os
        import signal

        policy = self.policy
        for pid in list(self.slots):
            try:
                ended, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                ended, status = pid, 0
            if ended == 0:
                continue
            slot, lived = self.slots.pop(pid), now - self.born.pop(pid)
            if self.stopping:
                continue
            self.young = 0 if self.beats[slot] > 0 else self.young + 1
            if self.young >= policy.give_up_after:
                self.give_up = (f"lenet serve: {self.young} worker processes in a row ended before answering "
                                f"(the last: {exit_reason(os.waitstatus_to_exitcode(status))}); stopping")
                self.stop(signal.SIGTERM, None)
                continue
            backoff = self.backoff
            backoff = 0.0 if lived >= policy.restart_seconds else min(max(1.0, 2 * backoff), policy.max_backoff)
            self.backoff = backoff
            print(f"lenet serve: worker {pid} ended ({exit_reason(os.waitstatus_to_exitcode(status))}); "
                  f"starting another{f' in {backoff:g} s' if backoff else ''}", flush=True)
            self.due[slot] = now + backoff

    def kill_silent(self, now: float) -> None:
        """Kill the workers whose loop has not beaten in time; `reap` replaces them like any that dies."""
        import os
        import signal

        policy, beats = self.policy, self.beats
        for pid, slot in self.slots.items():
            silent = now - (beats[slot] or self.born[pid])
            if pid not in self.hung and silent > (policy.liveness_seconds if beats[slot] else policy.startup_seconds):
                self.hung.add(pid)
                print(f"lenet serve: worker {pid} has not answered for {silent:.0f} s; replacing it", flush=True)
                os.kill(pid, signal.SIGKILL)  # reaped on the next turn, and replaced like any that dies

    def start_due(self, now: float) -> None:
        for slot, when in list(self.due.items()):
            if now >= when:
                del self.due[slot]
                self.start(slot)


def supervise(serve_one, workers: int, policy: Supervision = Supervision()) -> None:
    """Run `serve_one(beat)` in `workers` forked processes until this one is interrupted (SIGINT, SIGTERM):
    then stop them all (SIGTERM: uvicorn finishes the requests in flight) and wait for them.

    Each worker's event loop awaits `beat()` periodically; it stamps the worker's slot in memory
    shared with this process. A worker that dies, or whose stamp grows older than `policy.liveness_seconds`
    (stopped, or its loop stuck), is killed and replaced: at once when it had run a while, else after a
    back-off that doubles. Workers that keep ending before they ever beat cannot be helped by restarting:
    the server stops with a one-line reason (SystemExit, exit code 1), for a service manager to see."""
    import signal

    pool = Pool(serve_one, workers, policy)
    old = {sig: signal.signal(sig, pool.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for slot in range(workers):
            pool.start(slot)
        print(f"lenet serve: {workers} worker processes ({', '.join(map(str, sorted(pool.slots)))})", flush=True)
        while pool.running:
            time.sleep(0.2)
            now = time.monotonic()
            pool.reap(now)
            if pool.stopping:
                if now - pool.stopping[0] > policy.stop_seconds:
                    pool.signal_all(signal.SIGKILL)
                continue
            pool.kill_silent(now)
            pool.start_due(now)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if pool.give_up:
        raise SystemExit(pool.give_up)
