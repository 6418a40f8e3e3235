"""Hostile model files and checkpoints: a file that loads gives finite answers, or it does not load.

Each file is the bundled model (or a checkpoint of a seconds-long run) with a few numbers or
dtypes changed: finite-looking values that make NaN, half precision and FP8 tensors, and
checkpoints tampered with in the ways a review found (issue 24, items 9 to 11).
"""

import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lenet.cli.main import main
from lenet.nn.model_file import load_model_file
from lenet.nn.numpy_model import NonFiniteOutput, NumpyModel
from lenet.pretrained import bundled_model_path
from lenet.training.checkpoint import CHECKPOINT_FILE

from conftest import write_dataset
from helpers import cli, lenet, one_line_error


def bundled_info() -> dict:
    return load_model_file(bundled_model_path())[2]


def corrupt_model(path: Path, tensors=None, info=None, raw_info: str | None = None) -> Path:
    """The bundled model's file with its tensors and/or metadata replaced."""
    save_file(tensors if tensors is not None else bundled_tensors(), path,
              metadata={"lenet": raw_info if raw_info is not None else json.dumps(info or bundled_info())})
    return path


def run_main(*argv) -> tuple[int, str, str]:
    """`lenet ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def bundled_tensors() -> dict:
    return load_file(bundled_model_path())


def changed_tensors(**values) -> dict:
    """The bundled tensors, with model.<name> (dots as __) set to `value` everywhere."""
    tensors = bundled_tensors()
    for name, value in values.items():
        key = "model." + name.replace("__", ".")
        tensors[key] = np.full_like(tensors[key], value)
    return tensors


# 9. Finite-looking numbers that make NaN.

def with_config(**changes) -> dict:
    info = bundled_info()
    return {**info, "model": {**info["model"], **changes}}


def raw_info(old: str, new: str) -> str:
    """The bundled model's metadata as JSON text, with `old` replaced by `new` (which JSON may not allow)."""
    text = json.dumps(bundled_info())
    assert old in text
    return text.replace(old, new)


BAD_NUMBERS = {
    "running_var -1": (dict(tensors=changed_tensors(bn3__running_var=-1)), "negative"),
    "running_var 0, bn_eps 1e-45": (dict(tensors=changed_tensors(bn3__running_var=0), info=with_config(bn_eps=1e-45)),
                                    "bn_eps"),
    "std 1e-45": (dict(info=with_config(std=1e-45)), "std"),
    "scale 1e308": (dict(info=with_config(scale=1e308)), "scale"),
    "mean 1e308": (dict(info=with_config(mean=1e308)), "mean"),
    "scale 1e-300": (dict(info=with_config(scale=1e-300)), "apart"),
    "output weights 3e38": (dict(tensors=changed_tensors(output__weight=3e38)), "output.weight holds values up to"),
    "every weight 1e5": (dict(tensors={k: (np.full_like(v, 1e5) if v.dtype.kind == "f" else v)
                                       for k, v in bundled_tensors().items()}), "forward pass"),
    # Each number within bounds, but three batch norms of 1e6 / sqrt(0 + eps) could take a score past 1e31.
    "batch norm weights 1e6, variances 0": (dict(tensors=changed_tensors(bn1__weight=1e6, bn3__weight=1e6,
                                                                         bn5__weight=1e6, bn1__running_var=0,
                                                                         bn3__running_var=0, bn5__running_var=0)),
                                            "forward pass"),
    "num_batches_tracked -1": (dict(tensors={**bundled_tensors(), "model.bn1.num_batches_tracked": np.array(-1)}),
                               "count"),
    "test_accuracy NaN": (dict(raw_info=raw_info('"test_accuracy": 0.996', '"test_accuracy": NaN')), "NaN"),
    "test_accuracy 1e999": (dict(raw_info=raw_info('"test_accuracy": 0.996', '"test_accuracy": 1e999')), "range"),
    "test_accuracy 7.5": (dict(info={**bundled_info(), "test_accuracy": 7.5}), "test_accuracy"),
    "val_accuracy Infinity": (dict(raw_info=raw_info('"val_accuracy": 0.9958', '"val_accuracy": Infinity')),
                              "Infinity"),
    "parameters -5": (dict(info={**bundled_info(), "parameters": -5}), "parameters"),
}


def test_the_cases_start_from_a_model_that_loads(tmp_path):
    load_model_file(corrupt_model(tmp_path / "m.safetensors"))


@pytest.mark.parametrize("case", list(BAD_NUMBERS))
def test_numbers_that_make_nan_are_refused_on_loading(case, tmp_path):
    change, words = BAD_NUMBERS[case]
    path = corrupt_model(tmp_path / "m.safetensors", **change)
    with pytest.raises(ValueError, match=re.escape("m.safetensors")) as e:
        load_model_file(path)
    assert words in str(e.value)


@pytest.mark.parametrize("case", ["running_var -1", "std 1e-45", "output weights 3e38", "test_accuracy NaN"])
def test_every_command_refuses_them_in_one_line(case, tmp_path, digits):
    path = corrupt_model(tmp_path / "m.safetensors", **BAD_NUMBERS[case][0])
    code, out, err = run_main("predict", "--json", "--model", str(path), str(digits))
    assert code == 1 and out == "" and "m.safetensors" in err and len(err.splitlines()) == 1, (code, out, err)
    code, out, err = run_main("explain", "--json", "--model", str(path), str(next(digits.iterdir())))
    assert code == 1 and out == "" and "m.safetensors" in err and len(err.splitlines()) == 1, (code, out, err)
    one_line_error(lenet("serve", "--model", str(path), "--port", "1", timeout=60), "m.safetensors")


def nan_model() -> NumpyModel:
    """A model whose file checks were skipped (built from arrays): its output layer overflows to inf."""
    weights, config, info = load_model_file(bundled_model_path())
    weights = {**weights, "output.weight": np.full_like(weights["output.weight"], 3e38)}
    return NumpyModel(weights, config, info)


def test_non_finite_outputs_are_an_error_never_an_answer(mnist):
    model = nan_model()
    with pytest.raises(NonFiniteOutput, match="non-finite outputs"):
        model.probabilities(mnist.test_images[:3])
    with pytest.raises(NonFiniteOutput, match="non-finite outputs"):
        list(model.run_layers(model.normalize(mnist.test_images[:1])))
    from lenet.reading.predict import predict_images
    with pytest.raises(ValueError, match="non-finite outputs"):
        predict_images(model, mnist.test_images[:2])


def test_predict_and_explain_json_never_print_nan(monkeypatch, digits):
    monkeypatch.setattr(NumpyModel, "load", classmethod(lambda cls, path: nan_model()))
    for argv in (["predict", "--json", str(digits)], ["explain", "--json", str(next(digits.iterdir()))]):
        code, out, err = run_main(*argv)
        assert code == 1 and "NaN" not in out and out == "", (argv, code, out, err)
        assert "non-finite outputs" in err and len(err.splitlines()) == 1, err


def test_the_server_answers_a_non_finite_model_with_a_json_500(monkeypatch, digits):
    from fastapi.testclient import TestClient

    from lenet.serving.app import create_app

    monkeypatch.setattr(NumpyModel, "load", classmethod(lambda cls, path: nan_model()))
    image = next(digits.iterdir()).read_bytes()
    with TestClient(create_app(), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        assert client.get("/model").status_code == 200
        for route in ("/predict", "/explain"):
            r = client.post(route, content=image, headers={"content-type": "image/png"})
            assert r.status_code == 500 and "non-finite outputs" in r.json()["error"], (route, r.text)
        assert client.get("/health").status_code == 200


# 10. Half precision and FP8 tensors.

def tensors_as(dtype) -> bytes:
    """The bundled model's file with every floating-point tensor stored as torch `dtype`."""
    import torch
    from safetensors.torch import save

    tensors = {k: torch.from_numpy(v.copy()) for k, v in bundled_tensors().items()}
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return save(tensors, metadata={"lenet": json.dumps(bundled_info())})


@pytest.mark.parametrize("dtype, within", [("bfloat16", 0.05), ("float16", 0.005)])
def test_half_precision_tensors_are_widened_to_float32(dtype, within, tmp_path, mnist):
    import torch

    path = tmp_path / "half.safetensors"
    path.write_bytes(tensors_as(getattr(torch, dtype)))
    weights, _, _ = load_model_file(path)
    assert all(w.dtype == np.float32 for k, w in weights.items() if not k.endswith("num_batches_tracked"))
    full = NumpyModel.load(bundled_model_path()).probabilities(mnist.test_images[:200])
    half = NumpyModel.load(path).probabilities(mnist.test_images[:200])
    assert np.abs(half - full).max() < within
    assert (half.argmax(1) == full.argmax(1)).mean() >= 0.98


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_fp8_tensors_are_one_line_naming_the_tensor(dtype, tmp_path, digits, mnist_dir):
    import torch

    path = tmp_path / "fp8.safetensors"
    path.write_bytes(tensors_as(getattr(torch, dtype)))
    name = "F8_E4M3" if dtype == "float8_e4m3fn" else "F8_E5M2"
    with pytest.raises(ValueError, match=f"tensor 'model[a-z0-9._]+' holds {name} values"):
        load_model_file(path)
    env = dict(os.environ, LENET_DATA_DIR=str(mnist_dir))
    one_line_error(cli("predict", "--model", str(path), str(digits)), name, "float32")
    one_line_error(cli("evaluate", "--model", str(path), env=env), name)
    one_line_error(cli("export", "--model", str(path), "--output", str(tmp_path / "m.onnx")), name)
    one_line_error(lenet("serve", "--model", str(path), "--port", "1", timeout=60), name)


def test_a_tensor_of_another_dtype_is_named(tmp_path):
    tensors = bundled_tensors()
    tensors["model.c1.weight"] = tensors["model.c1.weight"].astype(np.complex64)
    path = tmp_path / "complex.safetensors"
    save_file(tensors, path, metadata={"lenet": json.dumps(bundled_info())})
    with pytest.raises(ValueError, match=re.escape("'model.c1.weight' holds C64 values")):
        load_model_file(path)


# 11. Tampered checkpoints: refused in one line before anything is touched.

TRAIN_FLAGS = ["--log-every", "0", "--no-plots"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real checkpoints of seconds-long runs on random data: each end of epoch 1 ("end"; SGD) and,
    caught as training wrote them, the first mid-epoch one of SGD ("mid") and of Adam ("adam")."""
    import shutil

    import lenet.training.run as training_run

    root = tmp_path_factory.mktemp("runs")
    data = root / "data"
    write_dataset(data, n_train=384, n_test=32)  # 3 batches of 128 an epoch
    found = {}
    save = training_run.save_checkpoint
    for name, extra in (("mid", []), ("adam", ["--optimizer", "adam", "--lr", "0.001"])):
        caught = root / f"{name}.safetensors"

        def keep_the_first_mid_epoch(path, model, optimizer, state, extra=None, *, average=None, caught=caught):
            save(path, model, optimizer, state, extra, average=average)
            if state["step"] and not caught.exists():
                shutil.copyfile(path, caught)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(training_run, "save_checkpoint", keep_the_first_mid_epoch)
            code, _, err = run_main("train", "--recipe", "fast", "--epochs", "1", "--checkpoint-every", "1",
                                    *extra, *TRAIN_FLAGS, "--data-dir", str(data), "--out", str(root / name))
        assert code == 0 and caught.is_file(), err
        found[name] = caught
        if name == "mid":
            found["end"] = root / name / CHECKPOINT_FILE
    return data, found


def read_checkpoint(path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        return load_file(path), json.loads(f.metadata()["lenet"])


def resume(data, out) -> tuple[int, str, str]:
    return run_main("train", "--resume", "--epochs", "2", *TRAIN_FLAGS, "--data-dir", str(data), "--out", str(out))


@pytest.mark.parametrize("base", ["end", "mid", "adam"])
def test_genuine_checkpoints_resume(base, runs, tmp_path):
    data, found = runs
    _tensors, info = read_checkpoint(found[base])
    assert (info["step"] > 0) == (base != "end")
    out = tmp_path / "out"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(found[base].read_bytes())
    code, _, err = resume(data, out)
    assert code == 0, err
    assert load_model_file(out)[2]["history"][-1]["epoch"] == 2


def rng_state() -> np.ndarray:
    import torch
    return torch.Generator().get_state().numpy()


def drop(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def resized(t: dict, classes: int) -> dict:
    """Output layer and its momentum slots cut to `classes`: all of it consistent with a 5-class network."""
    t = dict(t)
    for key in ("model.output.weight", "model.output.bias", "optim.4.momentum_buffer", "optim.12.momentum_buffer"):
        t[key] = t[key][:classes]
    return t


# name: (which checkpoint, change the tensors, change the metadata, words of the error)
TAMPERED = {
    "no torch RNG state": ("end", lambda t: drop(t, "extra.torch_rng"), None, "no extra.torch_rng"),
    "torch RNG state of floats": ("end", lambda t: {**t, "extra.torch_rng": np.zeros(5056, np.float32)}, None,
                                  "not a random-number state"),
    "torch RNG state cut short": ("end", lambda t: {**t, "extra.torch_rng": t["extra.torch_rng"][:10]}, None,
                                  "torch accepts"),
    "torch RNG state all zeros": ("end", lambda t: {**t, "extra.torch_rng": np.zeros(5056, np.uint8)}, None,
                                  "torch accepts"),
    "step -1": ("end", None, lambda i: {**i, "step": -1}, "step -1"),
    "epoch -1": ("end", None, lambda i: {**i, "epoch": -1}, "epoch -1"),
    "epoch a string": ("end", None, lambda i: {**i, "epoch": "1"}, "'epoch' must be"),
    "epoch past its history": ("end", None, lambda i: {**i, "epoch": 3}, "rows of history"),
    "unknown recipe field": ("end", None, lambda i: {**i, "recipe": {**i["recipe"], "colour": "red"}},
                             "unknown recipe fields ['colour']"),
    "recipe lr NaN": ("end", None, lambda i: {**i, "recipe": {**i["recipe"], "lr": float("nan")}}, "NaN"),
    "recipe for another arch": ("end", None, lambda i: {**i, "recipe": {**i["recipe"], "arch": "lenet5"}},
                                "not the one its recipe makes"),
    "model arch changed": ("end", None, lambda i: {**i, "model": {**i["model"], "arch": "lenet5"}},
                           "not the one its recipe makes"),
    "classes changed": ("end", None, lambda i: {**i, "model": {**i["model"], "num_classes": 5}}, "5 classes"),
    "classes changed with every tensor": ("end", lambda t: resized(t, 5),
                                          lambda i: {**i, "model": {**i["model"], "num_classes": 5}},
                                          "the data has 10"),
    "optimizer slot resized": ("end", lambda t: {**t, "optim.0.momentum_buffer": np.zeros((3, 3), np.float32)},
                               None, "optim.0.momentum_buffer holds float32 (3, 3)"),
    "optimizer slot NaN": ("end", lambda t: {**t, "optim.2.momentum_buffer": t["optim.2.momentum_buffer"] * np.nan},
                           None, "NaN"),
    "optimizer slot of parameter 99": ("end", lambda t: {**t, "optim.99.momentum_buffer": np.zeros(3, np.float32)},
                                       None, "optim.99"),
    "Adam's second moment negative": ("adam", lambda t: {**t, "optim.5.exp_avg_sq": -t["optim.5.exp_avg_sq"] - 1},
                                      None, "negative"),
    "optimizer groups empty": ("end", None, lambda i: {**i, "optimizer": {**i["optimizer"], "param_groups": []}},
                               "parameter groups"),
    "optimizer lr a string": ("end", None, lambda i: {**i, "optimizer": {**i["optimizer"], "param_groups": [
        {**g, "lr": "fast"} for g in i["optimizer"]["param_groups"]]}}, "optimizer lr"),
    "no optimizer": ("end", None, lambda i: drop(i, "optimizer"), "no 'optimizer'"),
    "history row a string": ("end", None, lambda i: {**i, "history": ["epoch 1"]}, "history row 1"),
    "meta null": ("end", None, lambda i: {**i, "meta": None}, "'meta' must be"),
    "meta without subset": ("end", None, lambda i: {**i, "meta": drop(i["meta"], "subset")}, "no meta.subset"),
    "seed -1": ("end", None, lambda i: {**i, "seed": -1}, "seed -1"),
    "a tensor of no group": ("end", lambda t: {**t, "stowaway.x": np.zeros(1, np.float32)}, None, "stowaway"),
    "running sums at an epoch's start": ("end", None, lambda i: {**i, "running": {"loss": 1.0, "correct": 1,
                                                                                 "seen": 1}}, "running sums"),
    "epoch generator at an epoch's start": ("end", lambda t: {**t, "extra.generator": rng_state()}, None,
                                            "epoch generator"),
    "null sums mid-epoch": ("mid", None, lambda i: {**i, "running": None}, "running sums"),
    "sums of strings mid-epoch": ("mid", None, lambda i: {**i, "running": {"loss": "a", "correct": None, "seen": 1}},
                                  "running sums"),
    "more correct than seen": ("mid", None, lambda i: {**i, "running": {**i["running"], "correct": 10**6}},
                               "running sums"),
    "no epoch generator mid-epoch": ("mid", lambda t: drop(t, "extra.generator"), None, "no extra.generator"),
    "step past the epoch": ("mid", None, lambda i: {**i, "step": 3}, "an epoch of this data has 3"),
    "weights NaN": ("end", lambda t: {**t, "model.f6.bias": t["model.f6.bias"] * np.nan}, None, "f6.bias"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_checkpoint_is_one_line_and_touches_nothing(case, runs, tmp_path):
    data, found = runs
    base, change_tensors, change_info, words = TAMPERED[case]
    tensors, info = read_checkpoint(found[base])
    tensors = change_tensors(tensors) if change_tensors else tensors
    info = change_info(info) if change_info else info
    out = tmp_path / "out"
    out.mkdir()
    save_file(tensors, out / CHECKPOINT_FILE, metadata={"lenet": json.dumps(info)})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = resume(data, out)
    assert code == 1, (code, err[-2000:])
    errors = [line for line in err.splitlines() if "error" in line]  # the first line says the CPU threads
    assert len(errors) == 1 and CHECKPOINT_FILE in errors[0] and words in errors[0], err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_command_refuses_a_tampered_checkpoint_in_one_line(runs, tmp_path):
    data, found = runs
    tensors, info = read_checkpoint(found["mid"])
    out = tmp_path / "out"
    out.mkdir()
    save_file(drop(tensors, "extra.torch_rng"), out / CHECKPOINT_FILE, metadata={"lenet": json.dumps(info)})
    one_line_error(lenet("train", "--resume", *TRAIN_FLAGS, "--data-dir", str(data), "--out", str(out)),
                   "corrupt checkpoint", "no extra.torch_rng")
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_FILE]
