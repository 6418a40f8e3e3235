"""Hostile but fair, round 3: files we do not own, saving on a full disk, odd training sizes, the
Python API's bad inputs, odd file names and odd models. Each case a review found, on small
generated inputs."""

import errno
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lenet as api
from lenet.files import (
    FolderLock,
    check_writable_file,
    clean_stale_temps,
    printable,
    temp_prefix,
    write_atomic,
)

from conftest import write_dataset
from helpers import cli, lenet


def one_line_error(r, *words):
    """Exit 1 with a one-line message holding `words`, and no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len([line for line in r.stderr.splitlines() if "error" in line]) == 1, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def dead_pid() -> int:
    """The PID of a process that has ended."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def digit_png(path: Path) -> Path:
    a = np.full((40, 40), 255, np.uint8)
    a[8:32, 18:23] = 0  # a dark 1 on white paper
    Image.fromarray(a).save(path)
    return path


@pytest.fixture
def small_data(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_train=64, n_test=10)
    return data


TRAIN = ("--recipe", "fast", "--epochs", "1", "--log-every", "0", "--no-plots")


# 1. The lock file: never followed, never anything but a file we made.

def test_the_lock_never_follows_a_symlink(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("someone's data")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lenet.lock").symlink_to(victim)
    with pytest.raises(ValueError, match=r"not a lock file lenet made .a symbolic link"), FolderLock(out):
        pass
    assert victim.read_text() == "someone's data"
    (out / ".lenet.lock").unlink()
    (out / ".lenet.lock").symlink_to(tmp_path / "created-through-the-link")  # dangling
    with pytest.raises(ValueError, match="symbolic link"), FolderLock(out):
        pass
    assert not (tmp_path / "created-through-the-link").exists()


def test_the_lock_refuses_hard_links_pipes_and_other_content(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("12")  # digits, so only the link count tells it apart
    os.link(victim, out / ".lenet.lock")
    with pytest.raises(ValueError, match="hard link"), FolderLock(out):
        pass
    assert victim.read_text() == "12"
    (out / ".lenet.lock").unlink()
    os.mkfifo(out / ".lenet.lock")
    with pytest.raises(ValueError, match="named pipe"), FolderLock(out):
        pass
    (out / ".lenet.lock").unlink()
    (out / ".lenet.lock").write_text("my notes\n")
    with pytest.raises(ValueError, match="something other than a PID"), FolderLock(out):
        pass
    assert (out / ".lenet.lock").read_text() == "my notes\n"


def test_a_lock_a_killed_run_left_is_taken_over(tmp_path):
    (tmp_path / ".lenet.lock").write_text(f"{dead_pid()}\n")
    with FolderLock(tmp_path):
        assert (tmp_path / ".lenet.lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".lenet.lock").exists()


def test_training_with_a_planted_lock_link_is_one_line(tmp_path, small_data):
    victim = tmp_path / "precious.txt"
    victim.write_text("someone's data")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lenet.lock").symlink_to(victim)
    r = lenet("train", *TRAIN, "--data-dir", str(small_data), "--out", str(out))
    one_line_error(r, "not a lock file lenet made")
    assert victim.read_text() == "someone's data"


# 2. --output writes over regular files only, never over an input.

def special_files(tmp_path: Path) -> dict[str, Path]:
    """A named pipe, a socket, a symbolic link (and, as root, a device node), by kind."""
    made = {"named pipe": tmp_path / "fifo.png", "socket": tmp_path / "sock.png",
            "symbolic link": tmp_path / "link.png"}
    os.mkfifo(made["named pipe"])
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(made["socket"]))
    s.close()
    (tmp_path / "target.png").write_bytes(b"someone's file")
    made["symbolic link"].symlink_to(tmp_path / "target.png")
    if os.geteuid() == 0:
        os.mknod(tmp_path / "null.png", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made["device"] = tmp_path / "null.png"
    return made


def kinds(paths: dict[str, Path]) -> dict[str, int]:
    return {name: stat.S_IFMT(os.lstat(p).st_mode) for name, p in paths.items()}


def test_explain_and_export_refuse_to_replace_special_files(tmp_path):
    image = digit_png(tmp_path / "one.png")
    made = special_files(tmp_path)
    before = kinds(made)
    for kind, path in made.items():
        r = cli("explain", str(image), "--output", str(path))
        one_line_error(r, "--output", kind, "regular files only")
        t0 = time.monotonic()
        r = cli("export", "--output", str(path))
        one_line_error(r, "--output", kind)
        assert time.monotonic() - t0 < 15  # refused before torch exports anything
    assert kinds(made) == before
    assert (tmp_path / "target.png").read_bytes() == b"someone's file"


def test_a_write_never_replaces_what_was_put_there_meanwhile(tmp_path):
    target = tmp_path / "plot.png"
    check_writable_file(target, "--output")  # new: fine

    def write(tmp):
        Path(tmp).write_bytes(b"new")
        os.mkfifo(target)  # swapped in while we wrote

    with pytest.raises(ValueError, match="named pipe"):
        write_atomic(target, write)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]  # no temporary file left


def test_explain_never_writes_over_its_input(tmp_path):
    image = digit_png(tmp_path / "x.png")
    before = image.read_bytes()
    one_line_error(cli("explain", str(image), "--output", str(image)), "the command's input")
    os.link(image, tmp_path / "same.png")
    one_line_error(cli("explain", str(image), "--output", str(tmp_path / "same.png")), "the command's input")
    assert image.read_bytes() == before


def test_explain_and_export_never_write_over_the_model(tmp_path):
    from lenet.pretrained import bundled_model_path

    folder = tmp_path / "run"
    folder.mkdir()
    model = folder / "model.safetensors"
    model.write_bytes(bundled_model_path().read_bytes())
    before = model.read_bytes()
    image = digit_png(tmp_path / "x.png")
    one_line_error(cli("explain", str(image), "--model", str(folder), "--output", str(model)),
                   "the command's input")
    one_line_error(cli("export", "--model", str(folder), "--output", str(model)), "the command's input")
    one_line_error(cli("export", "--model", str(model), "--output", str(model)), "the command's input")
    assert model.read_bytes() == before


# 3. Only our own temporary files, of writers that are gone, are removed.

def test_only_our_dead_writers_temp_files_are_removed(tmp_path):
    theirs = tmp_path / ".data.csv.ab12cd34.tmp"      # another program's, in mkstemp's form
    theirs.write_text("another program's work")
    dead = tmp_path / f".model.safetensors.lenet-{dead_pid()}.ab12cd34.tmp"
    dead.write_bytes(b"half a model")
    mine = tmp_path / f".metrics.csv.lenet-{os.getpid()}.zz99yy88.tmp"
    mine.write_bytes(b"left by this process")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = tmp_path / f".model.onnx.lenet-{live.pid}.ab12cd34.tmp"  # an export writing now
        alive.write_bytes(b"being written")
        assert sorted(clean_stale_temps(tmp_path)) == sorted([dead, mine])
        assert theirs.exists() and alive.exists()
    finally:
        live.kill()
        live.wait()


def test_our_temp_names_carry_our_mark_and_pid(tmp_path):
    seen = []
    write_atomic(tmp_path / "x.txt", lambda tmp: seen.append(Path(tmp).name) or Path(tmp).write_text("ok"))
    assert seen[0].startswith(temp_prefix("x.txt")) and f".lenet-{os.getpid()}." in seen[0]


def test_training_keeps_other_programs_temp_files(tmp_path, small_data):
    out = tmp_path / "run"
    out.mkdir()
    theirs = out / ".notes.txt.ab12cd34.tmp"
    theirs.write_text("another program's work")
    stale = out / f".checkpoint.safetensors.lenet-{dead_pid()}.zz99yy88.tmp"
    stale.write_bytes(b"x")
    r = lenet("train", *TRAIN, "--data-dir", str(small_data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert theirs.read_text() == "another program's work" and not stale.exists()


# 12. A full disk while saving: one line, exit 1, files intact.

def test_a_full_disk_while_writing_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"the old model")

    def half_then_full(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left") as e:
        write_atomic(target, half_then_full)
    assert e.value.filename == str(target)  # the file the user asked for, not our temporary name
    assert target.read_bytes() == b"the old model" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_safetensors_error_while_saving_is_one_line(monkeypatch, capsys, tmp_path, small_data):
    import safetensors.torch
    from safetensors import SafetensorError

    from lenet.cli import main as cli
    from lenet.training.checkpoint import load_checkpoint

    real = safetensors.torch.save_file

    def full_disk(tensors, filename, metadata=None):
        if ".model.safetensors." in str(filename):  # the checkpoint saves; the model finds the disk full
            raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                  'message: "No space left on device" })')
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    out = tmp_path / "run"
    assert cli.main(["train", *TRAIN, "--threads", "1", "--data-dir", str(small_data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "No space left on device" in err and "model.safetensors" in err, err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert not list(out.glob(".*.tmp")) and not (out / "model.safetensors").exists()
    assert load_checkpoint(out / "checkpoint.safetensors").info["epoch"] == 1  # intact


# 13. A last batch of one image joins the batch before it.

def test_a_last_batch_of_one_joins_the_one_before():
    import torch

    from lenet.config import RECIPES
    from lenet.evaluation.scoring import Split
    from lenet.training.distributed import Dist
    from lenet.training.splits import Batches

    recipe = RECIPES["fast"].override(augment=False, roughen=False)
    config = recipe.model_config(10, 28)
    for n, sizes in ((129, [129]), (257, [128, 129]), (130, [128, 2]), (128, [128]), (5, [5])):
        split = Split(torch.zeros((n, 28, 28), dtype=torch.uint8), torch.zeros(n, dtype=torch.int64), "train")
        batches = Batches(split, config, recipe.override(batch_size=128), seed=0, epoch=0, dist=Dist())
        got = [len(y) for _, _, y in batches]
        assert got == sizes and sum(got) == n, (n, got)


def test_training_on_one_more_than_a_batch_works(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_train=129, n_test=10)
    r = lenet("train", *TRAIN, "--subset", "129", "--data-dir", str(data), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-2000:]
    one_line_error(lenet("train", *TRAIN, "--subset", "1", "--data-dir", str(data), "--out", str(tmp_path / "one")),
                   "at least 2")


# 14. The Python API: every bad input is a ValueError with the command's message.

def page_with_a_one() -> np.ndarray:
    a = np.full((40, 40), 200.0)
    a[8:32, 18:23] = 0
    return a


def with_pixel(value) -> np.ndarray:
    a = page_with_a_one()
    a[0, 0] = value
    return a


@pytest.mark.parametrize("pixels, message", [
    (with_pixel(np.nan), "non-finite"), (with_pixel(np.inf), "non-finite"), (with_pixel(-np.inf), "non-finite"),
    (np.where(page_with_a_one() > 100, np.float32(np.inf), np.float32(0)), "non-finite"),
    (np.array([[None] * 30] * 30), "must be numbers"),
    (np.where(np.arange(900).reshape(30, 30) % 7 == 0, None, 1.0), "must be numbers"),
    (page_with_a_one().astype(complex), "must be numbers"),
    (np.zeros((0, 0)), "empty image"),
])
def test_bad_pixels_are_value_errors(pixels, message):
    clf = api.load()
    with pytest.raises(ValueError, match=message):
        clf.predict(pixels)
    with pytest.raises(ValueError, match=message):
        clf.read_number(pixels)


def test_values_near_the_float_limit_are_a_clear_error():
    """Floats are 0..255 or 0..1 (lenet.reading.values, as over HTTP); far outside, a ValueError."""
    page = np.where(page_with_a_one() > 100, 1e308, -1e308)
    with pytest.raises(ValueError, match="from 0 to 255"):
        api.load().predict(page)


def test_an_empty_list_and_a_file_as_out_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="no images given"):
        api.load().predict_many([])
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"--out .*is a file"):
        api.train("fast", out=a_file)
    with pytest.raises(ValueError, match="--device"):
        api.train("fast", out=tmp_path / "run", device="tpu")


def test_a_float_tiff_with_a_nan_pixel_is_a_clear_error(tmp_path):
    a = np.full((40, 40), 1.0, np.float32)
    a[8:32, 18:23] = 0.0
    a[0, 0] = np.nan
    Image.fromarray(a, "F").save(tmp_path / "scan.tif")
    r = cli("predict", str(tmp_path / "scan.tif"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "scan.tif" in r.stderr and "non-finite pixels" in r.stderr, r.stderr


# Smaller: control characters in file names; snapshots after a resume; a 32x32 seed model.

def test_control_characters_in_file_names_are_escaped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    odd = digit_png(folder / "a\nb\x1b[31mred.png")
    r = cli("predict", str(folder))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and len(r.stdout.splitlines()) == 1, r.stdout
    assert "a\\nb\\x1b[31mred.png" in r.stdout
    r = cli("explain", str(odd), "--output", str(tmp_path / "out\x1b[2J.png"))
    assert r.returncode == 0 and "\x1b" not in r.stdout and "\\x1b[2J" in r.stdout, r.stdout
    r = cli("predict", str(folder / "missing\x1b]0;title\x07.png"))
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr and r.returncode == 1, r.stderr
    assert printable("ok name.png") == "ok name.png"


def test_snapshots_after_a_resume_say_where_they_start(tmp_path, small_data):
    out = tmp_path / "run"
    assert lenet("train", *TRAIN, "--data-dir", str(small_data), "--out", str(out)).returncode == 0
    r = lenet("train", "--resume", "--epochs", "2", "--snapshots", "--log-every", "0", "--no-plots",
              "--data-dir", str(small_data), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "learning.gif start at the resume point (epoch 2" in r.stdout + r.stderr
    assert (out / "learning.gif").is_file()


def test_a_seed_model_of_32x32_images_predicts_and_explains(tmp_path):
    data = tmp_path / "data32"
    write_dataset(data, n_train=32, n_test=8, size=32)
    out = tmp_path / "seed32"
    r = lenet("train", "--recipe", "tutorial", "--epochs", "1", "--log-every", "0", "--no-plots",
              "--data-dir", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    image = digit_png(tmp_path / "one.png")
    r = cli("predict", "--model", str(out), str(image))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    r = cli("explain", str(image), "--model", str(out), "--output", str(tmp_path / "e.png"))
    assert r.returncode == 0 and (tmp_path / "e.png").is_file(), r.stderr
    assert 0 <= api.load(out).predict(image).digit <= 9


def test_a_model_smaller_than_the_reading_is_one_line(tmp_path):
    data = tmp_path / "data16"
    write_dataset(data, n_train=32, n_test=8, size=16)
    out = tmp_path / "seed16"
    r = lenet("train", "--recipe", "tutorial", "--epochs", "1", "--log-every", "0", "--no-plots",
              "--data-dir", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    image = digit_png(tmp_path / "one.png")
    r = cli("explain", str(image), "--model", str(out), "--output", str(tmp_path / "e.png"))
    one_line_error(r, "the model takes 16x16 images")
    r = cli("predict", "--model", str(out), str(image))
    assert r.returncode == 1 and "16x16" in r.stderr and "Traceback" not in r.stderr, r.stderr
