"""A newcomer's first hour (issue 31): every hint the command prints works as printed, a quick
run does not replace a finished model, a missing extra names the install command that works."""

import os
import shlex
import signal
import subprocess
import sys
import time

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
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "train", "--recipe", "fast", "--batch-size", "8",
                             "--data-dir", str(data), "--out", str(out), "--log-every", "1", "--no-plots",
                             "--threads", "1"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not proc.stdout.readline().startswith("epoch 1 batch"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    hint = err.split("continue with: ", 1)[1].strip()
    args = shlex.split(hint)
    assert args[:3] == ["lenet", "train", "--resume"] and "--data-dir" in args and "--out" in args, hint

    resumed = subprocess.run([sys.executable, "-m", "lenet", *args[1:], "--no-plots", "--threads", "1"],
                             env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and (out / "model.safetensors").is_file()


def test_resume_finds_the_data_the_checkpoint_recorded(tmp_path):
    """Without --data-dir, --resume reads the data where the interrupted run found it."""
    from lenet.nn.model_file import CHECKPOINT_FILE, recorded_data_dir

    data, out = tmp_path / "data", tmp_path / "out"
    write_dataset(data, n_train=200, n_test=50)
    assert main(["train", "--recipe", "fast", "--data-dir", str(data), "--out", str(out), "--no-plots",
                 "--log-every", "0", "--threads", "1"]) == 0
    assert recorded_data_dir(out / CHECKPOINT_FILE) == str(data.resolve())
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out), "--no-plots", "--log-every", "0",
                 "--threads", "1"]) == 0
    (data / "train-images-idx3-ubyte.gz").unlink()  # gone: the usual lookup takes over
    assert recorded_data_dir(out / CHECKPOINT_FILE) is None
