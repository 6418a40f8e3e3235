"""The moving average of the weights (recipe field `ema`): its arithmetic, what a run scores and
saves with it, that it survives a resume, and that with it off training is what it was."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import lenet.training.run as run_module
from lenet.config import RECIPES
from lenet.errors import ModelFileError, UsageError
from lenet.nn.model_file import load_model_file
from lenet.training.checkpoint import CHECKPOINT_FILE, load_checkpoint
from lenet.training.loop import WeightAverage
from lenet.training.run import RunOptions, train_on
from lenet.training.signals import Interrupted

QUICK = RECIPES["fast"].override(batch_size=64, epochs=2)
OPTIONS = RunOptions(subset=1500, holdout=500, log_every=0, plots=False, test_each_epoch=True)


def test_average_after_k_steps_is_the_hand_computed_one():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    decay, k = 0.9, 4
    start = {name: t.clone() for name, t in model.state_dict().items()}
    average = WeightAverage(model, decay)
    seen = []
    for _ in range(k):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(5, 3))  # moves batch norm's running statistics and its count
        average.update()
        seen.append({name: t.clone() for name, t in model.state_dict().items()})
    got = average.state_dict()
    for name, t0 in start.items():
        if not t0.is_floating_point():
            assert int(got[name]) == int(seen[-1][name]) == k  # a count: copied, not averaged
            continue
        expected = decay ** k * t0 + sum((1 - decay) * decay ** (k - i) * seen[i - 1][name] for i in range(1, k + 1))
        torch.testing.assert_close(got[name], expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(got[name], seen[-1][name])  # an average, not a copy of the last weights
    assert not any(p.requires_grad for p in average.model.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_average_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightAverage(torch.nn.Linear(2, 2), decay)
    if decay != 0.0:  # 0 is the recipe's "off"
        with pytest.raises(UsageError, match="--ema"):
            RECIPES["best"].override(ema=decay)


def test_off_trains_as_before_and_on_changes_only_what_is_scored_and_saved(mnist, tmp_path):
    off = train_on(mnist, QUICK, tmp_path / "off", OPTIONS, log=lambda *a, **k: None)
    on = train_on(mnist, QUICK.override(ema=0.9), tmp_path / "on", OPTIONS, log=lambda *a, **k: None)
    # The average never feeds back into training: the same steps, the same raw weights.
    assert [r["train_loss"] for r in on["history"]] == [r["train_loss"] for r in off["history"]]
    assert [r["raw_val_accuracy"] for r in on["history"]] == [r["val_accuracy"] for r in off["history"]]
    assert "raw_val_accuracy" not in off["history"][0]
    assert [r["raw_test_accuracy"] for r in on["history"]] == [r["test_accuracy"] for r in off["history"]]
    ckpt_off = load_checkpoint(tmp_path / "off" / CHECKPOINT_FILE)
    ckpt_on = load_checkpoint(tmp_path / "on" / CHECKPOINT_FILE)
    assert ckpt_off.average is None
    for name, w in ckpt_on.model.items():
        torch.testing.assert_close(w, ckpt_off.model[name], rtol=0, atol=0)
    # Off: the saved model is the trained weights; on: it is the average, which differs from them.
    saved_off, _, _ = load_model_file(tmp_path / "off" / "model.safetensors")
    saved_on, _, info = load_model_file(tmp_path / "on" / "model.safetensors")
    for name, w in ckpt_off.model.items():
        np.testing.assert_array_equal(saved_off[name], w.numpy())
        np.testing.assert_array_equal(saved_on[name], ckpt_on.average[name].numpy())
    assert any(not np.array_equal(saved_on[n], w.numpy()) for n, w in ckpt_on.model.items() if w.is_floating_point())
    assert info["recipe"]["ema"] == 0.9


class StopAfter:
    """A StopRequest whose stop is asked for once the loop has looked `n` times: mid-epoch."""

    def __init__(self, n: int):
        self.n = n

    @property
    def requested(self) -> bool:
        self.n -= 1
        return self.n < 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_resume_mid_epoch_continues_the_average_exactly(mnist, tmp_path, monkeypatch):
    recipe = QUICK.override(ema=0.9)
    whole = train_on(mnist, recipe, tmp_path / "whole", OPTIONS, log=lambda *a, **k: None)
    with monkeypatch.context() as m:
        m.setattr(run_module, "StopRequest", lambda: StopAfter(30))  # in epoch 2: an epoch asks about 24 times
        with pytest.raises(Interrupted):
            train_on(mnist, recipe, tmp_path / "stopped", OPTIONS, log=lambda *a, **k: None)
    ckpt = load_checkpoint(tmp_path / "stopped" / CHECKPOINT_FILE)
    assert ckpt.info["epoch"] == 1 and ckpt.info["step"] > 0 and ckpt.average is not None
    resumed = train_on(mnist, None, tmp_path / "stopped", RunOptions(resume=True, log_every=0, plots=False),
                       log=lambda *a, **k: None)
    assert [r["val_loss"] for r in resumed["history"]] == [r["val_loss"] for r in whole["history"]]
    a, _, _ = load_model_file(tmp_path / "whole" / "model.safetensors")
    b, _, _ = load_model_file(tmp_path / "stopped" / "model.safetensors")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_checkpoint_without_its_average_is_refused(mnist, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    train_on(mnist, QUICK.override(ema=0.9, epochs=1), tmp_path, OPTIONS, log=lambda *a, **k: None)
    path = tmp_path / CHECKPOINT_FILE
    with safe_open(str(path), "np") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file({k: v for k, v in tensors.items() if not k.startswith("average.")}, str(path), metadata=meta)
    with pytest.raises(ModelFileError, match="moving average"):
        load_checkpoint(path)
    tensors["average.c1.weight"] = np.full_like(tensors["average.c1.weight"], np.nan)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(ModelFileError, match="NaN"):
        load_checkpoint(path)


@pytest.mark.slow
def test_two_processes_keep_one_average(mnist_dir, tmp_path):
    env = dict(os.environ, LENET_DATA_DIR=str(mnist_dir), OMP_NUM_THREADS="1")
    args = ["train", "--recipe", "fast", "--ema", "0.9", "--subset", "3000", "--batch-size", "64", "--epochs", "1",
            "--threads", "1", "--log-every", "0", "--no-plots"]
    single = subprocess.run([sys.executable, "-m", "lenet", *args, "--out", str(tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "lenet", *args, "--out", str(tmp_path / "two")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout + two.stderr
    info = json.loads((tmp_path / "two" / "model.json").read_text())
    assert info["distributed"]["weights_identical_across_ranks"]  # the digest is the average's
    one = json.loads((tmp_path / "one" / "model.json").read_text())
    assert abs(info["metrics"]["val_accuracy"] - one["metrics"]["val_accuracy"]) < 0.01
