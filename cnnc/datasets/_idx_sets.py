"""Finding and loading the four IDX files of an MNIST-style data set."""
import os
import re

import numpy as np

from cnnc.datasets.idx import read_idx

_SPLITS = {"train": ("train",), "test": ("t10k", "test")}
_KINDS = {"images": ("images", "imgs"), "labels": ("labels",)}


def read_idx_pair(images, labels):
    """Read an images file and its labels file: ``(x, y)`` with x of shape
    (N, H, W) (or (N, H, W, C)) and y of shape (N,), both uint8 for the usual
    data sets. Raises ValueError naming the files if they disagree."""
    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim not in (3, 4):
        raise ValueError(f"{images}: expected an image array of 3 or 4 dimensions, got shape {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"{labels}: expected a 1-D label array, got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{images} holds {x.shape[0]} images but {labels} holds {y.shape[0]} labels")
    return x, y


def _matches(name, split, kind, prefix):
    lower = name.lower()
    if prefix and not lower.startswith(prefix.lower()):
        return False
    if not re.search(r"idx\d", lower):
        return False
    rest = lower[len(prefix):]
    split_ok = any(re.search(rf"(^|[-_.]){s}([-_.]|$)", rest) for s in _SPLITS[split])
    return split_ok and any(k in rest for k in _KINDS[kind])


def find_idx_files(directory, prefix=""):
    """The four IDX files of ``directory`` as a dict with keys train_images,
    train_labels, test_images, test_labels. Names follow the MNIST scheme
    (``train-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte``...), with an
    optional ``prefix`` such as ``"emnist-balanced-"``. FileNotFoundError when
    a file is missing, ValueError when a name is ambiguous."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory")
    names = sorted(os.listdir(directory))
    found = {}
    for split in _SPLITS:
        for kind in _KINDS:
            hits = [n for n in names if _matches(n, split, kind, prefix)]
            # Prefer an uncompressed file and a compressed one alike, but not both.
            stems = {}
            for n in hits:
                stems.setdefault(n[:-3] if n.endswith(".gz") else n, []).append(n)
            if not stems:
                raise FileNotFoundError(
                    f"{directory}: no {split} {kind} IDX file (like "
                    f"{prefix}{'train' if split == 'train' else 't10k'}-{kind}-idx"
                    f"{3 if kind == 'images' else 1}-ubyte[.gz])")
            if len(stems) > 1:
                raise ValueError(f"{directory}: several {split} {kind} files {sorted(hits)}; "
                                 f"pass prefix= to choose one set")
            candidates = next(iter(stems.values()))
            found[f"{split}_{kind}"] = os.path.join(directory, sorted(candidates, key=len)[0])
    return found


def load_idx(directory, prefix=""):
    """Load an MNIST-style IDX data set (MNIST, Fashion-MNIST, EMNIST, KMNIST)
    from ``directory``: ``(x_train, y_train), (x_test, y_test)`` as uint8
    arrays of shape (N, H, W) and (N,)."""
    files = find_idx_files(directory, prefix)
    train = read_idx_pair(files["train_images"], files["train_labels"])
    test = read_idx_pair(files["test_images"], files["test_labels"])
    if train[0].shape[1:] != test[0].shape[1:]:
        raise ValueError(f"{directory}: training images are {train[0].shape[1:]} but test images "
                         f"are {test[0].shape[1:]}")
    return train, test


def has_idx_files(directory, prefix=""):
    try:
        find_idx_files(directory, prefix)
        return True
    except (OSError, ValueError):
        return False
