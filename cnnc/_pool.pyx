# cython: language_level=3, boundscheck=False
"""Max and average pooling, 2-D, 1-D and global (src/include/cnnc/pool.h).

Padding is ``"valid"``, ``"same"`` (TensorFlow's rule: out = ceil(in / stride),
the odd padding element at the bottom/right) or explicit
``((top, bottom), (left, right))`` (``(left, right)`` in 1-D), each pad smaller
than the pool. Padding never takes part in a window: max pooling ignores it
and average pooling divides by the number of input elements in the window
(Keras's rule; PyTorch's ``count_include_pad=False``). The max-pooling
gradient goes to the first maximum of each window in row-major order.
"""
import operator

import numpy as np
from libc.stdint cimport int64_t
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32

cdef extern from "cnnc.h" nogil:
    ctypedef struct cnnc_pool2d_params:
        int64_t n, h, w, c
        int64_t pool_h, pool_w
        int64_t stride_h, stride_w
        int64_t pad_top, pad_bottom, pad_left, pad_right
    cnnc_status cnnc_pool_same_padding(int64_t inp, int64_t pool, int64_t stride, int64_t *before,
                                       int64_t *after)
    cnnc_status cnnc_pool2d_output_size(const cnnc_pool2d_params *p, int64_t *oh, int64_t *ow)
    cnnc_status cnnc_max_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y)
    cnnc_status cnnc_max_pool2d_backward(const cnnc_pool2d_params *p, const float *x, const float *dy,
                                         float *dx)
    cnnc_status cnnc_avg_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y)
    cnnc_status cnnc_avg_pool2d_backward(const cnnc_pool2d_params *p, const float *dy, float *dx)
    cnnc_status cnnc_global_avg_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c,
                                               const float *x, float *y)
    cnnc_status cnnc_global_avg_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                const float *dy, float *dx)
    cnnc_status cnnc_global_max_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c,
                                               const float *x, float *y)
    cnnc_status cnnc_global_max_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                const float *x, const float *dy, float *dx)

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "global_avg_pool2d", "global_avg_pool2d_backward", "global_max_pool2d",
           "global_max_pool2d_backward", "max_pool1d", "max_pool1d_backward", "avg_pool1d",
           "avg_pool1d_backward", "global_avg_pool1d", "global_avg_pool1d_backward",
           "global_max_pool1d", "global_max_pool1d_backward"]


def _ints(value, count, name):
    """value as a tuple of `count` positive ints (an int is repeated)."""
    try:
        if isinstance(value, (tuple, list)):
            items = tuple(operator.index(v) for v in value)
        else:
            items = (operator.index(value),) * count
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {count} ints, got {value!r}") from None
    if len(items) != count:
        raise ValueError(f"{name} must have {count} elements, got {value!r}")
    if any(v <= 0 for v in items):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return items


def _same(int64_t size, int64_t pool, int64_t stride):
    cdef int64_t before = 0, after = 0
    check_status(cnnc_pool_same_padding(size, pool, stride, &before, &after))
    return before, after


def _paddings(padding, sizes, pools, strides):
    """((before, after), ...) per spatial axis."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return tuple((0, 0) for _ in sizes)
        if mode == "same":
            return tuple(_same(s, p, t) for s, p, t in zip(sizes, pools, strides))
        raise ValueError(f"padding must be 'valid', 'same' or explicit pads, got {padding!r}")
    try:
        pads = tuple(tuple(operator.index(v) for v in pair) for pair in padding)
        if len(sizes) == 1 and len(pads) == 2 and all(len(p) == 1 for p in pads):
            pads = ((pads[0][0], pads[1][0]),)
    except TypeError:
        try:  # 1-D: (left, right)
            pads = (tuple(operator.index(v) for v in padding),)
        except TypeError:
            raise ValueError(f"padding must be 'valid', 'same' or explicit pads, got {padding!r}") from None
    if len(pads) != len(sizes) or any(len(p) != 2 for p in pads):
        raise ValueError(f"padding {padding!r} must give (before, after) for each of the {len(sizes)} spatial axes")
    for pair, pool in zip(pads, pools):
        if any(v < 0 or v >= pool for v in pair):
            raise ValueError(f"padding {padding!r}: each pad must be >= 0 and smaller than the pool size {pool}")
    return pads


cdef cnnc_pool2d_params _params(shape, pool_size, strides, padding, one_d) except *:
    cdef cnnc_pool2d_params p
    if one_d:
        pools = (1,) + _ints(pool_size, 1, "pool_size")
        steps = (1,) + (pools[1:] if strides is None else _ints(strides, 1, "strides"))
        pads = ((0, 0),) + _paddings(padding, shape[2:3], pools[1:], steps[1:])
    else:
        pools = _ints(pool_size, 2, "pool_size")
        steps = pools if strides is None else _ints(strides, 2, "strides")
        pads = _paddings(padding, shape[1:3], pools, steps)
    p.n, p.h, p.w, p.c = shape
    p.pool_h, p.pool_w = pools
    p.stride_h, p.stride_w = steps
    (p.pad_top, p.pad_bottom), (p.pad_left, p.pad_right) = pads
    padded = (p.h + p.pad_top + p.pad_bottom, p.w + p.pad_left + p.pad_right)
    if pools[0] > padded[0] or pools[1] > padded[1]:
        got = pools[1:] if one_d else pools
        room = padded[1:] if one_d else padded
        raise ValueError(f"pool_size {got} is larger than the padded input {room}")
    return p


def _check_rank(x, rank, name):
    if x.ndim != rank:
        layout = "(N, L, C)" if rank == 3 else "(N, H, W, C)"
        raise ValueError(f"{name} must be {rank}-D {layout}, got shape {x.shape}")


def _input_shape(input_shape, rank):
    try:
        shape = tuple(operator.index(v) for v in input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of {rank} ints, got {input_shape!r}") from None
    if len(shape) != rank or any(v <= 0 for v in shape):
        raise ValueError(f"input_shape must be {rank} positive ints, got {input_shape!r}")
    return shape


def _as4d(shape):
    return shape if len(shape) == 4 else (shape[0], 1, shape[1], shape[2])


cdef _output_shape(cnnc_pool2d_params p, int rank):
    cdef int64_t oh = 0, ow = 0
    check_status(cnnc_pool2d_output_size(&p, &oh, &ow))
    if rank == 4:
        return (p.n, oh, ow, p.c)
    return (p.n, ow, p.c)


def _forward(x, pool_size, strides, padding, rank, bint is_max):
    x = as_float32(x, "x")
    _check_rank(x, rank, "x")
    cdef cnnc_pool2d_params p = _params(_as4d(x.shape), pool_size, strides, padding, rank == 3)
    y = np.empty(_output_shape(p, rank), np.float32)
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(y)
    cdef cnnc_status status
    with nogil:
        if is_max:
            status = cnnc_max_pool2d_forward(&p, px, py)
        else:
            status = cnnc_avg_pool2d_forward(&p, px, py)
    check_status(status)
    return y


def _backward(x, dy, input_shape, pool_size, strides, padding, rank, bint is_max):
    dy = as_float32(dy, "dy")
    if is_max:
        x = as_float32(x, "x")
        _check_rank(x, rank, "x")
        input_shape = x.shape
    else:
        input_shape = _input_shape(input_shape, rank)
    cdef cnnc_pool2d_params p = _params(_as4d(input_shape), pool_size, strides, padding, rank == 3)
    expected = _output_shape(p, rank)
    if dy.shape != expected:
        raise ValueError(f"dy has shape {dy.shape}, expected the pooling output shape {expected}")
    dx = np.empty(input_shape, np.float32)
    cdef const float *px = in_ptr(x) if is_max else NULL
    cdef const float *pdy = in_ptr(dy)
    cdef float *pdx = out_ptr(dx)
    cdef cnnc_status status
    with nogil:
        if is_max:
            status = cnnc_max_pool2d_backward(&p, px, pdy, pdx)
        else:
            status = cnnc_avg_pool2d_backward(&p, pdy, pdx)
    check_status(status)
    return dx


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Max pooling of x (N, H, W, C) -> (N, OH, OW, C); strides default to pool_size."""
    return _forward(x, pool_size, strides, padding, 4, True)


def max_pool2d_backward(x, dy, pool_size=(2, 2), strides=None, padding="valid"):
    """Gradient of max_pool2d: dy (N, OH, OW, C) -> dx (N, H, W, C), each dy to
    the first maximum of its window (accumulated where windows overlap)."""
    return _backward(x, dy, None, pool_size, strides, padding, 4, True)


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Average pooling of x (N, H, W, C), padding excluded from the mean."""
    return _forward(x, pool_size, strides, padding, 4, False)


def avg_pool2d_backward(dy, input_shape, pool_size=(2, 2), strides=None, padding="valid"):
    """Gradient of avg_pool2d: dy (N, OH, OW, C) -> dx of input_shape (N, H, W, C)."""
    return _backward(None, dy, input_shape, pool_size, strides, padding, 4, False)


def max_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling of x (N, L, C) -> (N, OL, C)."""
    return _forward(x, pool_size, strides, padding, 3, True)


def max_pool1d_backward(x, dy, pool_size=2, strides=None, padding="valid"):
    return _backward(x, dy, None, pool_size, strides, padding, 3, True)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling of x (N, L, C) -> (N, OL, C), padding excluded."""
    return _forward(x, pool_size, strides, padding, 3, False)


def avg_pool1d_backward(dy, input_shape, pool_size=2, strides=None, padding="valid"):
    return _backward(None, dy, input_shape, pool_size, strides, padding, 3, False)


def _global(x, dy, input_shape, rank, int op):
    """op: 0 avg, 1 avg backward, 2 max, 3 max backward."""
    if op == 1:
        shape = _input_shape(input_shape, rank)
    else:
        x = as_float32(x, "x")
        _check_rank(x, rank, "x")
        shape = x.shape
    cdef int64_t n = shape[0], h = 1 if rank == 3 else shape[1], w = shape[-2], c = shape[-1]
    if op in (1, 3):
        dy = as_float32(dy, "dy")
        if dy.shape != (n, c):
            raise ValueError(f"dy has shape {dy.shape}, expected {(n, c)}")
        out = np.empty(shape, np.float32)
    else:
        out = np.empty((n, c), np.float32)
    cdef const float *px = in_ptr(x) if op != 1 else NULL
    cdef const float *pdy = in_ptr(dy) if op in (1, 3) else NULL
    cdef float *po = out_ptr(out)
    cdef cnnc_status status
    with nogil:
        if op == 0:
            status = cnnc_global_avg_pool2d_forward(n, h, w, c, px, po)
        elif op == 1:
            status = cnnc_global_avg_pool2d_backward(n, h, w, c, pdy, po)
        elif op == 2:
            status = cnnc_global_max_pool2d_forward(n, h, w, c, px, po)
        else:
            status = cnnc_global_max_pool2d_backward(n, h, w, c, px, pdy, po)
    check_status(status)
    return out


def global_avg_pool2d(x):
    """Mean over H and W: x (N, H, W, C) -> (N, C), accumulated in double."""
    return _global(x, None, None, 4, 0)


def global_avg_pool2d_backward(dy, input_shape):
    """dy (N, C) -> dx of input_shape, dy / (H * W) everywhere."""
    return _global(None, dy, input_shape, 4, 1)


def global_max_pool2d(x):
    """Maximum over H and W: x (N, H, W, C) -> (N, C)."""
    return _global(x, None, None, 4, 2)


def global_max_pool2d_backward(x, dy):
    """dy (N, C) to the first maximum (row-major) of each image and channel."""
    return _global(x, dy, None, 4, 3)


def global_avg_pool1d(x):
    """Mean over L: x (N, L, C) -> (N, C)."""
    return _global(x, None, None, 3, 0)


def global_avg_pool1d_backward(dy, input_shape):
    return _global(None, dy, input_shape, 3, 1)


def global_max_pool1d(x):
    """Maximum over L: x (N, L, C) -> (N, C)."""
    return _global(x, None, None, 3, 2)


def global_max_pool1d_backward(x, dy):
    return _global(x, dy, None, 3, 3)
