"""Test-time augmentation in `lenet evaluate --shifts`: the views and their average."""

from types import SimpleNamespace

import numpy as np
import pytest

from lenet.errors import UsageError
from lenet.evaluation.scoring import VIEWS, evaluate_models, shifted
from lenet.pretrained import bundled_model_path


def test_shifted_moves_pixels_and_fills_background():
    images = np.zeros((1, 5, 5), np.uint8)
    images[0, 2, 2], images[0, 0, 4] = 200, 99
    right = shifted(images, 1, 0)
    assert right[0, 2, 3] == 200 and right[0, 2, 2] == 0
    assert right[0, 0].tolist() == [0, 0, 0, 0, 0]  # the corner pixel left the image; nothing wrapped round
    up_left = shifted(images, -1, -1)
    assert up_left[0, 1, 1] == 200 and up_left.sum() == 200
    assert shifted(images, 0, 0) is images


def first(ds, n=40):
    return SimpleNamespace(test_images=ds.test_images[:n], test_labels=ds.test_labels[:n],
                           num_classes=ds.num_classes, image_shape=ds.image_shape)


def test_shifts_average_the_views(mnist):
    model, ds = str(bundled_model_path()), first(mnist)
    each = []
    for dx, dy in VIEWS[4]:
        moved = SimpleNamespace(**{**vars(ds), "test_images": shifted(ds.test_images, dx, dy)})
        each.append(evaluate_models([model], moved, "cpu").probabilities)
    result = evaluate_models([model], ds, "cpu", shifts=4)
    assert result.shifts == 4 and result.to_json()["shifts"] == 4
    np.testing.assert_allclose(result.probabilities, np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(result.probabilities, each[0])  # the shifts did change something


def test_shifts_refuses_other_counts(mnist):
    with pytest.raises(UsageError, match="shifts 3"):
        evaluate_models([str(bundled_model_path())], first(mnist, 4), "cpu", shifts=3)
