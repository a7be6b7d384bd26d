"""Where the MNIST-style data sets are looked for."""
import os
import sys

import numpy as np

from cnnc.datasets._idx_sets import has_idx_files, load_idx

SYSTEM_ROOT = "/usr/share/datasets"


def _candidates(subdirs):
    env = os.environ.get("CNNC_DATA")
    if env:
        yield "$CNNC_DATA", env
        for sub in subdirs:
            yield "$CNNC_DATA", os.path.join(env, sub)
    for sub in subdirs:
        yield "system", os.path.join(SYSTEM_ROOT, sub)


def searched_places(subdirs):
    return [p for _, p in _candidates(subdirs)]


def locate(path, subdirs):
    """Directory (or .npz file) holding the data set: ``path`` if given (it
    must be valid), else the first of $CNNC_DATA, $CNNC_DATA/<subdir> and
    /usr/share/datasets/<subdir> that holds the four IDX files; None if none."""
    if path is not None:
        path = os.fspath(path)
        if os.path.isfile(path) and path.endswith(".npz"):
            return path
        if os.path.isdir(path):
            for candidate in [path] + [os.path.join(path, s) for s in subdirs]:
                if has_idx_files(candidate):
                    return candidate
        raise FileNotFoundError(
            f"{path}: expected a directory with train-images-idx3-ubyte[.gz], "
            f"train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
            f"t10k-labels-idx1-ubyte[.gz] (or a .npz file with x_train, y_train, x_test, y_test)")
    for _, candidate in _candidates(subdirs):
        if has_idx_files(candidate):
            return candidate
    return None


def load_located(location):
    if location.endswith(".npz"):
        from cnnc.datasets.npz import load_npz
        return load_npz(location)
    return load_idx(location)


def note(message, verbose):
    if verbose:
        print(f"cnnc: {message}", file=sys.stderr, flush=True)


def as_keras_arrays(data):
    (x_train, y_train), (x_test, y_test) = data
    return ((np.ascontiguousarray(x_train), np.ascontiguousarray(y_train)),
            (np.ascontiguousarray(x_test), np.ascontiguousarray(y_test)))
