"""Real data sets: MNIST-style IDX files, image folders and ``.npz`` archives.

``load_data()`` functions follow Keras: ``(x_train, y_train), (x_test, y_test)``
as NumPy arrays. Nothing is downloaded; see each module for where files are
looked for.
"""
from cnnc.datasets import fashion_mnist, mnist  # noqa: F401
from cnnc.datasets._idx_sets import find_idx_files, load_idx, read_idx_pair  # noqa: F401
from cnnc.datasets.idx import parse_idx, read_idx, write_idx  # noqa: F401
from cnnc.datasets.images import (  # noqa: F401
    load_image_folder,
    load_image_folders,
    read_image,
)
from cnnc.datasets.npz import load_npz, save_npz  # noqa: F401

__all__ = ["fashion_mnist", "mnist", "read_idx", "write_idx", "parse_idx", "read_idx_pair",
           "find_idx_files", "load_idx", "load_npz", "save_npz", "read_image",
           "load_image_folder", "load_image_folders"]
