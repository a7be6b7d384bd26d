"""Axis orders between cnnc's channels-last tensors and ONNX's
channels-first ones.

A permutation ``perm`` here always says: the tensor held on one side is the
tensor of the other side transposed by ``perm`` (``numpy.transpose``
semantics), with the batch axis left first.
"""
import numpy as np


def channels_first(rank):
    """Channels-last -> channels-first: (0, rank-1, 1, ..., rank-2)."""
    return (0, rank - 1) + tuple(range(1, rank - 1))


def channels_last(rank):
    """Channels-first -> channels-last: (0, 2, ..., rank-1, 1)."""
    return (0,) + tuple(range(2, rank)) + (1,)


def identity(rank):
    return tuple(range(rank))


def compose(first, second):
    """The permutation of transposing by ``first`` then by ``second``."""
    return tuple(first[i] for i in second)


def inverse(perm):
    return tuple(int(i) for i in np.argsort(perm))


def constant_in_layout(value, rank, perm):
    """A constant that broadcasts (NumPy's right-aligned rule) against a
    tensor of ``rank`` axes, rewritten for that tensor transposed by
    ``perm``: padded with leading 1s to ``rank`` axes and transposed."""
    value = np.asarray(value, np.float32)
    if value.ndim > rank:
        raise ValueError(f"a constant of shape {value.shape} does not broadcast against a "
                         f"rank-{rank} tensor")
    full = value.reshape((1,) * (rank - value.ndim) + value.shape)
    return np.ascontiguousarray(full.transpose(perm))


def same_order_when_flattened(shape, perm):
    """Whether flattening the non-batch axes gives the same element order for
    a tensor of ``shape`` and for it transposed by ``perm``: true when the
    axes longer than 1 keep their relative order."""
    kept = [a for a in perm[1:] if shape[a] != 1]
    return kept == sorted(kept)
