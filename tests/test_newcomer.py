"""A newcomer's first hour (issue 31): every hint the command prints works as printed, a quick
run does not replace a finished model, a missing extra names the install command that works."""

import os
import shlex
import signal
import subprocess
import sys
import time

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
    editable = fake_install(tmp_path, '{"dir_info": {"editable": true}, "url": "%s"}' % source.as_uri())
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

    # `lenet serve` with the serve extra's packages missing (the first one app.py imports is anyio).
    for name in ("anyio", "fastapi", "uvicorn"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "lenet.serving.app", raising=False)
    monkeypatch.delitem(sys.modules, "lenet.serving.guard", raising=False)
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
