"""Data-parallel training under torchrun: two CPU processes over loopback (gloo)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lenet.nn.torch_model import load_model
from lenet.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

ARGS = ["--arch", "lenet5", "--activation", "relu", "--subset", "4000", "--batch-size", "64", "--threads", "1",
        "--log-every", "0", "--no-plots"]


def torchrun(n, *args, env, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "lenet", "train", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.fixture
def env(mnist_dir):
    return dict(os.environ, LENET_DATA_DIR=str(mnist_dir), OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, env):
    single = subprocess.run([sys.executable, "-m", "lenet", "train", *ARGS, "--epochs", "2",
                             "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    proc = torchrun(2, *ARGS, "--epochs", "2", "--out", str(tmp_path / "two"), env=env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert out.count("epoch 2/2") == 1  # rank 0 alone logs
    assert "2 processes, global batch 64" in out
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoint.safetensors", "metrics.csv", "model.json", "model.safetensors"]
    info = json.loads((tmp_path / "two" / "model.json").read_text())
    assert info["distributed"]["world_size"] == 2 and info["distributed"]["weights_identical_across_ranks"]
    one = json.loads((tmp_path / "one" / "model.json").read_text())
    # Same global batches and order; only the summation order of gradients differs.
    assert abs(info["metrics"]["val_accuracy"] - one["metrics"]["val_accuracy"]) < 0.01
    assert abs(info["metrics"]["train_loss"] - one["metrics"]["train_loss"]) < 0.01
    load_model(tmp_path / "two")


@pytest.mark.slow
def test_killing_a_rank_ends_the_job_and_keeps_the_checkpoint(tmp_path, env):
    out = tmp_path / "run"
    args = [*ARGS, "--subset", "12000", "--epochs", "4", "--out", str(out)]
    proc = torchrun(2, *args, env=env)
    deadline = time.monotonic() + 180
    while not (out / "metrics.csv").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "no epoch finished"
        time.sleep(0.1)
    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(ranks) == 2
    os.kill(int(ranks[-1]), signal.SIGKILL)
    t0 = time.monotonic()
    output, _ = proc.communicate(timeout=120)  # bounded: no hang
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 120
    info = load_checkpoint(out / CHECKPOINT_FILE).info
    assert 1 <= info["epoch"] < 4

    resumed = torchrun(2, "--resume", "--out", str(out), "--threads", "1", "--log-every", "0", "--no-plots", env=env)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    with open(out / "metrics.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
