"""Scale-out that survives failures, on one host: two torchrun "nodes" over 127.0.0.1, an elastic
restart after a worker is killed, SIGTERM mid-epoch, and a stale checkpoint refused."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lenet.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

from helpers import free_port, lenet

ARGS = ["--recipe", "fast", "--subset", "12000", "--batch-size", "64", "--epochs", "2", "--threads", "1",
        "--no-plots"]


def torchrun(*launcher_args, train_args, env):
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher_args, "-m", "lenet", "train", *train_args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def env(mnist_dir):
    return dict(os.environ, LENET_DATA_DIR=str(mnist_dir), OMP_NUM_THREADS="1")


def workers(launcher) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                           text=True).stdout.split()]


def wait_for_mid_epoch_checkpoint(out, launcher, timeout=180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline and launcher.poll() is None, "no mid-epoch checkpoint was written"
        if (out / CHECKPOINT_FILE).is_file():
            info = load_checkpoint(out / CHECKPOINT_FILE).info
            if info["step"] > 0:
                return info
        time.sleep(0.05)


@pytest.mark.slow
def test_two_nodes_on_one_host_train_one_run(tmp_path, env):
    port, out = free_port(), tmp_path / "run"
    node = ["--nnodes=2", "--nproc_per_node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
            "--rdzv-id=lenet-two-nodes", "--max-restarts=0"]
    args = [*ARGS, "--subset", "3000", "--log-every", "0", "--out", str(out)]
    nodes = [torchrun(*node, train_args=args, env=env) for _ in range(2)]
    outputs = [n.communicate(timeout=300)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outputs
    assert sum(o.count("epoch 2/2") for o in outputs) == 1  # rank 0 alone speaks
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "metrics.csv", "model.json", "model.safetensors"]
    info = json.loads((out / "model.json").read_text())
    assert info["distributed"]["world_size"] == 2 and info["distributed"]["weights_identical_across_ranks"]


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_resumes_to_the_same_weights(tmp_path, env):
    args = [*ARGS, "--log-every", "0", "--checkpoint-every", "20"]
    reference = torchrun("--standalone", "--nproc_per_node=2", train_args=[*args, "--out", str(tmp_path / "ref")],
                         env=env)
    output, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, output

    out = tmp_path / "run"
    launcher = torchrun("--standalone", "--nproc_per_node=2", "--max-restarts=1",
                        train_args=[*args, "--out", str(out)], env=env)
    info = wait_for_mid_epoch_checkpoint(out, launcher)
    assert info["step"] % 20 == 0
    os.kill(workers(launcher)[-1], signal.SIGKILL)
    output, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, output
    assert "elastic restart 1: resuming from" in output
    ours = json.loads((out / "model.json").read_text())
    theirs = json.loads((tmp_path / "ref" / "model.json").read_text())
    assert ours["distributed"]["weights_sha256"] == theirs["distributed"]["weights_sha256"]
    assert [row["epoch"] for row in ours["history"]] == [1, 2]
    assert ours["metrics"]["val_accuracy"] == theirs["metrics"]["val_accuracy"]


@pytest.mark.slow
def test_sigterm_under_torchrun_stops_mid_epoch_with_a_checkpoint(tmp_path, env):
    out = tmp_path / "run"
    launcher = torchrun("--standalone", "--nproc_per_node=2",
                        train_args=[*ARGS, "--log-every", "5", "--out", str(out)], env=env)
    deadline = time.monotonic() + 180
    for line in launcher.stdout:
        assert time.monotonic() < deadline
        if "epoch 1 batch 10/" in line:
            break
    for pid in workers(launcher):
        os.kill(pid, signal.SIGTERM)
    output, _ = launcher.communicate(timeout=120)
    assert "interrupted in epoch 1 at batch" in output
    info = load_checkpoint(out / CHECKPOINT_FILE).info
    assert info["epoch"] == 0 and 0 < info["step"] < 188 and info["step"] % 10 == 0


def test_an_elastic_restart_refuses_another_runs_checkpoint(tmp_path, mnist_dir):
    out = tmp_path / "run"
    base = ["--recipe", "fast", "--subset", "1000", "--epochs", "1", "--log-every", "0", "--no-plots",
            "--data-dir", str(mnist_dir), "--out", str(out)]
    assert lenet("train", *base).returncode == 0
    restarted = dict(os.environ, TORCHELASTIC_RESTART_COUNT="1")
    r = lenet("train", *base, "--lr", "0.1", env=restarted)
    assert r.returncode == 1 and "checkpoint of another run (recipe differ)" in r.stderr, r.stderr
    r = lenet("train", *base, env=restarted)
    assert r.returncode == 0 and "elastic restart 1: resuming from" in r.stdout, r.stderr
