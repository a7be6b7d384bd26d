"""Fashion-MNIST (Zalando Research, MIT licence): 70,000 28x28 grayscale
images of 10 kinds of clothing, 60,000 for training and 10,000 for testing.

The full set is looked for in ``path``, ``$CNNC_DATA`` (or its
``fashion-mnist`` sub-directory) and ``/usr/share/datasets/fashion-mnist``
(Debian's ``dataset-fashion-mnist`` package). When none has it, a stratified
real sample shipped with cnnc is used (3,000 training and 1,000 test images)
and a note says so.
"""
import os

from cnnc.datasets import _search
from cnnc.datasets._idx_sets import load_idx

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

SUBDIRS = ("fashion-mnist", "fashion_mnist")
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fashion-mnist-sample")


def locate(path=None):
    """``(location, is_sample)``: where load_data(path) reads from."""
    found = _search.locate(path, SUBDIRS)
    if found is not None:
        return found, False
    return SAMPLE_DIR, True


def load_data(path=None, verbose=True):
    """Load Fashion-MNIST: ``(x_train, y_train), (x_test, y_test)``.

    x arrays are uint8 of shape (N, 28, 28) with values 0..255, y arrays are
    uint8 class indices 0..9 (see CLASS_NAMES). ``path``: a directory with
    the four IDX files (plain or gzip) or a ``.npz`` file with x_train,
    y_train, x_test, y_test. ``verbose``: print a note on stderr when the
    bundled sample is used.
    """
    location, is_sample = locate(path)
    if is_sample:
        places = ", ".join(_search.searched_places(SUBDIRS))
        _search.note(f"the full Fashion-MNIST was not found (looked in {places}); using the "
                     f"sample bundled with cnnc (3,000 training and 1,000 test images). "
                     f"Install it with `apt-get install dataset-fashion-mnist`, set $CNNC_DATA "
                     f"or pass a directory.", verbose)
        return _search.as_keras_arrays(load_idx(location))
    return _search.as_keras_arrays(_search.load_located(location))
