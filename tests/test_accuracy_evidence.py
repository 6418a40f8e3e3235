"""The accuracy evidence: per-epoch test accuracy recorded beside a holdout, and the selection figures."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lenet.config import RECIPES
from lenet.training.run import RunOptions, train_on

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quick(mnist, out, test_each_epoch):
    options = RunOptions(seed=3, subset=2000, holdout=1000, epochs=2, log_every=0, plots=False,
                         test_each_epoch=test_each_epoch)
    return train_on(mnist, RECIPES["fast"], out, options, log=lambda *a, **k: None)


def test_test_accuracy_each_epoch_is_recorded_and_changes_nothing(mnist, tmp_path):
    plain = quick(mnist, tmp_path / "plain", test_each_epoch=False)
    recorded = quick(mnist, tmp_path / "recorded", test_each_epoch=True)
    # Recording scores the model and reads nothing back: training and the holdout figures are the same.
    assert [r["val_accuracy"] for r in recorded["history"]] == [r["val_accuracy"] for r in plain["history"]]
    assert [r["train_loss"] for r in recorded["history"]] == [r["train_loss"] for r in plain["history"]]
    assert recorded["validation"].startswith("holdout")
    assert recorded["history"][-1]["test_accuracy"] == recorded["test_accuracy"] == plain["test_accuracy"]
    assert "test_accuracy" not in plain["history"][-1]
    with open(tmp_path / "recorded" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["test_accuracy"]) for r in rows] == [r["test_accuracy"] for r in recorded["history"]]
    assert "test_accuracy" not in (tmp_path / "plain" / "metrics.csv").read_text()


def history(val, test):
    return {"history": [{"val_accuracy": v, "test_accuracy": t, "seconds": 2.0}
                        for v, t in zip(val, test, strict=False)],
            "parameters": 70_934}


def test_last_holdout_chosen_and_best_epoch_side_by_side():
    bench = load_benchmark()
    # The holdout peaks at epoch 2, the test set at epoch 3; the last epoch is neither.
    row = bench.summarize_run(0, history([0.98, 0.991, 0.990, 0.989], [0.980, 0.9920, 0.9950, 0.9930]), 9.0)
    assert (row["last"], row["holdout_chosen"], row["holdout_chosen_epoch"]) == (0.9930, 0.9920, 2)
    assert (row["best_epoch"], row["best_epoch_at"]) == (0.9950, 3)
    assert row["training_seconds"] == 8.0 and row["epochs"] == 4
    other = bench.summarize_run(1, history([0.99, 0.99], [0.9900, 0.9910]), 5.0)
    third = bench.summarize_run(2, history([0.99, 0.99], [0.9960, 0.9940]), 5.0)
    s = bench.summarize([row, other, third])
    assert s["last"]["median"] == 0.9930 and (s["last"]["min"], s["last"]["max"]) == (0.9910, 0.9940)
    assert s["best_epoch"]["median"] == 0.9950
    assert s["epoch_selection_bias"] == pytest.approx(0.0020)
    assert s["seed_selection_bias"] == pytest.approx(0.0010)
    table = bench.markdown("fast", [row, other, third], s, "cmd", "machine")
    assert "| 0 | 99.30 | 99.20 (epoch 2) | 99.50 (epoch 3) |" in table
    assert "+0.20 points" in table


def test_a_run_without_per_epoch_test_accuracy_is_refused():
    bench = load_benchmark()
    with pytest.raises(ValueError, match="test_each_epoch"):
        bench.summarize_run(0, {"history": [{"val_accuracy": 0.9, "seconds": 1.0}], "parameters": 1}, 1.0)


def test_with_a_moving_average_the_weights_are_summarized_beside_it():
    bench = load_benchmark()
    runs = []
    for seed, (raw_last, avg_last) in enumerate([(0.9950, 0.9960), (0.9940, 0.9965), (0.9955, 0.9962)]):
        info = history([0.99, 0.993], [0.9900, avg_last])
        for row, raw_val, raw_test in zip(info["history"], [0.98, 0.991], [0.9957, raw_last], strict=True):
            row.update(raw_val_accuracy=raw_val, raw_test_accuracy=raw_test)
        runs.append(bench.summarize_run(seed, info, 5.0))
    assert (runs[0]["raw_last"], runs[0]["raw_best_epoch"], runs[0]["raw_holdout_last"]) == (0.9950, 0.9957, 0.991)
    s = bench.summarize(runs)
    assert s["raw_last"]["median"] == 0.9950 and s["last"]["median"] == 0.9962
    assert s["holdout_last"]["median"] == 0.993 and s["raw_holdout_last"]["median"] == 0.991
    table = bench.markdown("best", runs, s, "cmd", "machine")
    assert "| 1 | 99.40 | 99.57 | 99.30 | 99.10 |" in table
    assert "| **median** | **99.50** |" in table
    plain_runs = [bench.summarize_run(0, history([0.99], [0.99]), 1.0)]
    plain = bench.summarize(plain_runs)
    assert "raw_last" not in plain and "weights: last epoch" not in bench.markdown("fast", plain_runs, plain, "c", "m")


def test_combine_joins_the_seeds_of_one_setting_and_refuses_others(tmp_path):
    import argparse
    import json

    bench = load_benchmark()
    row = bench.summarize_run(0, history([0.99], [0.9950]), 1.0)
    part = {"recipe": {"name": "best", "ema": 0.999}, "holdout": 5000, "subset": None, "command": "a",
            "machine": "m", "runs": [row]}
    (tmp_path / "a.json").write_text(json.dumps(part))
    (tmp_path / "b.json").write_text(json.dumps({**part, "command": "b", "recipe": {**part["recipe"], "summary": "x"},
                                                 "runs": [{**row, "seed": 1, "last": 0.9970}]}))
    ap = argparse.ArgumentParser()
    bench.combine([tmp_path / "b.json", tmp_path / "a.json"], tmp_path / "all.json", None, ap)
    combined = json.loads((tmp_path / "all.json").read_text())
    assert [r["seed"] for r in combined["runs"]] == [0, 1]
    assert combined["summary"]["last"]["median"] == pytest.approx(0.9960)
    (tmp_path / "c.json").write_text(json.dumps({**part, "recipe": {"name": "best", "ema": 0.0}}))
    with pytest.raises(SystemExit):
        bench.combine([tmp_path / "a.json", tmp_path / "c.json"], tmp_path / "x.json", None, ap)
    with pytest.raises(SystemExit):  # the same seed twice
        bench.combine([tmp_path / "a.json", tmp_path / "a.json"], tmp_path / "x.json", None, ap)


def test_tta_views_move_the_image_one_pixel_with_background_filling_in():
    from lenet.evaluation import scoring

    spec = importlib.util.spec_from_file_location("tta_benchmark", ROOT / "benchmarks" / "tta.py")
    tta = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tta)
    image = np.zeros((1, 4, 4), np.uint8)
    image[0, 0, 0], image[0, 3, 3] = 7, 9
    right_down = scoring.shifted(image, 1, 1)[0]
    assert right_down[1, 1] == 7 and right_down.sum() == 7  # the corner pixel 9 left the image
    left = scoring.shifted(image, -1, 0)[0]
    assert left[3, 2] == 9 and left.sum() == 9
    assert scoring.shifted(image, 0, 0) is image
    assert [tta.VIEWS[name] for name in ("none", "shift4", "shift8")] == [scoring.VIEWS[n] for n in (0, 4, 8)]
    assert all(len(set(v)) == len(v) and v[0] == (0, 0) for v in tta.VIEWS.values())
