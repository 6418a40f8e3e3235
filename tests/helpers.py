"""Helpers the test files share."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def lenet(*args, env=None, timeout=600, **kw):
    """Run the `lenet` command as a user would; the completed process, text output."""
    return subprocess.run([sys.executable, "-m", "lenet", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def cli(*args, env=None, input=None, cwd=None):
    """`lenet ARGS` run in this process (`main()`, as httpie's tests do): the same exit status and
    output as `lenet` above, without starting Python; for tests of what the command says, where
    a new process is not the point. `env`: the environment variables to run with."""
    import contextlib
    import io
    import signal

    from lenet.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
    pipe = signal.getsignal(signal.SIGPIPE) if hasattr(signal, "SIGPIPE") else None
    saved_env, saved_cwd, saved_stdin = dict(os.environ), os.getcwd(), sys.stdin
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = stdin
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main([str(a) for a in args])
            except SystemExit as e:  # argparse's usage errors and --help
                status = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        if pipe is not None:
            signal.signal(signal.SIGPIPE, pipe)
    return subprocess.CompletedProcess(["lenet", *map(str, args)], int(status or 0), out.getvalue(), err.getvalue())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*args, env=None):
    """`lenet serve` on a free loopback port; (process, base URL) once /health answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "serve", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env or dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("lenet serve did not start: " + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.2)


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def one_line_error(r, *words):
    """Exit 1 with a one-line message holding `words`, and no traceback (a completed `lenet` process)."""
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len([line for line in r.stderr.splitlines() if "error" in line]) == 1, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
