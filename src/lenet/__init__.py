"""LeNet handwritten digit recognition on MNIST, built on PyTorch.

Importing the package is cheap: torch is imported only by the modules that
train (`lenet.train`, `lenet.model`), so inference can run without it.
"""

__version__ = "0.1.0"
