"""MNIST: 70,000 28x28 grayscale images of handwritten digits, 60,000 for
training and 10,000 for testing.

Looked for in ``path``, ``$CNNC_DATA`` (or its ``mnist`` sub-directory) and
``/usr/share/datasets/mnist``; nothing is downloaded.
"""
from cnnc.datasets import _search

CLASS_NAMES = tuple(str(d) for d in range(10))
SUBDIRS = ("mnist",)


def load_data(path=None):
    """Load MNIST: ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of
    shape (N, 28, 28) and (N,). ``path``: a directory with the four IDX files
    (plain or gzip) or a Keras-style ``mnist.npz``."""
    location = _search.locate(path, SUBDIRS)
    if location is None:
        raise FileNotFoundError(
            "MNIST was not found; looked in " + ", ".join(_search.searched_places(SUBDIRS)) +
            ". Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in a directory and pass it "
            "(or set $CNNC_DATA)")
    return _search.as_keras_arrays(_search.load_located(location))
