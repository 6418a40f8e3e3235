"""LeNet handwritten digit recognition on MNIST, built on PyTorch.

    import lenet
    clf = lenet.load()                      # the bundled model
    clf.predict("digit.png").digit
    lenet.train("fast", out="runs/fast")    # train (imports torch)
    lenet.evaluate("runs/fast").accuracy
    (x, y), (x_test, y_test) = lenet.datasets.mnist()

Importing the package is cheap: torch is imported only by the modules that
train (`lenet.training`, `lenet.model`), so inference can run without it.
"""

__version__ = "0.1.0"

from . import datasets  # noqa: E402
from .api import Classifier, EvalResult, Prediction, TrainResult, evaluate, load, train  # noqa: E402

__all__ = ["Classifier", "EvalResult", "Prediction", "TrainResult", "datasets", "evaluate", "load", "train"]
