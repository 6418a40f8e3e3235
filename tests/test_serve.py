"""The HTTP API: every endpoint and every error code, and that bad requests leave it healthy."""

import asyncio
import io
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lenet.data.disguise import disguise
from lenet.nn.numpy_model import NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.reading.digit import read_digit
from lenet.reading.predict import judged, predict_images
from lenet.serving.app import create_app
from lenet.serving.batcher import INLINE_PIXELS, Batcher
from lenet.serving.guard import MAX_BODY
from lenet.serving.inputs import MAX_BATCH

from helpers import lenet, start_server, stop_server
from test_preprocess import png_bytes as png
from test_preprocess import png_header_only


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def digits(mnist):
    """PNG bytes of eight disguised MNIST test digits, with their labels."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(8):
        buf = io.BytesIO()
        Image.fromarray(disguise(mnist.test_images[i], "dark-on-light", rng)).save(buf, "PNG")
        out.append((buf.getvalue(), int(mnist.test_labels[i])))
    return out


def check_answer(body, label, seen=True):
    assert body["digit"] == label
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["probability"] == max(body["probabilities"])
    assert ("preprocessed" in body) == seen
    if seen:
        image = np.array(body["preprocessed"])
        assert image.shape == (28, 28) and image.max() == 255


def test_page_health_model_and_openapi(client):
    r = client.get("/")
    assert r.status_code == 200 and "<canvas" in r.text and "/static/app.js" in r.text
    assert "http" not in r.text.replace("http-equiv", "")  # no CDN: everything is served locally
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["parameters"] > 0 and info["test_accuracy"] >= 0.99 and info["version"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict", "/predict/batch", "/health", "/model"} <= set(paths)


def test_the_page_links_nothing_that_needs_the_internet(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/docs").status_code == 404  # its viewer loads a CDN script: not served
    page = client.get("/").text
    assert 'href="/static/api.html"' in page and 'href="/docs"' not in page
    api = client.get("/static/api.html")
    assert api.status_code == 200 and "/predict/batch" in api.text
    assert "http" not in api.text.replace("http-equiv", "").replace("http://127.0.0.1:8000", "")


def test_predict_raw_multipart_and_json(client, digits, mnist):
    data, label = digits[0]
    check_answer(client.post("/predict?preprocessed=true", content=data, headers={"content-type": "image/png"}).json(),
                 label)
    check_answer(client.post("/predict", content=data, headers={"content-type": "image/png"}).json(), label, False)
    data, label = digits[1]
    check_answer(client.post("/predict?preprocessed=1", files={"file": ("d.png", data, "image/png")}).json(), label)
    pixels = mnist.test_images[2].tolist()
    check_answer(client.post("/predict?preprocessed=true", json={"pixels": pixels}).json(), int(mnist.test_labels[2]))


def test_a_large_image_is_read_off_the_event_loop_and_answers_the_same(client, mnist):
    digit = mnist.test_images[0]
    small, large = (png(255 - np.asarray(Image.fromarray(digit).resize((side, side)))) for side in (84, 400))
    assert 84 * 84 <= INLINE_PIXELS < 400 * 400
    answers = [client.post("/predict", content=data, headers={"content-type": "image/png"}).json()
               for data in (small, large)]
    assert answers[0]["digit"] == answers[1]["digit"] == int(mnist.test_labels[0])


def test_readings_ready_together_are_predicted_together(mnist):
    model = NumpyModel.load(bundled_model_path())
    batcher = Batcher(model)
    passes = []
    flush = batcher.flush
    batcher.flush = lambda: (passes.append(len(batcher.waiting)), flush())
    readings = [read_digit(image) for image in mnist.test_images[:6]]

    async def together():
        return await asyncio.gather(*(batcher.predict(r) for r in readings))

    results = asyncio.run(together())
    assert passes == [6]  # one forward pass for all six
    for result, reading, label in zip(results, readings, mnist.test_labels[:6], strict=False):
        alone = judged(model, predict_images(model, reading.image[None])[0], reading)
        assert result.digit == alone.digit == label
        np.testing.assert_allclose(result.probabilities, alone.probabilities, atol=1e-6)


def test_readings_made_in_the_thread_together_are_predicted_together(mnist):
    import anyio

    from lenet.errors import ImageError

    model = NumpyModel.load(bundled_model_path())
    batcher = Batcher(model, most=4)
    passes = []
    flush = batcher.flush
    batcher.flush = lambda: (passes.append(len(batcher.waiting)), flush())
    images = [np.asarray(Image.fromarray(255 - d).resize((200, 200))) for d in mnist.test_images[:7]]

    def read(image):
        if image is None:
            raise ImageError("upload: cannot decode the image")
        return read_digit(image)

    async def together():
        request = type("Request", (), {"app": type("App", (), {"state": type("State", (), {})})})
        request.app.state.limiter = anyio.CapacityLimiter(1)
        return await asyncio.gather(*(batcher.read_and_predict(request, read, image) for image in [*images, None]),
                                    return_exceptions=True)

    results = asyncio.run(together())
    assert passes == [4, 3]  # at most `most` a pass; the last one failing does not hold the others back
    assert isinstance(results[-1], ImageError) and batcher.reading == 0 and not batcher.waiting
    for result, label in zip(results[:-1], mnist.test_labels[:7], strict=True):
        assert result.digit == label


@pytest.mark.parametrize("query, seen", [("", False), ("?preprocessed=true", True)])
def test_batch(client, digits, query, seen):
    files = [("file", (f"d{i}.png", data, "image/png")) for i, (data, _) in enumerate(digits)]
    files.append(("file", ("bad.png", b"not an image", "image/png")))
    r = client.post("/predict/batch" + query, files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == len(digits) + 1
    for result, (_, label) in zip(results, digits, strict=False):
        check_answer(result, label, seen)
    assert results[-1]["status"] == 400 and "not an image" in results[-1]["error"]
    assert "preprocessed" not in results[-1]


def test_every_answer_is_what_its_response_model_says(client, digits):
    """The routes answer the results' to_json() as they are; their response models (the schema at
    /docs) must say the same: every field there, nothing missing, nothing else."""
    from lenet.serving import schema

    def same(model, body: dict):
        model.model_validate(body)
        assert set(body) <= set(model.model_fields), (model.__name__, set(body) - set(model.model_fields))

    data, headers = digits[0][0], {"content-type": "image/png"}
    for query in ("", "?preprocessed=true"):
        same(schema.PredictionAnswer, client.post("/predict" + query, content=data, headers=headers).json())
    number = client.post("/predict/number", content=data, headers=headers).json()
    same(schema.NumberAnswer, number)
    for digit in number["digits"]:
        same(schema.DigitAnswer, digit)
    explained = client.post("/explain", content=data, headers=headers).json()
    same(schema.ExplainAnswer, explained)
    for layer in explained["layers"]:
        same(schema.Layer, layer)
    files = [("file", ("d.png", data, "image/png")), ("file", ("bad.png", b"not an image", "image/png"))]
    batch = client.post("/predict/batch?preprocessed=true", files=files).json()
    same(schema.BatchAnswer, batch)
    for entry in batch["results"]:
        same(schema.BatchEntry, entry)
    paths = client.get("/openapi.json").json()["paths"]
    for route, model in [("/predict", "PredictionAnswer"), ("/predict/number", "NumberAnswer"),
                         ("/explain", "ExplainAnswer"), ("/predict/batch", "BatchAnswer")]:
        answer = paths[route]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"].endswith(model), (route, answer)


@pytest.mark.parametrize("kwargs, status, message", [
    ({"content": b"\0" * (MAX_BODY + 1), "headers": {"content-type": "image/png"}}, 413, "over"),
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "unsupported content type"),
    ({"content": b"", "headers": {}}, 415, "unsupported content type"),
    ({"content": b"garbage bytes", "headers": {"content-type": "image/png"}}, 400, "not an image"),
    ({"content": png_header_only(20_000, 20_000), "headers": {"content-type": "image/png"}},
     413, "declare 400,000,000 pixels"),
    ({"json": {"pixels": [[0] * 28] * 28}}, 422, "no ink"),
    ({"json": {"pixels": [[1, 2], [3]]}}, 422, "pixels"),
    ({"json": {"pixels": [[300] * 28] * 28}}, 422, "0 to 255"),
    ({"json": {"image": []}}, 422, "pixels"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
])
def test_errors_are_json_with_the_right_status(client, kwargs, status, message):
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_blank_drawing_is_422(client):
    buf = io.BytesIO()
    Image.new("RGB", (280, 280), "white").save(buf, "PNG")
    r = client.post("/predict", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 422 and "no ink" in r.json()["error"]


def test_batch_errors(client, digits):
    assert client.post("/predict/batch", content=digits[0][0],
                       headers={"content-type": "image/png"}).status_code == 415
    files = [("file", (f"d{i}.png", digits[0][0], "image/png")) for i in range(MAX_BATCH + 1)]
    assert client.post("/predict/batch", files=files).status_code in (400, 413)


def test_still_healthy_and_right_after_a_storm_of_bad_requests(client, digits):
    rng = np.random.default_rng(0)
    for i in range(200):  # bounded
        kind = i % 4
        if kind == 0:
            client.post("/predict", content=rng.bytes(int(rng.integers(0, 5000))),
                        headers={"content-type": "image/png"})
        elif kind == 1:
            client.post("/predict", content=b"x" * (MAX_BODY + 10), headers={"content-type": "image/jpeg"})
        elif kind == 2:
            client.post("/predict", json={"pixels": rng.integers(-5, 400, (28, 28)).tolist()})
        else:
            client.post("/predict", content=json.dumps({"pixels": "?"}), headers={"content-type": "application/json"})
    assert client.get("/health").status_code == 200
    data, label = digits[3]
    check_answer(client.post("/predict", content=data, headers={"content-type": "image/png"}).json(), label, False)


def children_of(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def gone(pids: set[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()
                   for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_worker_processes_answer_and_end_with_the_server(digits, how):
    proc, url = start_server("--workers", "2")
    try:
        workers = children_of(proc.pid)
        assert len(workers) == 2
        def ask(item):  # from 8 threads at once: the answers must not be mixed up between requests
            data, label = item
            request = urllib.request.Request(url + "/predict", data=data, headers={"Content-Type": "image/png"})
            return json.load(urllib.request.urlopen(request, timeout=10)), label

        with ThreadPoolExecutor(8) as pool:
            for body, label in pool.map(ask, digits * 6):
                check_answer(body, label, seen=False)
    finally:
        if how == "terminate":
            stop_server(proc)
        else:
            proc.kill()  # SIGKILL: the workers are told by the kernel (PR_SET_PDEATHSIG)
            proc.wait()
    assert gone(workers)


def socket_inodes(pid: int) -> set[str]:
    links = (fd.readlink().name for fd in Path(f"/proc/{pid}/fd").iterdir())
    return {name[len("socket:["):-1] for name in links if name.startswith("socket:")}


def listening(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on `port` (/proc/net/tcp, state 0A)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            out.add(fields[9])
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_connections_are_spread_over_the_workers(digits):
    """Each worker listens on a socket of its own, and 32 keep-alive clients that connect at once and
    ask at once land on both workers, not all on the one that wakes first (see serve.run)."""
    proc, url = start_server("--workers", "2")
    port = int(url.rsplit(":", 1)[1])
    body = digits[0][0]
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def ask(reader, writer):  # one request: the connection is accepted, and counted before it idles
        writer.write(request)
        assert b" 200 " in await reader.readline()
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)

    async def clients():
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(32)))
        await asyncio.gather(*(ask(r, w) for r, w in opened))
        held = {pid: len(socket_inodes(pid)) - before[pid] for pid in workers}  # the connections, still open
        for _, w in opened:
            w.close()
        return held

    try:
        workers = sorted(children_of(proc.pid))
        deadline = time.monotonic() + 60
        while not all(socket_inodes(pid) & listening(port) for pid in workers):  # both loaded their model
            assert time.monotonic() < deadline, "the workers did not both listen within 60 s"
            time.sleep(0.1)
        # Each worker listens on a socket of its own; the server process on none.
        mine = [socket_inodes(pid) & listening(port) for pid in workers]
        assert len(mine[0]) == len(mine[1]) == 1 and mine[0] != mine[1]
        assert not socket_inodes(proc.pid) & listening(port)
        before = {pid: len(socket_inodes(pid)) for pid in workers}
        held = asyncio.run(clients())
        assert sum(held.values()) == 32
        assert all(n > 0 for n in held.values()), held
        # The port is not shared with another server, though the workers share it among themselves.
        second = lenet("serve", "--port", str(port), "--workers", "2", timeout=60)
        assert second.returncode == 1 and "Address already in use" in second.stderr
    finally:
        stop_server(proc)


def test_a_small_reading_does_not_wait_for_a_large_one_in_the_thread():
    """A small image, read on the event loop, is predicted in the next pass even while a large one
    is still being read in the inference thread."""
    import threading

    import anyio

    batcher = Batcher(None, most=4)  # flush replaced below: no model is used
    answered = []
    batcher.flush = lambda: (answered.append([r for r, _ in batcher.waiting]),
                             [f.set_result(r) for r, f in batcher.waiting], batcher.waiting.clear(),
                             setattr(batcher, "due", False), setattr(batcher, "inline", 0))
    release = threading.Event()

    def slow_read():
        release.wait(5)
        return "large"

    async def both():
        request = type("Request", (), {"app": type("App", (), {"state": type("State", (), {})})})
        request.app.state.limiter = anyio.CapacityLimiter(1)
        large = asyncio.ensure_future(batcher.read_and_predict(request, slow_read))
        await asyncio.sleep(0.05)  # the large one is in the thread now
        small = await asyncio.wait_for(batcher.predict("small"), 2)
        release.set()
        return small, await large

    assert asyncio.run(both()) == ("small", "large")
    assert answered[0] == ["small"]  # answered while the large one was still being read
