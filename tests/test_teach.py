"""Teach mode: the samples folder, `lenet teach`, POST /teach, and image-folder data sets."""

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lenet.cli.main import main
from lenet.data import mnist as datasets
from lenet.data import samples as S
from lenet.nn.model_file import load_model_file

from conftest import write_dataset
from helpers import start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def digit(seed: int = 0) -> np.ndarray:
    """A 28x28 white-on-black bar: something the reader takes as a digit."""
    a = np.zeros((28, 28), np.uint8)
    a[4:24, 12 + seed % 3:16 + seed % 3] = 255
    return a


def test_add_sample_writes_the_image_folder_layout_and_a_manifest(tmp_path):
    paths = [S.add_sample(tmp_path, 255 - digit(i), digit(i), label, source="test") for i, label in
             enumerate([7, 7, 1])]
    assert len(set(paths)) == 3  # a new name each time, never one overwritten
    assert sorted(p.relative_to(tmp_path).parts[0] for p in paths) == ["1", "7", "7"]
    manifest = json.loads((tmp_path / S.MANIFEST).read_text())
    assert [e["label"] for e in manifest["samples"]] == [7, 7, 1]
    for entry in manifest["samples"]:
        assert (tmp_path / entry["seen"]).is_file() and (tmp_path / entry["given"]).is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # atomic writes leave no temporaries
    folder = S.read_folder(tmp_path)
    assert len(folder) == 3 and folder.skipped == [] and folder.per_label() == {"1": 1, "7": 2}
    assert (folder.images[folder.labels == 1][0] == digit(2)).all()  # the 28x28 as the network saw it


def test_add_sample_refuses_a_bad_label_and_a_full_folder(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="from 0 to 9"):
        S.add_sample(tmp_path, digit(), digit(), 10)
    with pytest.raises(ValueError, match="28x28"):
        S.add_sample(tmp_path, digit(), np.zeros((10, 10), np.uint8), 1)
    monkeypatch.setattr(S, "MAX_SAMPLES", 2)
    S.add_sample(tmp_path, digit(), digit(), 1)
    S.add_sample(tmp_path, digit(), digit(), 2)
    with pytest.raises(ValueError, match="already holds 2 samples"):
        S.add_sample(tmp_path, digit(), digit(), 3)
    assert S.count_samples(tmp_path) == 2


def test_a_folder_with_junk_is_read_with_each_bad_entry_named_and_no_link_followed(tmp_path):
    root, outside = tmp_path / "samples", tmp_path / "outside"
    (root / "7").mkdir(parents=True)
    (outside / "3").mkdir(parents=True)
    (root / "7" / "good.png").write_bytes(png(digit()))
    (root / "7" / "dark-on-light.png").write_bytes(png(255 - digit(1)))  # inverted to white on black
    (root / "7" / "notes.txt").write_text("not an image")
    (root / "7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "7" / "blank.png").write_bytes(png(np.zeros((40, 40), np.uint8)))  # no digit in it
    (root / "seven").mkdir()
    (root / "stray.png").write_bytes(png(digit()))
    (outside / "3" / "secret.png").write_bytes(png(digit()))
    os.symlink(outside / "3", root / "3")                                  # a label folder that is a link
    os.symlink(outside / "3" / "secret.png", root / "7" / "link.png")      # an image that is a link
    os.mkfifo(root / "7" / "pipe.png")                                     # would block a plain open()
    folder = S.read_folder(root)
    assert sorted(folder.files) == ["7/dark-on-light.png", "7/good.png"]
    assert (folder.images[folder.files.index("7/dark-on-light.png")] == digit(1)).all()
    why = dict(line.split(": ", 1) for line in folder.skipped)
    assert why["3"] == "a link, not followed" and why["7/link.png"] == "a link, not followed"
    assert why["7/notes.txt"].startswith("not an image")
    assert "cannot decode" in why["7/broken.png"] or "not an image" in why["7/broken.png"]
    assert "7/blank.png" in why and "7/pipe.png" in why and "seven/" in why and "stray.png" in why
    assert len(folder.skipped) == 8 and "skipped 8: " in folder.skipped_line()


def test_a_label_outside_the_models_classes_is_refused(tmp_path):
    (tmp_path / "12").mkdir()
    (tmp_path / "12" / "a.png").write_bytes(png(digit()))
    with pytest.raises(ValueError, match=re.escape("label 12 is outside the model's classes 0..9")):
        S.read_folder(tmp_path, num_classes=10)


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """An IDX data set of 200 + 100 random images: enough to replay and score in a blink."""
    path = tmp_path_factory.mktemp("small-mnist")
    write_dataset(path, n_train=200, n_test=100)
    return path


def test_lenet_teach_writes_a_model_with_its_card(tmp_path, small_mnist, capsys):
    for i, label in enumerate([1, 1, 4, 7]):
        S.add_sample(tmp_path / "mine", 255 - digit(i), digit(i), label)
    out = tmp_path / "taught.safetensors"
    assert main(["teach", str(tmp_path / "mine"), "--data-dir", str(small_mnist), "--steps", "3",
                 "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "4 samples (2 of 1, 1 of 4, 1 of 7)" in printed and "3 steps" in printed
    assert "MNIST test accuracy:" in printed and "before" in printed and "after" in printed
    weights, _config, info = load_model_file(out)
    card = info["teach"]
    assert card["samples"] == 4 and card["per_label"] == {"1": 2, "4": 1, "7": 1}
    assert card["base_model"].endswith("lenet-best.safetensors")
    assert 0 <= card["mnist_test_before"] <= 1 and info["test_accuracy"] == card["mnist_test_after"]
    assert (out.with_suffix(".json")).is_file()
    before, _, _ = load_model_file(card["base_model"])
    assert any(not np.array_equal(weights[k], before[k]) for k in weights)  # it did learn something


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no samples to learn from"),
    (lambda d: (d / "12").mkdir() or (d / "12" / "a.png").write_bytes(png(digit())), "outside the model's classes"),
    (lambda d: (d / "3").mkdir() or (d / "3" / "a.png").write_bytes(b"not a png"), "no samples to learn from"),
])
def test_lenet_teach_refuses_what_cannot_work_in_one_line(tmp_path, small_mnist, capsys, setup, message):
    samples = tmp_path / "s"
    samples.mkdir()
    setup(samples)
    out = tmp_path / "out.safetensors"
    assert main(["teach", str(samples), "--data-dir", str(small_mnist), "--steps", "1", "--out", str(out),
                 "--threads", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("lenet teach: error:")
    assert not out.exists()


def test_teach_route_does_not_exist_without_learn():
    from lenet.serving.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        r = c.post("/teach?label=3", content=png(digit()), headers={"content-type": "image/png"})
        assert r.status_code == 404
        assert c.get("/model").json()["learning"] is None
        assert c.get("/model").json()["answering"] == "bundled"


def test_teach_route_stores_a_correction_with_learn(tmp_path):
    from lenet.serving.app import create_app

    with TestClient(create_app(samples=tmp_path), base_url="http://127.0.0.1") as c:
        r = c.post("/teach?label=3", content=png(255 - digit()), headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["label"] == 3 and body["answering"] == "bundled"
        assert body["learning"] == {"samples": 1, "taught": 0, "training": False, "until_learning": 2, "failed": ""}
        assert (tmp_path / body["stored"]).is_file() and body["stored"].startswith("3/")
        assert c.post("/teach?label=10", content=png(digit()), headers={"content-type": "image/png"}).status_code == 422
        assert c.post("/teach", content=png(digit()), headers={"content-type": "image/png"}).status_code == 422
        r = c.post("/teach?label=3", content=png(digit()), headers={"content-type": "image/png",
                                                                     "origin": "http://evil.example"})
        assert r.status_code == 403  # the same cross-site checks as /predict
        r = c.post("/teach?label=3", content=b"x" * 10, headers={"content-type": "image/png"})
        assert r.status_code == 400
        assert c.get("/model").json()["learning"]["samples"] == 1
    assert len(S.read_folder(tmp_path)) == 1


def test_learning_server_never_imports_torch(tmp_path):
    code = ("import sys; from fastapi.testclient import TestClient; from lenet.serving.app import create_app\n"
            f"with TestClient(create_app(samples={str(tmp_path)!r}), base_url='http://127.0.0.1') as c:\n"
            f"    c.post('/teach?label=1', content={png(digit())!r}, headers={{'content-type': 'image/png'}})\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert S.count_samples(tmp_path) == 1


def test_an_image_folder_tree_is_a_data_set(tmp_path):
    for split, n in (("train", 30), ("test", 10)):
        for i in range(n):
            d = tmp_path / "split" / split / str(i % 3)
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{i}.png").write_bytes(png(digit(i)))
    (tmp_path / "split" / "train" / "0" / "readme.txt").write_text("junk")
    ds = datasets.load(tmp_path / "split")
    assert ds.train_images.shape == (30, 28, 28) and ds.test_images.shape == (10, 28, 28) and ds.num_classes == 3
    for i in range(20):
        d = tmp_path / "flat" / str(i % 2)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:02d}.png").write_bytes(png(255 - digit(i)))  # dark on light: inverted
    ds = datasets.load(tmp_path / "flat")
    assert len(ds.train_labels) == 18 and len(ds.test_labels) == 2 and ds.train_images.max() == 255
    assert ds.train_images[0, 0, 0] == 0


@pytest.mark.slow
def test_a_learning_server_learns_swaps_survives_a_restart_and_a_kill(tmp_path):
    """Three corrections: a fine-tune in the background, /predict answering meanwhile, the new
    model swapped in; a restart finds it; a kill -9 mid fine-tune loses no sample and no model."""
    samples = tmp_path / "samples"
    proc, url = start_server("--learn", "--samples", str(samples))

    def post(path, data):
        req = urllib.request.Request(url + path, data=data, headers={"content-type": "image/png"}, method="POST")
        return json.load(urllib.request.urlopen(req, timeout=30))

    try:
        for i, label in enumerate([1, 1, 1]):
            post(f"/teach?label={label}", png(255 - digit(i)))
        deadline = time.monotonic() + 600  # a busy machine: minutes
        while (model := json.load(urllib.request.urlopen(url + "/model")))["learning"]["training"]:
            assert "digit" in post("/predict", png(255 - digit()))  # never blocked by the fine-tune
            assert time.monotonic() < deadline, "the fine-tune did not finish"
            time.sleep(0.5)
        assert model["answering"] == "yours: 3 samples", model
    finally:
        stop_server(proc)
    proc, url = start_server("--learn", "--samples", str(samples))
    try:
        assert json.load(urllib.request.urlopen(url + "/model"))["answering"] == "yours: 3 samples"
        for i in range(3):
            post("/teach?label=4", png(255 - digit(i)))
        assert json.load(urllib.request.urlopen(url + "/model"))["learning"]["training"]
        before = (samples / S.MODEL).read_bytes()
    finally:
        proc.kill()
        proc.wait()
    time.sleep(1)
    assert len(S.read_folder(samples)) == 6
    assert (samples / S.MODEL).read_bytes() == before  # the previous model, whole


def test_replay_favours_the_classes_the_samples_are_mistaken_for():
    import torch

    from lenet.evaluation.scoring import Split
    from lenet.nn.torch_model import load_model
    from lenet.pretrained import bundled_model_path
    from lenet.training.teach import Replay

    model, config, _ = load_model(bundled_model_path())
    bars = np.stack([digit(i) for i in range(4)])  # read as 1s, taught as 4s
    samples = Split.of(bars, np.full(4, 4), "samples")
    mnist = Split.of(np.zeros((100, 28, 28), np.uint8), np.arange(100) % 10, "mnist")
    replay = Replay(model, config, samples, mnist)
    assert replay.weights.argmax() == 1 and replay.weights.sum() == 4
    picked = replay.draw(50, 1.0, len(mnist), torch.Generator().manual_seed(0))
    assert (mnist.labels[picked] == 1).all()
    assert len(set(mnist.labels[replay.draw(200, 0.0, len(mnist), torch.Generator()).tolist()].tolist())) == 10


# An Eastern Arabic eight (٨), a caret on the 280x280 pad, shifted by (dx, dy): read as a 1 today.
def eight(dx: int = 0, dy: int = 0) -> list:
    return [[(80 + dx, 235 + dy), (140 + dx, 45 + dy), (200 + dx, 235 + dy)]]


SWAP_DEADLINE = 300  # seconds for the background fine-tune and the swap: a busy machine


def test_the_page_learns_a_digit_it_misreads_from_three_corrections(tmp_path):
    """In Chromium, phone-sized: a ٨ read wrong, "8" tapped under "Wrong? It is a ..." for three
    drawings of it; once the page says "yours: 3 samples", a fourth drawing is read as an 8."""
    from playwright.sync_api import expect, sync_playwright
    from test_browser import CHROMIUM, FLAGS, draw

    from lenet.serving.learn import STEPS_VAR

    # A short fine-tune: the test is of the page and the swap, benchmarks/teach.py is of the learning.
    proc, url = start_server("--learn", "--samples", str(tmp_path), env={**os.environ, STEPS_VAR: "150"})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 375, "height": 740}, has_touch=True)
                page.goto(url)
                expect(page.locator("#model")).to_contain_text("bundled")
                expect(page.locator("#teach")).to_be_hidden()
                answer = page.locator("#digit")

                def read(strokes) -> str:
                    page.locator("#clear").click()
                    expect(answer).to_have_text("–")
                    draw(page, strokes)
                    expect(answer).to_have_text(re.compile(r"^\d$"), timeout=10_000)
                    return answer.text_content()

                assert read(eight()) != "8"
                expect(page.locator("#teach")).to_be_visible()
                buttons = page.locator("#teach-buttons button")
                expect(buttons).to_have_count(10)
                assert all(buttons.nth(d).bounding_box()["height"] >= 44 for d in range(10))  # a finger's size
                for i, (dx, dy) in enumerate([(0, 0), (-14, 6), (12, -8)]):
                    if i:
                        read(eight(dx, dy))
                    buttons.nth(8).tap()
                    expect(page.locator("#status")).to_contain_text("Stored as a 8", timeout=10_000)
                    if i == 0:
                        expect(page.locator("#status")).to_contain_text("2 more corrections")
                try:
                    expect(page.locator("#model")).to_contain_text("yours: 3 samples", timeout=SWAP_DEADLINE * 1000)
                except AssertionError:
                    learning = json.load(urllib.request.urlopen(url + "/model", timeout=10))["learning"]
                    pytest.fail(f"no swap to the taught model within {SWAP_DEADLINE} s; /model says {learning}; "
                                f"the page says {page.locator('#status').text_content()!r}")
                expect(page.locator("#status")).to_contain_text("Draw it again")
                assert read(eight(6, 10)) == "8", "the taught model still misreads the eight it was shown"
            finally:
                browser.close()
    finally:
        stop_server(proc)
    folder = S.read_folder(tmp_path)
    assert folder.labels.tolist() == [8, 8, 8] and folder.images.max() == 255


def test_an_image_over_the_size_limit_is_skipped_not_read(tmp_path, monkeypatch):
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "big.png").write_bytes(png(digit()))
    monkeypatch.setattr(S, "MAX_IMAGE_BYTES", 50)
    folder = S.read_folder(tmp_path)
    assert len(folder) == 0 and "over the limit of 50" in folder.skipped[0]


def test_lenet_teach_refuses_a_missing_model_and_a_missing_folder(tmp_path, small_mnist, capsys):
    S.add_sample(tmp_path / "s", digit(), digit(), 1)
    assert main(["teach", str(tmp_path / "s"), "--model", str(tmp_path / "none"), "--data-dir", str(small_mnist),
                 "--threads", "1"]) == 1
    assert "no such model file" in capsys.readouterr().err
    assert main(["teach", str(tmp_path / "absent"), "--data-dir", str(small_mnist), "--threads", "1"]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()  # not made by the refusal


def test_teaching_keeps_the_layers_before_train_from_and_learns_the_samples(mnist):
    """Bars the bundled model reads as 1s, taught as 4s: read as 4s after, with the kept layers untouched."""
    import torch

    from lenet.evaluation.scoring import Split
    from lenet.nn.torch_model import load_model, normalize
    from lenet.pretrained import bundled_model_path
    from lenet.training.teach import Teaching, fine_tune, split

    model, config, _ = load_model(bundled_model_path())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    samples = Split.of(np.stack([digit(i) for i in range(3)]), np.full(3, 4), "samples")
    with torch.no_grad():
        assert 4 not in model.eval()(normalize(samples.images, config)).argmax(1).tolist()
    replay = Split.of(mnist.train_images[:2000], mnist.train_labels[:2000], "mnist")
    teaching = Teaching(steps=200, train_from="c5", replay_pool=1024)
    fine_tune(model, config, samples, replay, teaching, seed=0)
    after = model.state_dict()
    for name in ("c1.weight", "bn1.weight", "bn1.running_mean", "c3.weight", "bn3.bias"):
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["c5.weight"], before["c5.weight"])
    with torch.no_grad():
        assert model(normalize(samples.images, config)).argmax(1).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="not a layer of this network"):
        split(model, "c4")


@pytest.mark.parametrize("clean_replay", [1.0, 0.0])
def test_clean_replay_keeps_that_share_of_the_pool_undistorted(mnist, clean_replay):
    """The pool's digits are MNIST's as they are (clean_replay 1) or each distorted (0)."""
    import torch

    from lenet.evaluation.scoring import Split
    from lenet.nn.torch_model import load_model
    from lenet.pretrained import bundled_model_path
    from lenet.training.teach import Replay, Teaching, features, replay_pool, run, split

    model, config, _ = load_model(bundled_model_path())
    teaching = Teaching(steps=1, replay_pool=64, clean_replay=clean_replay)
    kept, trained = split(model, teaching.train_from)
    digits = Split.of(mnist.train_images[:500], mnist.train_labels[:500], "mnist")
    samples = Split.of(np.stack([digit(0)]), np.full(1, 4), "samples")
    replay = Replay(model, config, samples, digits)
    x, y, held = replay_pool(model, config, digits, replay, teaching, torch.Generator().manual_seed(0))
    pick = replay.draw(64, teaching.conflict_share, len(digits), torch.Generator().manual_seed(0))
    assert torch.equal(y, digits.labels[pick])
    same = torch.isclose(x, features(model, config, digits.images[pick], kept), atol=1e-5).flatten(1).all(1)
    assert int(same.sum()) == (64 if clean_replay else 0)
    with torch.no_grad():  # the base's probabilities, softened by the distillation's temperature
        soft = torch.log_softmax(run(model, x, trained) / teaching.temperature, 1)
    assert teaching.temperature > 1 and torch.allclose(held, soft, atol=1e-5)
