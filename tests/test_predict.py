"""`lenet predict` end to end, the NumPy path against torch, and the bundled model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lenet.config import RECIPES, ModelConfig
from lenet.data.disguise import disguise
from lenet.evaluation.scoring import Split, score
from lenet.nn.numpy_model import NumpyModel
from lenet.nn.torch_model import build_model, init_weights, load_model, normalize
from lenet.pretrained import bundled_model_path

from helpers import cli
from test_preprocess import png_header_only


@pytest.fixture
def folder(tmp_path, mnist):
    """Five good images of known digits and every kind of bad input."""
    rng = np.random.default_rng(0)
    good = tmp_path / "digits"
    good.mkdir()
    labels = {}
    for i in range(5):
        name = f"photo{i}.png"
        Image.fromarray(disguise(mnist.test_images[i], "dark-on-light", rng)).save(good / name)
        labels[str(good / name)] = int(mnist.test_labels[i])
    (good / "notes.txt").write_text("not an image, and not picked up from a folder")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.png").write_text("not an image")
    (bad / "zero.png").write_bytes(b"")
    full = (good / "photo0.png").read_bytes()
    (bad / "truncated.png").write_bytes(full[: len(full) // 2])
    Image.new("L", (1, 1)).save(bad / "tiny.png")
    (bad / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    return good, bad, labels


def test_predict_folder_json_and_bad_inputs(folder, tmp_path):
    good, bad, labels = folder
    r = cli("predict", "--json", "--save-preprocessed", str(tmp_path / "seen"), str(good), str(bad),
            str(tmp_path / "missing.png"))
    assert r.returncode == 1  # some inputs failed
    assert "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5 + 5 + 1
    predicted = {row["file"]: row for row in rows if "digit" in row}
    assert set(predicted) == set(labels)
    for file, row in predicted.items():
        assert row["digit"] == labels[file]
        assert len(row["probabilities"]) == 10 and abs(sum(row["probabilities"]) - 1) < 1e-4
    errors = {row["file"].rsplit("/", 1)[1]: row["error"] for row in rows if "error" in row}
    assert set(errors) == {"text.png", "zero.png", "truncated.png", "tiny.png", "bomb.png", "missing.png"}
    assert "over the limit" in errors["bomb.png"] and "too small" in errors["tiny.png"]
    assert "no such file" in errors["missing.png"] and "empty" in errors["zero.png"]
    assert sorted(p.name for p in (tmp_path / "seen").iterdir()) == [f"photo{i}.png" for i in range(5)]


def test_predict_text_and_top_k(folder):
    good, _, labels = folder
    r = cli("predict", "--top-k", "3", str(good / "photo1.png"))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith(f"{good / 'photo1.png'}: {labels[str(good / 'photo1.png')]} (")
    assert line.count("(") == 3


def test_predict_does_not_import_torch(folder):
    good, _, _ = folder
    code = ("import sys; from lenet.cli.main import main; rc = main(['predict', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(good / "photo0.png")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_numpy_and_torch_agree_on_the_test_set(mnist):
    """The torch-free inference path gives the same predictions as the model it was saved from."""
    path = bundled_model_path()
    model, config, _ = load_model(path)
    split = Split.of(mnist.test_images, mnist.test_labels, "test")
    ref = score(model, split, config, return_probabilities=True)
    probs = NumpyModel.load(path).probabilities(mnist.test_images)
    assert (probs.argmax(1) == ref.predictions).mean() == 1.0
    assert np.abs(probs - ref.probabilities).max() < 1e-4


@pytest.mark.parametrize("config", [ModelConfig("lenet5", "sigmoid"), ModelConfig("lenet5", "relu"),
                                    RECIPES["tutorial"].model_config(), ModelConfig("fast", "relu")],
                         ids=["lenet5-sigmoid", "lenet5-relu", "seed-raw-pixels", "fast"])
def test_numpy_forward_matches_torch_for_every_network(config):
    torch.manual_seed(0)
    model = build_model(config)
    init_weights(model, "xavier")
    if config.arch == "fast":  # batch-norm statistics and scales far from 0 and 1, negative scales too
        model(torch.randn(64, 1, 28, 28) * 3)
        for bn in (model.bn1, model.bn3, model.bn5):
            torch.nn.init.uniform_(bn.weight, -2, 2)
            torch.nn.init.uniform_(bn.bias, -1, 1)
    model.eval()
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    with torch.no_grad():
        expected = model(normalize(torch.from_numpy(images), config)).numpy()
    numpy_model = NumpyModel({k: v.numpy() for k, v in model.state_dict().items()}, config)
    got = numpy_model.forward(numpy_model.normalize(images))
    # Untrained networks answer almost alike for every input, so the bar is relative: the two
    # disagree by under 1% of how much the scores vary from one image to the next.
    assert np.abs(got - expected).max() < 0.01 * expected.std(0).mean()


def test_bundled_model_scores_at_least_99_percent(mnist_dir):
    r = cli("evaluate", "--json", "--data-dir", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["n"] == 10_000 and result["accuracy"] >= 0.99
    assert bundled_model_path().stat().st_size < 1_000_000


def without_torch(*args, env=None):
    """Run the CLI in a process where `import torch` fails, as on the inference-only install."""
    code = "import sys; sys.modules['torch'] = None; from lenet.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_evaluate_without_torch_uses_numpy(mnist_dir):
    r = without_torch("evaluate", "--json", env=dict(os.environ, LENET_DATA_DIR=str(mnist_dir)))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] >= 0.99


def test_training_without_torch_says_which_extra(mnist_dir):
    from lenet.cli.main import install_command  # pip install 'lenet[train]', or -e '<source>[train]'

    r = without_torch("train")
    assert r.returncode == 1 and r.stderr.strip().endswith(install_command("train")) and "Traceback" not in r.stderr
    assert "[train]" in install_command("train")


ONE_PROCESS = """
import json, sys
from pathlib import Path
from lenet.nn.numpy_model import NumpyModel
from lenet.reading.predict import stream_files
from lenet.pretrained import bundled_model_path
paths = sorted(Path(sys.argv[1]).iterdir())
print(json.dumps([x.to_json() for x in stream_files(NumpyModel.load(bundled_model_path()), paths, workers=1)]))
"""


def test_a_folder_is_read_on_every_core_in_order_and_the_same_as_one_process(tmp_path, mnist):
    """Over POOL_FROM files the reading is spread over processes: the results, bad file included,
    come in the input order and equal those of one process."""
    from lenet.reading.predict import POOL_FROM

    n = POOL_FROM + 16
    for i in range(n):
        Image.fromarray(255 - mnist.test_images[i]).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "040.png").write_bytes(b"not an image")
    r = cli("predict", "--json", str(tmp_path))
    assert r.returncode == 1  # one bad file
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(tmp_path / f"{i:03d}.png") for i in range(n)]
    assert "error" in lines[40] and sum("error" in line for line in lines) == 1
    # One process, reading with one BLAS thread as the command does (a product split over threads
    # rounds differently in the last digit).
    one = subprocess.run([sys.executable, "-c", ONE_PROCESS, str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}, check=True)
    assert lines == json.loads(one.stdout)
    right = [line["digit"] == int(mnist.test_labels[i]) for i, line in enumerate(lines) if "digit" in line]
    assert sum(right) >= 0.95 * len(right)


def test_a_folder_is_cut_into_chunks_that_shrink_towards_the_end():
    """Chunks of at most CHUNK that shrink to LAST_CHUNK at the end, so no process is left with a
    big last chunk while the others wait."""
    from lenet.reading.predict import CHUNK, LAST_CHUNK, chunk_size

    sizes, left = [], 2000
    while left > 0:
        sizes.append(min(left, chunk_size(left, 2)))
        left -= sizes[-1]
    assert sizes[0] == CHUNK and max(sizes) == CHUNK and sizes == sorted(sizes, reverse=True)
    assert all(size == LAST_CHUNK for size in sizes[-8:-1]) and sizes[-1] <= LAST_CHUNK
    assert chunk_size(5, 2) == LAST_CHUNK


def run_on_terminal(args, stdout_too: bool) -> tuple[str, str]:
    """`lenet *args` with stderr (and stdout too when `stdout_too`) a pseudo-terminal; (what the
    terminal received, stdout when it is a pipe)."""
    import pty
    import threading

    master, slave = pty.openpty()
    received = []

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed (EIO on Linux)
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        r = subprocess.run([sys.executable, "-m", "lenet", *args], stderr=slave,
                           stdout=slave if stdout_too else subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert r.returncode == 0
    return b"".join(received).decode(), r.stdout or ""


def test_a_large_folder_shows_a_progress_bar_on_the_terminal_and_keeps_results_clean(tmp_path, mnist):
    from lenet.cli.progress import PROGRESS_FROM

    n = PROGRESS_FROM
    for i in range(n):
        Image.fromarray(mnist.test_images[i]).save(tmp_path / f"{i:03d}.png")
    terminal, out = run_on_terminal(["predict", str(tmp_path)], stdout_too=False)
    assert len(out.splitlines()) == n and "#" not in out  # results to the file, the bar to the terminal
    assert f"[{'#' * 30}] {n}/{n} images" in terminal
    assert "predicted, 0 failed" in terminal

    terminal, _ = run_on_terminal(["predict", str(tmp_path)], stdout_too=True)
    # What the terminal shows of each line: the text after its last carriage return.
    shown = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in terminal.replace("\r\n", "\n").split("\n")]
    results = [line for line in shown if line.startswith(str(tmp_path))]
    assert len(results) == n and all("images" not in line and "#" not in line for line in results)
    assert any(line.startswith(f"[{'#' * 30}] {n}/{n} images") for line in shown)
    # Too few files for a bar: none.
    few = tmp_path / "few"
    few.mkdir()
    (tmp_path / "000.png").rename(few / "000.png")
    terminal, _ = run_on_terminal(["predict", str(few)], stdout_too=True)
    assert "[" not in terminal.split("\n")[0] and "images/s" in terminal
