"""Hostile but fair clients against a real `lenet serve` on 127.0.0.1: the budgets of each connection
(header bytes, time to take a response, pipelined requests), one Host header, and worker processes
that die or stop answering. Every loop is bounded; the limits are short so each case takes seconds.
"""

import asyncio
import contextlib
import os
import select
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_hostile import exchange, get, status_of
from test_serve import children_of, gone

from lenet.serving.guard import MAX_HEADER_BYTES, MAX_PIPELINED, GuardedProtocol
from lenet.serving.workers import Supervision, supervise

from helpers import start_server, stop_server

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return result


@pytest.fixture(scope="module")
def server():
    # One worker process: the connection bound is per process.
    proc, url = start_server("--timeout", "2", "--max-connections", "20", "--workers", "1")
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port), proc
    stop_server(proc)


def test_a_header_line_that_never_ends_gets_431_at_once(server):
    """httptools hands a header over only when its line ends: the bytes must be counted as they come."""
    addr = server[:2]
    t0 = time.monotonic()
    sent, response = 0, b""
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        try:
            while sent < 4_000_000 and not select.select([s], [], [], 0.002)[0]:
                s.sendall(b"a" * 4096)
                sent += 4096
        except OSError:  # the server closed while we were sending
            pass
        try:
            while chunk := s.recv(65536):
                response += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert status_of(response) == 431, response[:200]
    assert time.monotonic() - t0 < 1.5  # well before the 2 s request timeout's 408
    assert sent < 100 * MAX_HEADER_BYTES
    assert get(addr) == 200


def test_blank_lines_between_requests_do_not_hold_a_connection(server):
    """Each blank line used to cancel the keep-alive timer, and no request timer was running."""
    addr = server[:2]
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status_of(s.recv(65536)) == 200
        t0 = time.monotonic()
        closed = False
        while not closed and time.monotonic() - t0 < 8:
            try:
                s.sendall(b"\r\n")
                closed = select.select([s], [], [], 0.5)[0] and s.recv(65536) == b""
            except OSError:
                closed = True
    assert closed and time.monotonic() - t0 < 5  # the 2 s request timeout, with a margin


def test_two_host_headers_are_refused(server):
    addr = server[:2]
    for first, second in ((b"attacker.example", b"127.0.0.1"), (b"127.0.0.1", b"attacker.example"),
                          (b"127.0.0.1", b"127.0.0.1")):
        response = exchange(addr, b"GET /model HTTP/1.1\r\nHost: %s\r\nHost: %s\r\nConnection: close\r\n\r\n"
                            % (first, second))
        assert status_of(response) == 400 and b"Host headers" in response, response[:300]
    assert get(addr, "/model") == 200


def test_pipelined_requests_are_capped_per_connection(server):
    """60 requests sent at once: the first MAX_PIPELINED are answered, then the connection closes."""
    addr = server[:2]
    one = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    response = exchange(addr, one * 60, timeout=10)
    assert response.count(b"HTTP/1.1 200 ") == MAX_PIPELINED
    assert response.rsplit(b"HTTP/1.1 200 ", 1)[1].lower().count(b"connection: close") == 1
    assert get(addr) == 200


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            count += fd.readlink().name.startswith("socket:")
    return count


def slow_readers(addr, n: int) -> list[socket.socket]:
    """`n` clients that pipeline 60 requests for a 9 KB file with a 1 KB receive buffer, and never read."""
    one = b"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.settimeout(5)
        s.connect(addr)
        s.sendall(one * 60)
        out.append(s)
        select.select([s], [], [], 5)  # one at a time: each is being answered, and stalls, before the next
    return out


def test_a_client_is_answered_while_slow_readers_hold_every_connection():
    """With a 30 s write timeout, a new client still gets in at once: each slow reader's connection
    closes after its MAX_PIPELINED answers or, stalled, gives its place up (the in-process tests below).
    Where the kernel has the memory to buffer every answer, nothing stalls in the server and the
    connections close on their own after the keep-alive time: this is then a check of the whole."""
    proc, url = start_server("--timeout", "30", "--max-connections", "20", "--workers", "1")
    addr = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
    slow = slow_readers(addr, 20)
    try:
        wait_for(lambda: get(addr) == 200, 3, "/health is refused while the slow readers stall")
        assert get(addr) == 200
    finally:
        for s in slow:
            s.close()
        stop_server(proc)


# The write timeout and the eviction of stalled connections, in process: where the kernel has memory
# to spare it takes whole answers into its socket buffers (4 MB each here), so a real client that
# does not read stalls the server's own buffer only under memory pressure or with large answers.

class Transport(asyncio.Transport):
    def __init__(self, loop):
        super().__init__()
        self.loop, self.protocol, self.written, self.buffered = loop, None, b"", 0
        self.closing = self.aborted = False

    def write(self, data):
        self.written += data

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True
        if not self.buffered:
            self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self):
        self.closing = self.aborted = True
        self.loop.call_soon(self.protocol.connection_lost, None)

    def get_write_buffer_size(self):
        return self.buffered

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


class Connections:
    """GuardedProtocol connections of one server, on the running event loop."""

    def __init__(self, max_connections: int, write_timeout: float):
        from uvicorn.config import Config
        from uvicorn.server import ServerState

        async def app(scope, receive, send):
            pass

        self.config = Config(app, log_level="warning")
        self.config.load()
        self.protocol = GuardedProtocol.with_limits(5.0, max_connections)
        self.protocol.write_timeout = write_timeout
        self.state, self.loop = ServerState(), asyncio.get_running_loop()

    def connect(self) -> Transport:
        transport = Transport(self.loop)
        transport.protocol = self.protocol(config=self.config, server_state=self.state, app_state={}, _loop=self.loop)
        transport.protocol.connection_made(transport)
        return transport


def test_a_response_that_waits_too_long_to_be_written_drops_the_connection():
    async def scenario():
        server = Connections(10, write_timeout=0.2)
        slow, quick, closing = server.connect(), server.connect(), server.connect()
        slow.protocol.pause_writing()  # the client stopped reading
        quick.protocol.pause_writing()
        await asyncio.sleep(0.1)
        quick.protocol.resume_writing()  # it read in time
        closing.buffered = 1000  # closed by us, with what the client has not read yet
        closing.close()
        closing.protocol.timeout_keep_alive_handler()
        await asyncio.sleep(0.3)
        return slow, quick, closing

    slow, quick, closing = asyncio.run(scenario())
    assert slow.aborted and closing.aborted and not quick.aborted and not quick.closing


def test_at_the_connection_limit_a_stalled_connection_gives_its_place_up():
    async def scenario():
        server = Connections(2, write_timeout=30)
        first, second = server.connect(), server.connect()
        third = server.connect()  # over the limit, and none stalled: refused
        await asyncio.sleep(0.01)
        first.protocol.pause_writing()
        await asyncio.sleep(0.01)
        second.protocol.pause_writing()
        fourth = server.connect()  # over the limit again: the longest stalled makes room
        await asyncio.sleep(0.01)
        return first, second, third, fourth

    first, second, third, fourth = asyncio.run(scenario())
    assert b" 503 " in third.written and third.closing
    assert first.aborted and not second.aborted
    assert fourth.written == b"" and not fourth.closing


# Worker processes.

def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "/health", timeout=2).status == 200
    except OSError:
        return False


@linux_only
def test_two_worker_deaths_within_seconds_are_replaced_not_a_clean_stop():
    proc, url = start_server("--workers", "2")
    try:
        first = children_of(proc.pid)
        assert len(first) == 2
        for pid in first:  # both within a second: the server used to stop, with exit code 0
            os.kill(pid, signal.SIGKILL)
        second = wait_for(lambda: len(c := children_of(proc.pid) - first) == 2 and c, 30, "not replaced")
        young = next(iter(second))
        os.kill(young, signal.SIGKILL)  # a worker that dies young: replaced after a back-off
        wait_for(lambda: len(children_of(proc.pid) - first - {young}) == 2, 30, "not replaced again")
        assert proc.poll() is None
        wait_for(lambda: all(healthy(url) for _ in range(8)), 60, "the replacements do not answer")
    finally:
        stop_server(proc)
    output = proc.stdout.read().decode(errors="replace")
    assert output.count("starting another") == 3 and "starting another in 1 s" in output, output[-2000:]


@linux_only
def test_a_stopped_worker_is_noticed_and_replaced():
    proc, url = start_server("--workers", "2")
    stopped = None
    try:
        workers = wait_for(lambda: len(c := children_of(proc.pid)) == 2 and c, 10, "two workers")
        time.sleep(2)  # both have beaten at least once
        stopped = min(workers)
        os.kill(stopped, signal.SIGSTOP)  # alive, but answers nothing
        t0 = time.monotonic()
        wait_for(lambda: gone({stopped}, 0.1), 30, "the stopped worker is still there")
        assert 5 < time.monotonic() - t0 < 25
        wait_for(lambda: len(children_of(proc.pid) - {stopped}) == 2, 30, "not replaced")
        wait_for(lambda: all(healthy(url) for _ in range(8)), 60, "the replacement does not answer")
        assert proc.poll() is None
    finally:
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGKILL)
        stop_server(proc)
    assert "has not answered for" in proc.stdout.read().decode(errors="replace")


def test_workers_that_never_start_stop_the_server_with_a_reason(capfd):
    def fails(beat):
        raise RuntimeError("cannot start")

    policy = Supervision(max_backoff=0.2, give_up_after=3)
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as stopped:
        supervise(fails, 2, policy)
    message = str(stopped.value.code)
    assert "in a row ended before answering" in message and "exit code 1" in message and "\n" not in message
    assert time.monotonic() - t0 < 20
    assert "RuntimeError: cannot start" in capfd.readouterr().err
