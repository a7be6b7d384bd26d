"""Utilities (``cnnc.utils``): one-hot encoding, seeding, the progress bar."""
import random as _py_random

import numpy as np

from cnnc import random as _cnnc_random
from cnnc._progbar import Progbar
from cnnc.layers.base import reset_names
from cnnc.models.memory import MemoryEstimate, available_memory, estimate_memory

__all__ = ["to_categorical", "set_random_seed", "Progbar", "normalize", "estimate_memory",
           "MemoryEstimate", "available_memory"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels: shape ``y.shape + (num_classes,)``
    (a trailing axis of size 1 is dropped first, as Keras)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("to_categorical needs integer class labels")
    elif y.dtype.kind not in "iub":
        raise TypeError(f"to_categorical needs integer class labels, got dtype {y.dtype}")
    labels = y.astype(np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and labels.min() < 0:
        raise ValueError(f"class labels must be >= 0, got {labels.min()}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(f"label {labels.max()} is out of range for num_classes={num_classes}")
    out = np.zeros(labels.shape + (int(num_classes),), dtype=dtype)
    flat = out.reshape(-1, int(num_classes))
    flat[np.arange(flat.shape[0]), labels.reshape(-1)] = 1
    return out


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm).astype(np.float32)


def set_random_seed(seed):
    """Seed every source of randomness of a cnnc run: weight initializers,
    dropout masks, the shuffling of ``fit``, and Python's and NumPy's global
    generators. With a fixed seed and thread count, a training run is
    bit-identical from one execution to the next. Automatic layer names also
    restart (conv2d, conv2d_1, ...), so rebuilt models have the same names."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    _cnnc_random.set_seed(seed)
    _py_random.seed(seed)
    np.random.seed(seed % 2**32)
    reset_names()
