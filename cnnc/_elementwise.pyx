# cython: language_level=3, boundscheck=False
"""Elementwise operations and dropout (src/include/cnnc/elementwise.h)."""
import math
import operator

import numpy as np
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, free
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32, check_out, same_shape

cdef extern from "cnnc.h" nogil:
    cnnc_status cnnc_add_forward(int64_t n, const float *a, const float *b, float *y)
    cnnc_status cnnc_add_relu_forward(int64_t n, const float *a, const float *b, float *y)
    cnnc_status cnnc_multiply_forward(int64_t n, const float *a, const float *b, float *y)
    cnnc_status cnnc_bias_add_forward(int64_t rows, int64_t c, const float *x, const float *bias, float *y)
    cnnc_status cnnc_bias_add_backward(int64_t rows, int64_t c, const float *dy, float *dbias)
    cnnc_status cnnc_concat_forward(int64_t rows, int k, const int64_t *widths,
                                    const float *const *inputs, float *y)
    cnnc_status cnnc_concat_backward(int64_t rows, int k, const int64_t *widths, const float *dy,
                                     float *const *dinputs)
    cnnc_status cnnc_dropout_forward(int64_t n, float rate, uint64_t seed, uint64_t offset,
                                     const float *x, float *y, uint8_t *mask)
    cnnc_status cnnc_dropout_backward(int64_t n, float rate, const float *dy, const uint8_t *mask,
                                      float *dx)

__all__ = ["add", "multiply", "bias_add", "bias_add_backward", "concatenate", "split_channels",
           "dropout", "dropout_backward"]


def _binary(a, b, out, int op):
    a = as_float32(a, "a")
    b = as_float32(b, "b")
    same_shape(a, b, "a", "b")
    out = check_out(out, a.shape)
    cdef const float *pa = in_ptr(a)
    cdef const float *pb = in_ptr(b)
    cdef float *py = out_ptr(out)
    cdef int64_t n = a.size
    cdef cnnc_status status
    with nogil:
        if op == 0:
            status = cnnc_add_forward(n, pa, pb, py)
        elif op == 2:
            status = cnnc_add_relu_forward(n, pa, pb, py)
        else:
            status = cnnc_multiply_forward(n, pa, pb, py)
    check_status(status)
    return out


def add(a, b, out=None, activation=None):
    """a + b elementwise (a residual connection). a, b: the same shape.

    The gradient of a sum is dy for both operands. ``out`` may be a or b.
    ``activation="relu"`` gives max(a + b, 0) in the same pass, with the
    bits of ``relu(add(a, b))``; the gradient of both operands is then
    ``relu_backward(y, dy)``.
    """
    if activation is None or activation == "linear":
        return _binary(a, b, out, 0)
    if activation == "relu":
        return _binary(a, b, out, 2)
    raise ValueError(f"activation must be None or 'relu', got {activation!r}")


def multiply(a, b, out=None):
    """a * b elementwise; a, b: the same shape. Gradients: dy * b and dy * a."""
    return _binary(a, b, out, 1)


def _last_axis(x, name):
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least one axis")
    return x.size // x.shape[-1], x.shape[-1]


def bias_add(x, b, out=None):
    """x + b with b over the last axis: x (..., C), b (C,) -> (..., C)."""
    x = as_float32(x, "x")
    b = as_float32(b, "b")
    rows, c = _last_axis(x, "x")
    if b.shape != (c,):
        raise ValueError(f"b has shape {b.shape}, expected ({c},) (the last axis of x)")
    out = check_out(out, x.shape)
    cdef const float *px = in_ptr(x)
    cdef const float *pb = in_ptr(b)
    cdef float *py = out_ptr(out)
    cdef int64_t r = rows, cc = c
    cdef cnnc_status status
    with nogil:
        status = cnnc_bias_add_forward(r, cc, px, pb, py)
    check_status(status)
    return out


def bias_add_backward(dy):
    """Gradient of bias_add with respect to b: dy (..., C) summed over all but
    the last axis -> (C,), accumulated in double, the same for any thread count."""
    dy = as_float32(dy, "dy")
    rows, c = _last_axis(dy, "dy")
    db = np.empty(c, np.float32)
    cdef const float *pdy = in_ptr(dy)
    cdef float *pdb = out_ptr(db)
    cdef int64_t r = rows, cc = c
    cdef cnnc_status status
    with nogil:
        status = cnnc_bias_add_backward(r, cc, pdy, pdb)
    check_status(status)
    return db


def _normalize_axis(axis, ndim, name="axis"):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} = {axis} is out of range for arrays of {ndim} dimensions")
    return axis % ndim


cdef _concat_call(int64_t rows, list widths, list arrays, joined, bint forward):
    cdef int k = len(arrays)
    cdef int64_t *w = <int64_t *>malloc(k * sizeof(int64_t))
    cdef float **ptrs = <float **>malloc(k * sizeof(float *))
    cdef cnnc_status status
    cdef float *pj
    if w == NULL or ptrs == NULL:
        free(w)
        free(ptrs)
        raise MemoryError()
    try:
        for t in range(k):
            w[t] = widths[t]
            # forward: the parts are read, the joined array written; backward the other way round
            ptrs[t] = (<float *>in_ptr(arrays[t]) if forward else out_ptr(arrays[t])) if arrays[t].size else NULL
        pj = (out_ptr(joined) if forward else <float *>in_ptr(joined)) if joined.size else NULL
        with nogil:
            if forward:
                status = cnnc_concat_forward(rows, k, w, <const float *const *>ptrs, pj)
            else:
                status = cnnc_concat_backward(rows, k, w, pj, ptrs)
        check_status(status)
    finally:
        free(w)
        free(ptrs)


def concatenate(arrays, axis=-1):
    """Join arrays along ``axis`` (by default the channels). All arrays must
    have the same number of dimensions and agree on every other axis."""
    if isinstance(arrays, np.ndarray) or not hasattr(arrays, "__len__") or len(arrays) == 0:
        raise ValueError("arrays must be a non-empty sequence of arrays")
    arrays = [as_float32(a, f"arrays[{i}]", allow_empty=True) for i, a in enumerate(arrays)]
    first = arrays[0]
    if first.ndim == 0:
        raise ValueError("arrays[0] must have at least one axis")
    axis = _normalize_axis(axis, first.ndim)
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != first.ndim or a.shape[:axis] != first.shape[:axis] or a.shape[axis + 1:] != first.shape[axis + 1:]:
            raise ValueError(f"arrays[{i}] has shape {a.shape}, which does not match arrays[0] {first.shape} "
                             f"except on axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = np.empty(shape, np.float32)
    rows = math.prod(first.shape[:axis])
    widths = [a.size // rows if rows else 0 for a in arrays]
    _concat_call(rows, widths, arrays, out, True)
    return out


def split_channels(dy, sizes, axis=-1):
    """The backward of concatenate: dy cut along ``axis`` into pieces of the
    given sizes (which must add up to that axis). Returns a list of arrays."""
    dy = as_float32(dy, "dy")
    axis = _normalize_axis(axis, dy.ndim)
    try:
        sizes = [operator.index(s) for s in sizes]
    except TypeError:
        raise TypeError("sizes must be a sequence of integers") from None
    if not sizes or any(s < 0 for s in sizes) or sum(sizes) != dy.shape[axis]:
        raise ValueError(f"sizes {sizes} must be non-negative and add up to dy.shape[{axis}] = {dy.shape[axis]}")
    rows = math.prod(dy.shape[:axis])
    inner = math.prod(dy.shape[axis + 1:])
    pieces = []
    for s in sizes:
        shape = list(dy.shape)
        shape[axis] = s
        pieces.append(np.empty(shape, np.float32))
    _concat_call(rows, [s * inner for s in sizes], pieces, dy, False)
    return pieces


def _check_rate(rate):
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise TypeError(f"rate must be a number, got {type(rate).__name__}") from None
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate = {rate} must be in [0, 1)")
    return rate


def _check_uint64(value, name):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not 0 <= value < 2 ** 64:
        raise ValueError(f"{name} = {value} must be in [0, 2**64)")
    return value


def dropout(x, rate, seed, offset=0):
    """Inverted dropout: returns (y, mask) with y = x * mask / (1 - rate).

    mask (uint8, x's shape) keeps element i when a 32-bit hash of
    (seed, offset + i) is at or above rate * 2**32: the same seed gives the
    same mask whatever the thread count; ``offset`` continues a stream.
    ``seed=None`` draws a fresh seed from the operating system.
    """
    x = as_float32(x, "x")
    rate = _check_rate(rate)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    seed = _check_uint64(seed, "seed")
    offset = _check_uint64(offset, "offset")
    y = np.empty(x.shape, np.float32)
    mask = np.empty(x.shape, np.uint8)
    cdef uint8_t[::1] mv = mask.reshape(-1)
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(y)
    cdef int64_t n = x.size
    cdef float r = rate
    cdef uint64_t s = seed, o = offset
    cdef cnnc_status status
    with nogil:
        status = cnnc_dropout_forward(n, r, s, o, px, py, &mv[0])
    check_status(status)
    return y, mask


def dropout_backward(dy, mask, rate):
    """Gradient of dropout: dy / (1 - rate) where mask is non-zero, else 0."""
    dy = as_float32(dy, "dy")
    rate = _check_rate(rate)
    if not isinstance(mask, np.ndarray) or mask.dtype not in (np.uint8, np.bool_):
        raise TypeError("mask must be the uint8 (or bool) array returned by dropout")
    if mask.shape != dy.shape:
        raise ValueError(f"mask has shape {mask.shape}, expected the shape of dy {dy.shape}")
    mask = np.ascontiguousarray(mask).view(np.uint8)
    dx = np.empty(dy.shape, np.float32)
    cdef const uint8_t[::1] mv = mask.reshape(-1)
    cdef const float *pdy = in_ptr(dy)
    cdef float *pdx = out_ptr(dx)
    cdef int64_t n = dy.size
    cdef float r = rate
    cdef cnnc_status status
    with nogil:
        status = cnnc_dropout_backward(n, r, pdy, &mv[0], pdx)
    check_status(status)
    return dx
