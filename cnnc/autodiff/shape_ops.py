"""Traced shape operations (Keras's ``keras.ops`` names): reshape,
transpose, concatenate, stack, split, expand/squeeze, padding, tiling and
indexing (``tensor[...]``). On plain arrays they return arrays."""
import numpy as np

from cnnc import _elementwise
from cnnc.autodiff.dispatch import any_traced, node_input, raw, unary
from cnnc.autodiff.tensor import Tensor, apply

__all__ = ["reshape", "transpose", "concatenate", "stack", "split", "expand_dims", "squeeze",
           "get_item", "pad", "tile", "repeat", "flip", "ravel", "swapaxes", "moveaxis",
           "broadcast_to", "cast", "convert_to_tensor", "convert_to_numpy", "shape",
           "zeros", "ones", "zeros_like", "ones_like", "full", "full_like", "arange", "eye",
           "one_hot", "take", "cumsum"]


def reshape(x, newshape):
    """``x`` with shape ``newshape`` (one entry may be -1)."""
    return unary(x, lambda v: np.reshape(v, newshape), lambda v, y, g: g.reshape(v.shape))


def transpose(x, axes=None):
    def backward(v, y, g):
        if axes is None:
            return np.transpose(g)
        return np.transpose(g, np.argsort([a % v.ndim for a in axes]))
    return unary(x, lambda v: np.transpose(v, axes), backward)


def swapaxes(x, axis1, axis2):
    return unary(x, lambda v: np.swapaxes(v, axis1, axis2),
                 lambda v, y, g: np.swapaxes(g, axis1, axis2))


def moveaxis(x, source, destination):
    return unary(x, lambda v: np.moveaxis(v, source, destination),
                 lambda v, y, g: np.moveaxis(g, destination, source))


def expand_dims(x, axis):
    return unary(x, lambda v: np.expand_dims(v, axis), lambda v, y, g: g.reshape(v.shape))


def squeeze(x, axis=None):
    return unary(x, lambda v: np.squeeze(v, axis), lambda v, y, g: g.reshape(v.shape))


def ravel(x):
    return reshape(x, (-1,))


def flip(x, axis=None):
    return unary(x, lambda v: np.flip(v, axis), lambda v, y, g: np.flip(g, axis))


def broadcast_to(x, shape):
    from cnnc.autodiff.tensor import unbroadcast
    return unary(x, lambda v: np.broadcast_to(v, shape).copy(),
                 lambda v, y, g: unbroadcast(g, v.shape))


def tile(x, repeats):
    def backward(v, y, g):
        reps = (1,) * (g.ndim - len(tuple(np.atleast_1d(repeats)))) + \
            tuple(np.atleast_1d(repeats))
        shape = (1,) * (g.ndim - v.ndim) + v.shape
        split = []
        for r, n in zip(reps, shape):
            split += [r, n]
        return g.reshape(split).sum(axis=tuple(range(0, 2 * g.ndim, 2))).reshape(v.shape)
    return unary(x, lambda v: np.tile(v, repeats), backward)


def repeat(x, repeats, axis=None):
    def backward(v, y, g):
        if axis is None:
            flat = v.reshape(-1)
            idx = np.repeat(np.arange(flat.size), repeats)
            return np.bincount(idx, weights=g.reshape(-1), minlength=flat.size).astype(
                np.float32).reshape(v.shape)
        ax = axis % v.ndim
        idx = np.repeat(np.arange(v.shape[ax]), repeats)
        out = np.zeros(v.shape, np.float32)
        np.add.at(out, (slice(None),) * ax + (idx,), g)
        return out
    return unary(x, lambda v: np.repeat(v, repeats, axis), backward)


def pad(x, pad_width, mode="constant", constant_values=None):
    """``numpy.pad`` in constant mode (the gradient crops the padding off)."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is differentiable here, got {mode!r}")
    value = 0 if constant_values is None else constant_values

    def backward(v, y, g):
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (v.ndim, 2))
        return g[tuple(slice(int(a), int(a) + n) for (a, _), n in zip(widths, v.shape))]
    return unary(x, lambda v: np.pad(v, pad_width, constant_values=value), backward)


def _key_values(key):
    """An index with traced parts replaced by their values."""
    if isinstance(key, tuple):
        return tuple(_key_values(k) for k in key)
    if type(key) is Tensor:
        return key.value
    return key


def get_item(x, key):
    """``x[key]`` (basic and advanced NumPy indexing); the gradient scatters
    back, summed where an element is picked several times."""
    key = _key_values(key)

    def backward(v, y, g):
        out = np.zeros(v.shape, np.float32)
        np.add.at(out, key, g)
        return out
    return unary(x, lambda v: v[key], backward)


def take(x, indices, axis=None):
    indices = raw(indices)

    def backward(v, y, g):
        out = np.zeros(v.shape, np.float32)
        if axis is None:
            np.add.at(out.reshape(-1), indices, g)
        else:
            ax = axis % v.ndim
            np.add.at(out, (slice(None),) * ax + (indices,), g)
        return out
    return unary(x, lambda v: np.take(v, indices, axis=axis), backward)


def cumsum(x, axis=None):
    def backward(v, y, g):
        if axis is None:
            return np.flip(np.cumsum(np.flip(g.reshape(-1)))).reshape(v.shape)
        return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)
    return unary(x, lambda v: np.cumsum(v, axis=axis), backward)


def _pieces(xs):
    return [node_input(x) for x in xs]


def concatenate(xs, axis=0):
    """Join along ``axis`` (Keras's default 0). On float32 arrays of one
    rank it runs the C kernel."""
    xs = list(xs)
    if not xs:
        raise ValueError("concatenate needs a non-empty list of arrays")
    if not any_traced(*xs):
        values = [raw(x) for x in xs]
        if all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in values):
            return _elementwise.concatenate(values, axis=axis)
        return np.concatenate(values, axis=axis)
    tensors = _pieces(xs)
    values = [t.value if t is not None else np.asarray(raw(x), np.float32)
              for t, x in zip(tensors, xs)]
    y = _elementwise.concatenate([np.ascontiguousarray(v, np.float32) for v in values],
                                 axis=axis)
    ax = axis % y.ndim
    bounds = np.cumsum([v.shape[ax] for v in values])[:-1]

    def grad(g):
        return np.split(g[0], bounds, axis=ax)
    return apply(y, tensors, grad)


def stack(xs, axis=0):
    xs = list(xs)
    if not any_traced(*xs):
        return np.stack([raw(x) for x in xs], axis=axis)
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def split(x, indices_or_sections, axis=0):
    """Pieces of ``x`` along ``axis`` (as ``numpy.split``)."""
    t = node_input(x)
    v = t.value if t is not None else raw(x)
    parts = np.split(v, indices_or_sections, axis=axis)
    if t is None:
        return parts

    def grad(gs):
        return (np.concatenate(gs, axis=axis),)
    return apply(parts, (t,), grad)


def cast(x, dtype):
    """``x`` converted to ``dtype``; gradients flow only between floating
    types."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return np.asarray(raw(x)).astype(dtype)
    return unary(x, lambda v: np.asarray(v).astype(dtype),
                 lambda v, y, g: g.astype(np.float32))


def convert_to_tensor(x, dtype=None):
    """A traced tensor stays as it is; anything else becomes an array."""
    if node_input(x) is not None:
        return x if dtype is None else cast(x, dtype)
    value = raw(x)
    return np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)


def convert_to_numpy(x):
    return np.asarray(raw(x))


def shape(x):
    return tuple(np.shape(raw(x)))


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype)


def full(shape, fill_value, dtype="float32"):
    return np.full(shape, fill_value, dtype)


def zeros_like(x, dtype=None):
    return np.zeros(np.shape(raw(x)), dtype or np.asarray(raw(x)).dtype)


def ones_like(x, dtype=None):
    return np.ones(np.shape(raw(x)), dtype or np.asarray(raw(x)).dtype)


def full_like(x, fill_value, dtype=None):
    return np.full(np.shape(raw(x)), fill_value, dtype or np.asarray(raw(x)).dtype)


def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=dtype)


def eye(N, M=None, k=0, dtype="float32"):
    return np.eye(N, M, k, dtype=dtype)


def one_hot(x, num_classes, axis=-1, dtype="float32"):
    """Integer labels to one-hot rows (no gradient)."""
    labels = np.asarray(raw(x)).astype(np.int64)
    out = (labels[..., None] == np.arange(num_classes)).astype(dtype)
    return np.moveaxis(out, -1, axis) if axis != -1 else out
