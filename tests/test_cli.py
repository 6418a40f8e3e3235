"""The `lenet` command end to end, as a user runs it: exit codes, messages, files."""

import json
import os
import subprocess
import sys

import pytest

from helpers import cli, lenet


@pytest.fixture
def env(mnist_dir):
    return dict(os.environ, LENET_DATA_DIR=str(mnist_dir))


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "serve"])
def test_help_ends_with_examples(command):
    r = cli(command, "--help")
    assert r.returncode == 0
    tail = r.stdout.rstrip().splitlines()
    assert "examples:" in tail[-3:-1] or "examples:" in tail[-4:-2]
    assert tail[-1].lstrip().startswith("lenet " + command)


def test_help_states_every_default():
    r = cli("train", "--help")
    assert r.returncode == 0
    for text in ("(default: output)", "(default: 50)", "(default: auto)", "(default: 0)", "tutorial:", "lenet5:"):
        assert text in " ".join(r.stdout.split()), text


@pytest.mark.slow
def test_train_then_evaluate(tmp_path, env):
    out = tmp_path / "run"
    r = lenet("train", "--recipe", "fast", "--subset", "3000", "--epochs", "1", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1" in r.stdout and "img/s" in r.stdout
    for name in ("model.safetensors", "model.json", "checkpoint.safetensors", "metrics.csv", "val_acc.png",
                 "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "val_acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "model.json").read_text())
    assert info["command"].endswith("--out " + str(out))

    r = cli("evaluate", "--model", str(out), "--json", env=env)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["n"] == 10_000 and len(result["per_class_accuracy"]) == 10
    assert result["accuracy"] == pytest.approx(info["metrics"]["val_accuracy"])

    r = cli("evaluate", "--model", str(out / "model.safetensors"), env=env)
    assert r.returncode == 0 and "test accuracy" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--data-dir", "/nonexistent"], "missing train-images-idx3-ubyte"),
    (["train", "--epochs", "0"], "--epochs must be a whole number from 1"),
    (["evaluate", "--model", "/nonexistent/model"], "no such model file"),
])
def test_errors_are_messages_not_tracebacks(args, message, env):
    r = lenet(*args, env=env)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr


def test_bad_data_is_a_clear_error(tmp_path, env):
    from conftest import write_dataset
    write_dataset(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    r = lenet("train", "--data-dir", str(tmp_path), env=env)
    assert r.returncode == 1 and "train-images-idx3-ubyte.gz" in r.stderr and "Traceback" not in r.stderr


def test_trains_any_idx_dataset_with_its_own_classes(tmp_path, env):
    from conftest import write_dataset
    write_dataset(tmp_path / "letters", n_train=64, n_test=26, classes=26)
    out = tmp_path / "out"
    r = lenet("train", "--data-dir", str(tmp_path / "letters"), "--recipe", "fast", "--epochs", "1",
              "--out", str(out), "--no-plots", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "model.json").read_text())["model"]["num_classes"] == 26


@pytest.mark.slow
def test_evaluate_report_and_ensemble(tmp_path, env):
    from lenet.pretrained import bundled_model_path
    model = str(bundled_model_path())
    r = cli("evaluate", "--model", model, "--model", model, "--report", str(tmp_path / "rep"), env=env)
    assert r.returncode == 0, r.stderr
    assert "ensemble of 2" in r.stdout and "precision" in r.stdout
    for name in ("confusion.png", "mistakes.png"):
        assert (tmp_path / "rep" / name).read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert sum(sum(row) for row in report["confusion_matrix"]) == 10_000
    assert len(report["per_class"]) == 10 and all(0 <= c["precision"] <= 1 for c in report["per_class"])
    wrong = report["mistakes"]
    assert len(wrong) == 10_000 - round(report["accuracy"] * 10_000)  # every one, not the worst few
    assert wrong and all(m["label"] != m["predicted"] for m in wrong)
    assert [m["probability"] for m in wrong] == sorted((m["probability"] for m in wrong), reverse=True)
    assert report["known_label_errors"]["among_mistakes"] == sum(1 for m in wrong if m["known_label_error"])
    assert "of them among the 15 test images" in r.stdout


def test_parsing_the_command_line_loads_no_numpy():
    """predict and serve set one BLAS thread before NumPy loads; building the parser must not load it first."""
    code = ("import sys; from lenet.cli.parser import build_parser; build_parser(); "
            "sys.exit('numpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
