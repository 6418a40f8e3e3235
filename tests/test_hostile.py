"""Hostile but fair input: each case a review found, replayed on small generated inputs.

Nothing a user hands us may lose their data, end in a traceback, hang, or wear the
server out. The server cases run against a real `lenet serve` on 127.0.0.1 with
short limits, every loop bounded.
"""

import gzip
import json
import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file, save_file

from lenet.files import FolderLock, clean_stale_temps, read_bounded, write_atomic
from lenet.nn.model_file import load_model_file
from lenet.pretrained import bundled_model_path

from conftest import idx_bytes, write_dataset
from helpers import cli, lenet, one_line_error, start_server, stop_server
from test_preprocess import png_header_only

# 1. Data loss: --save-preprocessed never overwrites.

def test_save_preprocessed_refuses_the_input_folder(digits):
    before = {p.name: p.read_bytes() for p in digits.iterdir()}
    r = cli("predict", "--save-preprocessed", str(digits), str(digits))
    one_line_error(r, "holds input images")
    assert {p.name: p.read_bytes() for p in digits.iterdir()} == before


def test_save_preprocessed_never_replaces_a_file(digits, tmp_path):
    out = tmp_path / "seen"
    out.mkdir()
    (out / "d0.png").write_bytes(b"precious")
    r = cli("predict", "--save-preprocessed", str(out), str(digits))
    assert r.returncode == 0, r.stderr
    assert (out / "d0.png").read_bytes() == b"precious"
    assert Image.open(out / "d0-2.png").size == (28, 28) and (out / "d1.png").is_file()
    assert "numbered names" in r.stderr


def test_save_preprocessed_checks_the_folder_first_and_prints_predictions(digits, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = cli("predict", "--save-preprocessed", str(blocker), str(digits))
    one_line_error(r, "is a file")
    r = cli("predict", "--save-preprocessed", str(blocker / "below"), str(digits))
    one_line_error(r, "cannot write there")


# 2. Divergence and non-finite numbers.

@pytest.mark.parametrize("flag, value", [("--lr", "1e6"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1"),
                                         ("--momentum", "nan"), ("--momentum", "1.5"), ("--weight-decay", "-inf")])
def test_numeric_flags_are_checked(flag, value, tmp_path):
    r = cli("train", f"{flag}={value}", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path / "none"))
    one_line_error(r, flag, "finite")


def test_a_diverging_run_stops_and_writes_no_model(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_train=512, n_test=64)
    out = tmp_path / "run"
    r = lenet("train", "--recipe", "fast", "--lr", "10", "--momentum", "0.99", "--batch-size", "8", "--epochs", "2",
              "--schedule", "constant", "--log-every", "0", "--no-plots", "--data-dir", str(data), "--out", str(out))
    one_line_error(r, "diverged", "lower --lr")
    assert not (out / "model.safetensors").exists() and not (out / "checkpoint.safetensors").exists()


def corrupt_model(path: Path, tensors=None, info=None, raw_info: str | None = None) -> Path:
    """The bundled model's file with its tensors and/or metadata replaced."""
    src = bundled_model_path()
    base_tensors = load_file(src)
    base_info = load_model_file(src)[2]
    save_file(tensors if tensors is not None else base_tensors, path,
              metadata={"lenet": raw_info if raw_info is not None else json.dumps(info or base_info)})
    return path


def test_a_model_with_nan_weights_is_refused_everywhere(tmp_path, digits):
    tensors = load_file(bundled_model_path())
    tensors["model.f6.weight"][0, 0] = np.nan
    bad = corrupt_model(tmp_path / "nan.safetensors", tensors=tensors)
    one_line_error(cli("predict", "--json", "--model", str(bad), str(digits)), "NaN")
    one_line_error(lenet("serve", "--model", str(bad), "--port", "1"), "NaN")


# 3. --resume on other data.

def test_resume_with_other_data_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, n_train=64, n_test=20, seed=0)
    write_dataset(b, n_train=64, n_test=20, seed=1)
    out = tmp_path / "run"
    r = lenet("train", "--recipe", "fast", "--epochs", "1", "--log-every", "0", "--no-plots",
              "--data-dir", str(a), "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = lenet("train", "--resume", "--epochs", "2", "--data-dir", str(b), "--out", str(out))
    one_line_error(r, "other data")


# 4. Model metadata and tensors checked before use.

def bundled_info():
    return load_model_file(bundled_model_path())[2]


def with_model(**changes):
    info = bundled_info()
    info["model"] = {**info["model"], **changes}
    return info


BAD_MODELS = {
    "no model config": dict(info={k: v for k, v in bundled_info().items() if k != "model"}),
    "model config a string": dict(info={**bundled_info(), "model": "fast"}),
    "metrics a list": dict(info={**bundled_info(), "metrics": [1, 2]}),
    "unknown arch": dict(info=with_model(arch="resnet")),
    "classes a string": dict(info=with_model(num_classes="10")),
    "5,000,000 classes": dict(info=with_model(num_classes=5_000_000)),
    "std zero": dict(info=with_model(std=0)),
    "lenet5 metadata, fast weights": dict(info=with_model(arch="lenet5", activation="sigmoid")),
    "nested 100,000 deep": dict(raw_info="[" * 100_000 + "]" * 100_000),
    "not JSON": dict(raw_info="{not json"),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_bad_model_metadata_is_a_clear_error(case, tmp_path):
    path = corrupt_model(tmp_path / "m.safetensors", **BAD_MODELS[case])
    with pytest.raises(ValueError, match=re.escape("m.safetensors")):
        load_model_file(path)


def test_wrong_shaped_tensors_are_refused(tmp_path):
    tensors = load_file(bundled_model_path())
    tensors["model.output.bias"] = np.zeros(1, np.float32)  # would broadcast silently
    with pytest.raises(ValueError, match=re.escape("output.bias has shape")):
        load_model_file(corrupt_model(tmp_path / "m.safetensors", tensors=tensors))
    tensors = load_file(bundled_model_path())
    del tensors["model.c3.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_model_file(corrupt_model(tmp_path / "m.safetensors", tensors=tensors))


def test_every_command_gives_one_line_for_a_bad_model(tmp_path, digits, mnist_dir):
    bad = corrupt_model(tmp_path / "m.safetensors", **BAD_MODELS["lenet5 metadata, fast weights"])
    env = dict(os.environ, LENET_DATA_DIR=str(mnist_dir))
    one_line_error(cli("predict", "--model", str(bad), str(digits)), "do not fit")
    one_line_error(cli("evaluate", "--model", str(bad), env=env), "do not fit")
    one_line_error(cli("export", "--model", str(bad), "--output", str(tmp_path / "m.onnx")), "do not fit")
    one_line_error(lenet("serve", "--model", str(bad), "--port", "1"), "do not fit")


# 5. Datasets: classes from the labels only when they make sense; sizes the network can take.

def write_parts(directory, train_x, train_y, test_x, test_y):
    directory.mkdir(parents=True, exist_ok=True)
    for stem, arr in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                      ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
        (directory / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(np.asarray(arr))))
    return directory


def small(n, size=28, w=None):
    return np.random.default_rng(0).integers(0, 256, (n, size, w or size))


@pytest.mark.parametrize("case, parts, message", [
    ("label 255", (small(20), list(range(10)) * 1 + [255] + list(range(9)), small(10), list(range(10))),
     "never occur"),
    ("empty test set", (small(20), list(range(10)) * 2, small(0), []), "holds no images"),
    ("8x8", (small(20, 8), list(range(10)) * 2, small(10, 8), list(range(10))), "needs 28x28"),
    ("32x32", (small(20, 32), list(range(10)) * 2, small(10, 32), list(range(10))), "needs 28x28"),
    ("1x1", (small(20, 1), list(range(10)) * 2, small(10, 1), list(range(10))), "needs 28x28"),
    ("non-square", (small(20, 28, 20), list(range(10)) * 2, small(10, 28, 20), list(range(10))), "square"),
])
def test_datasets_the_network_cannot_take_are_clear_errors(case, parts, message, tmp_path):
    data = write_parts(tmp_path / "data", *parts)
    r = lenet("train", "--epochs", "1", "--data-dir", str(data), "--out", str(tmp_path / "o"))
    one_line_error(r, message)


# 6. Special files: no hang, no unbounded read.

def test_fifo_and_devices_are_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    r = lenet("predict", str(fifo), "/dev/zero", "/dev/urandom", timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("not a regular file") == 3, r.stderr
    with pytest.raises(ValueError, match="not a regular file"):
        read_bounded("/dev/zero", 100)


def test_bounded_read_refuses_a_file_over_the_limit(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 101)
    with pytest.raises(ValueError, match="larger than the limit"):
        read_bounded(big, 100)


# 7-10. The server under abuse.

@pytest.fixture(scope="module")
def server():
    # One worker process: the connection bound is per process (the kernel spreads connections
    # over several unevenly, so 21 would not reliably reach the same one).
    proc, url = start_server("--timeout", "2", "--max-connections", "20", "--workers", "1")
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port)
    stop_server(proc)


def exchange(addr, request: bytes, timeout=10) -> bytes:
    """Send raw bytes, read until the server closes (or `timeout`)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0


def get(addr, path="/health", headers=b"") -> int:
    host = f"127.0.0.1:{addr[1]}".encode()
    return status_of(exchange(addr, b"GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
                                    % (path.encode(), host, headers)))


def post(addr, path, body: bytes, content_type: bytes, headers=b"") -> tuple[int, bytes]:
    host = f"127.0.0.1:{addr[1]}".encode()
    response = exchange(addr, b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s"
                              b"Connection: close\r\n\r\n%s" % (path.encode(), host, content_type, len(body),
                                                                  headers, body))
    return status_of(response), response.split(b"\r\n\r\n", 1)[-1]


def test_huge_headers_get_431(server):
    t0 = time.monotonic()
    assert get(server, headers=b"X-Big: " + b"a" * 200_000 + b"\r\n") == 431
    assert time.monotonic() - t0 < 5
    assert get(server) == 200


def test_slow_and_idle_connections_are_closed(server):
    t0 = time.monotonic()
    with socket.create_connection(server, timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
        response = s.recv(65536)
    assert status_of(response) == 408 and time.monotonic() - t0 < 6
    with socket.create_connection(server, timeout=10) as s:  # sends nothing at all
        assert status_of(s.recv(65536)) == 408


def test_too_many_connections_get_503_and_the_server_recovers(server):
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection(server, timeout=10))
        time.sleep(0.3)
        extra = socket.create_connection(server, timeout=10)
        assert status_of(extra.recv(65536)) == 503
        extra.close()
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while get(server) != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_batch_declaring_too_many_pixels_is_refused_before_decoding(server):
    boundary = b"b0undary"
    parts = b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%d.png\"\r\n"
                     b"Content-Type: image/png\r\n\r\n%s\r\n" % (boundary, i, png_header_only(6000, 6000))
                     for i in range(64))
    t0 = time.monotonic()
    status, body = post(server, "/predict/batch", parts + b"--%s--\r\n" % boundary,
                        b"multipart/form-data; boundary=" + boundary)
    assert status == 413 and b"pixels" in body and time.monotonic() - t0 < 5


def test_cross_site_posts_and_foreign_hosts_are_refused(server, mnist):
    pixels = json.dumps({"pixels": mnist.test_images[0].tolist()}).encode()
    assert post(server, "/predict", pixels, b"application/json")[0] == 200
    assert post(server, "/predict", pixels, b"application/json", b"Origin: http://evil.example\r\n")[0] == 403
    assert post(server, "/predict", pixels, b"application/json", b"Sec-Fetch-Site: cross-site\r\n")[0] == 403
    same = f"Origin: http://127.0.0.1:{server[1]}\r\nSec-Fetch-Site: same-origin\r\n".encode()
    assert post(server, "/predict", pixels, b"application/json", same)[0] == 200
    rebinding = exchange(server, b"GET /model HTTP/1.1\r\nHost: attacker.example:%d\r\nConnection: close\r\n\r\n"
                         % server[1])
    assert status_of(rebinding) == 421 and b"command" not in rebinding


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"pixels": [[' + b"9" * 5000 + b"]]}",
                                  b'{"pixels": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}"])
def test_pathological_json_is_a_400_or_422_not_a_500(server, body):
    status, _ = post(server, "/predict", body, b"application/json")
    assert status in (400, 422)


def test_an_oversized_chunked_upload_is_413(server):
    host = f"127.0.0.1:{server[1]}".encode()
    head = (b"POST /predict HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % host)
    chunk = b"a" * 1_000_000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7)) + b"0\r\n\r\n"
    start = b"--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
    first = b"%x\r\n%s\r\n" % (len(start), start)
    assert status_of(exchange(server, head + first + body)) == 413


def test_healthy_after_the_abuse(server):
    assert get(server) == 200


# 11. File-system errors: checked before the work, one line.

def test_output_paths_are_checked_before_the_work(tmp_path, mnist_dir):
    env = dict(os.environ, LENET_DATA_DIR=str(mnist_dir))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(cli("train", "--out", str(a_file), env=env), "is a file")
    one_line_error(cli("evaluate", "--report", str(a_file), env=env), "is a file")
    t0 = time.monotonic()
    one_line_error(cli("export", "--output", str(tmp_path)), "is a folder")
    assert time.monotonic() - t0 < 15  # refused before torch exports anything
    r = cli("train", "--threads", "-1")
    assert r.returncode == 2 and "--threads" in r.stderr


def test_an_os_error_mid_command_is_one_line(monkeypatch, capsys, tmp_path):
    import errno

    from lenet.cli import commands
    from lenet.cli import main as cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "model.safetensors"))

    monkeypatch.setattr(commands, "cmd_predict", full)  # the parser looks the command up when built
    assert cli.main(["predict", "x.png"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "model.safetensors" in err


# 12. File names that are not UTF-8.

def test_file_names_that_are_not_utf8_are_printed_safely(digits, tmp_path):
    odd = os.fsencode(digits) + b"/caf\xe9-\xff.png"
    os.rename(os.fsencode(digits / "d0.png"), odd)
    env = dict(os.environ, PYTHONIOENCODING="utf-8", LC_ALL="C.UTF-8")
    r = cli("predict", str(digits), env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert len(r.stdout.splitlines()) == 3


# 13-14. One training per folder; what a killed run left is cleaned.

def test_a_second_training_into_the_same_folder_is_refused(tmp_path, mnist_dir):
    out = tmp_path / "run"
    out.mkdir()
    with FolderLock(out):
        r = lenet("train", "--out", str(out), "--data-dir", str(mnist_dir))
    one_line_error(r, "another lenet process", f"PID {os.getpid()}")


def ended_pid() -> int:
    """The PID of a process that has ended: a killed run's, as its temporary names record it."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    stale = tmp_path / f".model.safetensors.lenet-{ended_pid()}.ab12cd34.tmp"
    stale.write_bytes(b"half a model")
    mine = tmp_path / ".notes.txt"
    mine.write_text("not ours")
    assert clean_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()
    write_atomic(tmp_path / "x.txt", lambda tmp: Path(tmp).write_text("ok"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt", "x.txt"]


def test_training_cleans_what_a_killed_run_left(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_train=64, n_test=20)
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f".checkpoint.safetensors.lenet-{ended_pid()}.zz99yy88.tmp"
    stale.write_bytes(b"x")
    r = lenet("train", "--recipe", "fast", "--epochs", "1", "--log-every", "0", "--no-plots",
              "--data-dir", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert not stale.exists()


# 15. Ports.

@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_bad_ports_are_usage_errors(port):
    r = lenet("serve", "--port", port)
    assert r.returncode == 2 and "--port" in r.stderr
