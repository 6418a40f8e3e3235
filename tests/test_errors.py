"""Errors with a type: the library's own are one line with their exit and HTTP status; anything else is a bug
and keeps its traceback (in the CLI) or is a 500 (in the server)."""

import os

import numpy as np
import pytest

from lenet.cli import commands
from lenet.cli import main as cli
from lenet.errors import ExitStatus, ImageError, LenetError, NoDigit, OverBudget, TooLarge, UsageError

from helpers import lenet


def raising(error):
    def command(*args, **kwargs):
        raise error
    return command


@pytest.mark.parametrize("error, status", [
    (ImageError("x.png: cannot decode the image"), ExitStatus.ERROR),
    (UsageError("--crop: expected x,y,w,h"), ExitStatus.ERROR),
    (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
])
def test_our_errors_are_one_line_with_their_exit_status(monkeypatch, capsys, error, status):
    monkeypatch.delenv("LENET_DEBUG", raising=False)
    monkeypatch.setattr(commands, "cmd_predict", raising(error))  # the parser looks the command up when built
    assert cli.main(["predict", "x.png"]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("lenet predict: "), err


def test_a_plain_value_error_is_a_bug_and_keeps_its_traceback(monkeypatch, capsys):
    monkeypatch.delenv("LENET_DEBUG", raising=False)
    monkeypatch.setattr(commands, "cmd_predict", raising(ValueError("operands could not be broadcast together")))
    with pytest.raises(ValueError, match="broadcast"):  # not turned into "lenet predict: error: ..."
        cli.main(["predict", "x.png"])
    assert "error:" not in capsys.readouterr().err


@pytest.mark.parametrize("how", ["--traceback", "LENET_DEBUG=1"])
def test_traceback_and_lenet_debug_show_the_stack_of_our_errors_too(monkeypatch, how):
    monkeypatch.delenv("LENET_DEBUG", raising=False)
    monkeypatch.setattr(commands, "cmd_predict", raising(NoDigit("x.png: no ink found")))
    argv = ["predict", "x.png"]
    if how == "--traceback":
        argv = ["--traceback", *argv]
    else:
        monkeypatch.setenv("LENET_DEBUG", "1")
    with pytest.raises(NoDigit, match="no ink"):
        cli.main(argv)


def test_lenet_debug_0_is_off(monkeypatch, capsys):
    monkeypatch.setenv("LENET_DEBUG", "0")
    monkeypatch.setattr(commands, "cmd_predict", raising(NoDigit("x.png: no ink found")))
    assert cli.main(["predict", "x.png"]) == ExitStatus.ERROR
    assert "no ink found" in capsys.readouterr().err


def test_a_real_usage_error_as_a_user_sees_it_with_and_without_traceback(tmp_path):
    args = ("predict", "--crop", "1,2", str(tmp_path / "x.png"))
    r = lenet(*args, env=dict(os.environ, LENET_DEBUG=""))
    assert r.returncode == ExitStatus.ERROR and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "expected x,y,w,h" in r.stderr
    r = lenet("--traceback", *args)
    assert r.returncode == 1 and "Traceback" in r.stderr and "lenet.errors.UsageError: --crop" in r.stderr


def test_each_error_carries_its_statuses():
    assert issubclass(LenetError, ValueError)  # code that catches ValueError still catches them
    assert (ExitStatus.SUCCESS, ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.INTERRUPTED) == (0, 1, 2, 130)
    assert [e.http_status for e in (ImageError, NoDigit, TooLarge, OverBudget, UsageError)] == [400, 422, 413, 503, 400]
    assert all(e.exit_status == ExitStatus.ERROR for e in (ImageError, NoDigit, TooLarge, OverBudget, UsageError))


@pytest.fixture(scope="module")
def server():
    from fastapi.testclient import TestClient

    from lenet.serving.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("error, status", [
    (TooLarge("upload: 9,999 x 9,999 pixels"), 413),  # the type says 413; the words do not
    (ImageError("upload: over the limit of nothing in particular"), 400),  # words that once meant 413
    (OverBudget("upload: the decoding budget was spent"), 503),
    (ValueError("operands could not be broadcast together"), 500),  # a bug is not the request's fault
])
def test_the_servers_status_comes_from_the_errors_type(monkeypatch, server, error, status):
    import lenet.serving.inputs as inputs

    from test_preprocess import png_bytes

    monkeypatch.setattr(inputs, "decode_image", raising(error))  # where the server decodes an upload
    r = server.post("/predict", content=png_bytes(np.zeros((28, 28), np.uint8)), headers={"content-type": "image/png"})
    assert r.status_code == status, r.text
    if status != 500:
        assert r.json() == {"error": str(error)}


def test_the_readers_own_refusals_are_typed():
    from lenet.reading.number import OutOfTime, TooManyDigits
    from lenet.serving.inputs import RequestError

    assert issubclass(TooManyDigits, TooLarge) and issubclass(OutOfTime, OverBudget)
    assert issubclass(RequestError, LenetError) and RequestError(415, "send an image").http_status == 415


def test_a_full_samples_folder_is_a_507_by_its_type(tmp_path, monkeypatch):
    from lenet.data import samples

    monkeypatch.setattr(samples, "MAX_SAMPLES", 0)
    seen = np.zeros((28, 28), np.uint8)
    with pytest.raises(samples.FolderFull, match="already holds 0 samples") as e:
        samples.add_sample(tmp_path, seen, seen, 1)
    assert e.value.http_status == 507 and isinstance(e.value, LenetError)
