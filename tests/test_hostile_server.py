"""Hostile but fair clients against a real `lenet serve` on 127.0.0.1: the budgets of each connection
(header bytes, time to take a response, pipelined requests), one Host header, and worker processes
that die or stop answering. Every loop is bounded; the limits are short so each case takes seconds.
"""

import os
import select
import signal
import socket
import sys
import time
import urllib.request

import pytest

from lenet.serving.app import Supervision, supervise
from lenet.serving.guard import MAX_HEADER_BYTES, MAX_PIPELINED

from helpers import start_server, stop_server
from test_hostile import exchange, get, status_of
from test_serve import children_of, gone, socket_inodes

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


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


@linux_only
def test_slow_readers_neither_hold_their_connections_nor_keep_others_out(server):
    """20 clients (the server's whole --max-connections) pipeline big responses with a 1 KB receive
    buffer and never read: /health still answers at once, and within the 2 s write timeout (plus
    a margin for a busy machine) the server has dropped them all."""
    addr, proc = server[:2], server[2]
    baseline = len(socket_inodes(proc.pid))
    one = b"GET /static/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    slow = []
    try:
        for _ in range(20):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.settimeout(5)
            s.connect(addr)
            s.sendall(one * 60)
            slow.append(s)
        time.sleep(1.0)  # their responses fill the buffers; the writes wait
        t0 = time.monotonic()
        assert get(addr) == 200 and get(addr) == 200
        assert time.monotonic() - t0 < 2
        deadline = time.monotonic() + 15
        while len(socket_inodes(proc.pid)) > baseline + 1:
            assert time.monotonic() < deadline, "the slow readers' connections are still open"
            time.sleep(0.2)
    finally:
        for s in slow:
            s.close()
    assert get(addr) == 200


# Worker processes.

def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return result


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
            try:
                os.kill(stopped, signal.SIGKILL)
            except ProcessLookupError:
                pass
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
