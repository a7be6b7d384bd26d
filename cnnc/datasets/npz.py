"""Data sets stored as NumPy ``.npz`` archives (no pickle)."""
import os
import zipfile

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path):
    """Load ``(x_train, y_train), (x_test, y_test)`` from a ``.npz`` file with
    those four arrays (Keras's ``mnist.npz`` layout). Object arrays are
    refused: nothing is unpickled."""
    path = os.fspath(path)
    with open(path, "rb") as f:  # FileNotFoundError passes through as it is
        magic = f.read(4)
    # np.load would read a .npy file, or report any other file as pickled data.
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a .npz archive (a zip of .npy arrays written by np.savez; "
                         f"this file starts with {magic!r})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise ValueError(f"{path}: missing array(s) {missing}; found {sorted(archive.files)} "
                                 f"(expected {list(KEYS)})")
            arrays = {k: archive[k] for k in KEYS}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError) or str(exc).startswith(path + ": missing"):
            raise
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or len(x) != len(y):
            raise ValueError(f"{path}: x_{split} has shape {x.shape} but y_{split} has shape {y.shape}")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"{path}: x_train samples are {arrays['x_train'].shape[1:]} but x_test "
                         f"samples are {arrays['x_test'].shape[1:]}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def save_npz(path, x_train, y_train, x_test, y_test, compressed=True):
    """Write the four arrays in the layout load_npz reads."""
    (np.savez_compressed if compressed else np.savez)(
        path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
