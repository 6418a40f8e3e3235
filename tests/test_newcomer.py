"""A newcomer's first hour (issue 31): every hint the command prints works as printed, a quick
run does not replace a finished model, a missing extra names the install command that works."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lenet.cli.main import main

from conftest import write_dataset


def test_train_refuses_to_replace_a_finished_model(tmp_path, capsys):
    out = tmp_path / "output"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a finished model")
    assert main(["train", "--recipe", "fast", "--subset", "100", "--out", str(out),
                 "--data-dir", str(tmp_path / "unused")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a finished model" in err[0] and "--overwrite" in err[0], err
    assert (out / "model.safetensors").read_bytes() == b"a finished model"


def test_overwrite_replaces_a_finished_model(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "output"
    write_dataset(data, n_train=200, n_test=50)
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a finished model")
    assert main(["train", "--recipe", "fast", "--out", str(out), "--data-dir", str(data), "--no-plots",
                 "--log-every", "0", "--threads", "1", "--overwrite"]) == 0
    assert (out / "model.safetensors").read_bytes() != b"a finished model"


def test_a_short_lenet5_run_points_to_the_fast_recipe(tmp_path, capsys):
    out = tmp_path / "output"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a finished model")
    main(["train", "--epochs", "1", "--subset", "100", "--out", str(out), "--overwrite", "--threads", "1",
          "--data-dir", str(tmp_path / "none")])  # ends at the missing data, after the note
    assert "use --recipe fast" in capsys.readouterr().err


def test_the_printed_resume_command_finishes_the_run(tmp_path):
    """Ctrl-C in a training whose data is elsewhere, then the resume command exactly as printed, run
    from another folder with no LENET_DATA_DIR and no other copy of the data to find."""
    data, out = tmp_path / "my data", tmp_path / "my runs" / "first"  # spaces: the hint must quote
    write_dataset(data, n_train=4000, n_test=50)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LENET_DATA_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # no user-cache copy either
    env["PYTHONUNBUFFERED"] = "1"  # each log line as it is printed, so the interrupt lands early in the epoch
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "train", "--recipe", "fast", "--batch-size", "8",
                             "--data-dir", str(data), "--out", str(out), "--log-every", "1", "--no-plots",
                             "--threads", "1"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not proc.stdout.readline().startswith("epoch 1 batch"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted in epoch 1 at batch" in err, err
    hint = err.split("continue with: ", 1)[1].strip()
    args = shlex.split(hint)
    assert args[:3] == ["lenet", "train", "--resume"] and "--data-dir" in args and "--out" in args, hint

    resumed = subprocess.run([sys.executable, "-m", "lenet", *args[1:], "--no-plots", "--threads", "1"],
                             env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and (out / "model.safetensors").is_file()


def test_resume_finds_the_data_the_checkpoint_recorded(tmp_path):
    """Without --data-dir, --resume reads the data where the interrupted run found it."""
    from lenet.training.checkpoint import CHECKPOINT_FILE, recorded_data_dir

    data, out = tmp_path / "data", tmp_path / "out"
    write_dataset(data, n_train=200, n_test=50)
    assert main(["train", "--recipe", "fast", "--data-dir", str(data), "--out", str(out), "--no-plots",
                 "--log-every", "0", "--threads", "1"]) == 0
    assert recorded_data_dir(out / CHECKPOINT_FILE) == str(data.resolve())
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out), "--no-plots", "--log-every", "0",
                 "--threads", "1"]) == 0
    (data / "train-images-idx3-ubyte.gz").unlink()  # gone: the usual lookup takes over
    assert recorded_data_dir(out / CHECKPOINT_FILE) is None


def fake_install(tmp_path, direct_url: str | None):
    """A lenet distribution as pip records it: METADATA, and direct_url.json (PEP 610) when given."""
    from importlib import metadata

    info = tmp_path / "lenet-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lenet\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url)
    return metadata.PathDistribution(info)


def test_a_missing_extra_names_the_install_that_works(tmp_path, monkeypatch, capsys):
    """Editable install: pip install -e with the source folder (`.` from inside it); from an index or a
    wheel: pip install 'lenet[extra]'. `serve` without its extra names [serve] (fastapi's own
    dependencies fail first), never [dev]."""
    from importlib import metadata

    from lenet.cli.main import install_command

    source = tmp_path / "my clone"
    source.mkdir()
    editable = fake_install(tmp_path, f'{{"dir_info": {{"editable": true}}, "url": "{source.as_uri()}"}}')
    monkeypatch.setattr(metadata, "distribution", lambda name: editable)
    assert shlex.split(install_command("train")) == ["pip", "install", "-e", f"{source}[train]"]
    monkeypatch.chdir(source)
    assert install_command("serve") == "pip install -e '.[serve]'"

    wheel = fake_install(tmp_path / "w", '{"archive_info": {}, "url": "file:///tmp/lenet-0.1.0.whl"}')
    monkeypatch.setattr(metadata, "distribution", lambda name: wheel)
    assert install_command("serve") == "pip install 'lenet[serve]'"
    index = fake_install(tmp_path / "i", None)
    monkeypatch.setattr(metadata, "distribution", lambda name: index)
    assert install_command("export") == "pip install 'lenet[export]'"

    # `lenet serve` with the serve extra's packages missing (the first one the server's modules import is anyio).
    for name in ("anyio", "fastapi", "uvicorn"):
        monkeypatch.setitem(sys.modules, name, None)
    for module in ("app", "routes", "inputs", "batcher", "workers", "guard"):
        monkeypatch.delitem(sys.modules, f"lenet.serving.{module}", raising=False)
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("pip install 'lenet[serve]'") and "\n" not in err, err


def test_serve_on_a_busy_port_is_one_line_and_exit_1(capsys):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        for workers in ("1", "2"):
            assert main(["serve", "--port", str(port), "--workers", workers]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0] and "--port" in err[0], err


def test_serve_help_states_the_port_default(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "(default: 8000)" in " ".join(capsys.readouterr().out.split())


def labelled_folder(root, mnist, n=30):
    """MNIST test images as a user's own folder: black ink on white PNGs, one subfolder per digit;
    plus a 3 filed under 8 (a mistake) and a blank page (unreadable)."""
    import numpy as np
    from PIL import Image

    for i in range(n):
        (root / str(int(mnist.test_labels[i]))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - mnist.test_images[i]).save(root / str(int(mnist.test_labels[i])) / f"{i}.png")
    (root / "8" / "deeper").mkdir(parents=True, exist_ok=True)
    three = mnist.test_images[np.flatnonzero(mnist.test_labels == 3)[0]]
    Image.fromarray(255 - three).save(root / "8" / "deeper" / "a-three.png")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(root / "8" / "blank.png")
    return n + 2


def test_evaluate_a_folder_of_labelled_images(tmp_path, mnist, capsys):
    import json

    n = labelled_folder(tmp_path / "mine", mnist)
    assert main(["evaluate", str(tmp_path / "mine"), "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["n"] == n and score["accuracy"] == score["correct"] / n
    assert sum(map(sum, score["confusion"])) == n - 1  # every image read, the blank one aside
    assert score["confusion"][8][3] == 1
    assert [m["file"] for m in score["mistakes"] if m["label"] == 8] == [str(tmp_path / "mine/8/deeper/a-three.png")]
    assert score["unreadable"][0]["file"].endswith("blank.png") and "no ink" in score["unreadable"][0]["error"]
    assert score["correct"] >= n - 4  # the bundled model on clean MNIST digits

    assert main(["evaluate", str(tmp_path / "mine")]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {score['accuracy']:.4f}" in text and "confusion" in text
    assert "a-three.png: labelled 8, read as 3" in text and "blank.png: no ink found" in text


def test_evaluate_a_folder_refuses_what_is_not_labelled(tmp_path, capsys):
    (tmp_path / "cats").mkdir()
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "subfolders must be named by the class" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_predict_says_it_does_not_look_in_subfolders_unless_recursive(tmp_path, mnist, capsys):
    labelled_folder(tmp_path / "mine", mnist, n=4)
    assert main(["predict", str(tmp_path / "mine")]) == 1  # no image directly in it
    err = capsys.readouterr().err
    assert "no image files found" in err and "--recursive" in err
    assert main(["predict", "--recursive", str(tmp_path / "mine")]) == 1  # the blank page fails
    out = capsys.readouterr().out
    assert out.count("\n") == 5 and "deeper/a-three.png: 3" in out  # the blank one: on stderr
    (tmp_path / "mine" / "top.png").write_bytes((tmp_path / "mine/8/deeper/a-three.png").read_bytes())
    assert main(["predict", str(tmp_path / "mine")]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "not looked in" in captured.err and "--recursive" in captured.err


def test_predict_help_says_folders_are_not_walked(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "not those in its subfolders" in text and "--recursive" in text


def test_crop_reads_the_region_asked_for_on_a_photo_of_any_size(tmp_path, capsys):
    """The second digit of 2026, by its rectangle in the file's pixels: on the example and on the same
    image four times larger (reduced to its working size before reading)."""
    import json

    from PIL import Image

    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "number-2026.png"
    big = tmp_path / "big.png"
    with Image.open(example) as im:
        im.resize((im.width * 4, im.height * 4)).save(big)
    assert main(["predict", "--json", "--crop", "195,25,70,105", str(example)]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["digit"] == 0
    x, y, right, bottom = small["box"]  # in the whole image's coordinates, inside the region
    assert x >= 195 and right <= 265 and y >= 25 and bottom <= 130
    assert main(["predict", "--json", "--crop", "780,100,280,420", str(big)]) == 0
    assert json.loads(capsys.readouterr().out)["digit"] == 0
    assert main(["predict", "--crop", "5000,0,10,10", str(example)]) == 1
    assert "starts outside the 502x168 image" in capsys.readouterr().err
    assert main(["predict", "--crop", "1,2,3", str(example)]) == 1
    assert "expected x,y,w,h" in capsys.readouterr().err


def test_annotate_draws_the_box_and_the_answer(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    examples = Path(__file__).resolve().parent.parent / "docs" / "examples"
    assert main(["predict", "--json", "--annotate", str(tmp_path / "seen"), str(examples / "photo-9.jpg"),
                 str(tmp_path / "missing.png")]) == 1
    lines = capsys.readouterr()
    assert "wrote 1 annotated images" in lines.err
    import json

    x, y, right, bottom = json.loads(lines.out.splitlines()[0])["box"]
    w, h = right - x, bottom - y
    with Image.open(examples / "photo-9.jpg") as im:
        original = np.asarray(im.convert("RGB")).astype(int)
    drawn = np.asarray(Image.open(tmp_path / "seen" / "photo-9.png").convert("RGB")).astype(int)
    assert drawn.shape == original.shape
    green = (drawn[..., 1] > 150) & (drawn[..., 0] < 100) & (drawn[..., 2] < 120)
    assert green[y + h // 2, max(0, x - 3):x + 1].any()  # the box's left edge, beside the digit
    assert green[:y, x:x + w].any()  # the label above the box

    assert main(["predict", "--number", "--annotate", str(tmp_path / "seen"), str(examples / "number-2026.png")]) == 0
    assert (tmp_path / "seen" / "number-2026.png").is_file()
    assert main(["predict", "--annotate", str(examples), str(examples / "photo-9.jpg")]) == 1
    assert "--annotate" in capsys.readouterr().err  # never into the inputs' own folder


def test_float_pixels_0_to_1_read_the_same_by_the_api_and_over_http(mnist):
    """One contract: uint8 0..255, or floats 0..255 or 0..1; the same answer either way, either path."""
    import numpy as np
    from fastapi.testclient import TestClient

    import lenet
    from lenet.serving.app import create_app

    digit = mnist.test_images[0]  # a 7
    ones = digit / 255.0
    clf = lenet.load()
    by_api = [clf.predict(x) for x in (digit, ones, digit.astype(np.float32))]
    assert {p.digit for p in by_api} == {int(mnist.test_labels[0])}
    assert by_api[0].probability == pytest.approx(by_api[1].probability, abs=1e-6)
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        answers = [client.post("/predict", json={"pixels": x.tolist()}) for x in (digit, ones)]
        assert [r.status_code for r in answers] == [200, 200], answers[1].text
        assert [r.json()["digit"] for r in answers] == [by_api[0].digit] * 2
        assert answers[1].json()["probability"] == pytest.approx(by_api[1].probability, abs=1e-6)
        bad = client.post("/predict", json={"pixels": (ones * 300).tolist()})
        assert bad.status_code == 422 and "0 to 255, or from 0 to 1" in bad.json()["error"]
    with pytest.raises(ValueError, match="0 to 255, or from 0 to 1"):
        clf.predict(ones - 0.5)


@pytest.mark.parametrize("model", ["bundled", "lenet5"])
def test_no_label_of_the_explain_figure_overlaps_another(model, tmp_path):
    """Every title and tick label drawn apart from every other, and the output row labelled by digit."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lenet.config import ModelConfig
    from lenet.evaluation.explain import explain, explain_figure
    from lenet.nn.network import parameter_shapes
    from lenet.nn.numpy_model import NumpyModel
    from lenet.pretrained import bundled_model_path
    from lenet.reading.image import load_image

    if model == "bundled":
        net = NumpyModel.load(bundled_model_path())
    else:
        config = ModelConfig("lenet5", "sigmoid")
        rng = np.random.default_rng(0)
        weights = {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in parameter_shapes(config).items()}
        net = NumpyModel(weights, config, {})
    pixels = load_image(Path(__file__).resolve().parent.parent / "docs" / "examples" / "photo-9.jpg")
    fig = explain_figure(explain(net, pixels), net, pixels)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent"))
             if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlaps = [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:] if box.overlaps(other)]
    assert not overlaps, overlaps
    output = next(ax for ax in fig.axes if ax.get_title(loc="left").startswith("output"))
    assert [t.get_text() for t in output.get_xticklabels()] == [str(d) for d in range(10)]


def test_the_folder_progress_bar_estimates_only_once_it_can(capsys):
    """A pool that takes 1.1 s to start, then chunks of 128 results at 1,000 images/s: no estimate at
    first (the old bar said 3,299 s left after the first image), then the time left within 50%."""
    import io
    import re

    from lenet.cli.progress import Progress

    now = [0.0]
    stream = io.StringIO()
    bar = Progress(3000, stream, clock=lambda: now[0])
    lines = []
    for done in range(1, 3001):
        chunk = (done - 1) // 128
        now[0] = 1.1 + chunk * 0.128 + ((done - 1) % 128) * 1e-5  # each chunk's results come at once
        bar.show(done)
        lines.append((done, now[0], stream.getvalue().rsplit("\r", 1)[-1]))
    estimates = [(done, t, float(m.group(1).replace(",", ""))) for done, t, line in lines
                 if (m := re.search(r", ([\d,]+) s left", line))]
    assert estimates, "no estimate at all"
    first_done, first_t, _ = estimates[0]
    assert first_t >= 1.1 + Progress.SETTLE_SECONDS and first_done >= Progress.SETTLE_ITEMS
    for done, _, left in estimates:
        truth = (3000 - done) / 1000
        assert truth / 1.5 - 1 <= left <= truth * 1.5 + 1, (done, left, truth)  # printed in whole seconds
    assert "s left" not in lines[-1][2] and "/s" in lines[-1][2]


def test_number_honours_top_k_and_counts_what_it_renamed(tmp_path, capsys):
    import json

    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "number-2026.png"
    assert main(["predict", "--number", "--json", "--top-k", "3", str(example)]) == 0
    digits = json.loads(capsys.readouterr().out)["digits"]
    assert [len(d["top"]) for d in digits] == [3, 3, 3, 3]
    assert [d["top"][0]["digit"] for d in digits] == [2, 0, 2, 6]
    assert main(["predict", "--number", "--top-k", "2", str(example)]) == 0
    assert "2 (1.00), " in capsys.readouterr().out  # each digit's runner-up shown

    saved = tmp_path / "seen"
    assert main(["predict", "--number", "--save-preprocessed", str(saved), str(example)]) == 0
    err = capsys.readouterr().err
    assert "wrote 4 preprocessed images (one per digit)" in err and "numbered names" not in err, err
    assert main(["predict", "--number", "--save-preprocessed", str(saved), str(example)]) == 0
    assert "(4 under numbered names" in capsys.readouterr().err
