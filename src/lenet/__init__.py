"""LeNet handwritten digit recognition on MNIST, built on PyTorch.

    import lenet
    clf = lenet.load()                      # the bundled model
    clf.predict("digit.png").digit
    lenet.train("fast", out="runs/fast")    # train (imports torch)
    lenet.evaluate("runs/fast").accuracy
    clf.add_sample("my-7.png", 7, samples="mine")  # a correction, kept as a sample
    lenet.teach("mine").model_path          # the model, fine-tuned on the samples (imports torch)
    (x, y), (x_test, y_test) = lenet.datasets.mnist()

Importing the package is cheap: torch is imported only by the modules that
train (`lenet.training`, `lenet.nn.torch_model`), so inference can run without it.
"""

__version__ = "0.1.0"

__all__ = ["Classifier", "EvalResult", "NumberReading", "Prediction", "TrainResult", "datasets", "evaluate", "load",
           "teach", "train"]
_API = {"Classifier", "EvalResult", "NumberReading", "Prediction", "TrainResult", "evaluate", "load", "teach", "train"}


def __getattr__(name: str):
    """The API on first use (PEP 562): `import lenet` alone imports nothing, so the `lenet` command
    can set NumPy's and torch's thread counts before either is loaded (cli.py, cpu.py)."""
    import importlib

    if name == "datasets":
        return importlib.import_module("lenet.data.mnist")
    if name in _API:
        return getattr(importlib.import_module("lenet.api"), name)
    raise AttributeError(f"module 'lenet' has no attribute {name!r}")
