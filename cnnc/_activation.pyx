# cython: language_level=3, boundscheck=False, wraparound=False
"""Elementwise activations and softmax (forward and backward)."""
from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32, check_out, same_shape

cdef extern from "cnnc.h" nogil:
    cnnc_status cnnc_relu_forward(int64_t n, const float *x, float *y)
    cnnc_status cnnc_relu_backward(int64_t n, const float *x, const float *dy, float *dx)

__all__ = ["relu", "relu_backward"]


def relu(x, out=None):
    """max(x, 0) elementwise. x: any shape; returns float32 of x's shape.

    Non-float32 or non-contiguous x is converted; ``out`` must be float32,
    C-contiguous, of x's shape (it may be x itself for an in-place update).
    """
    x = as_float32(x, "x")
    out = check_out(out, x.shape)
    cdef float[::1] xv = x.reshape(-1)
    cdef float[::1] yv = out.reshape(-1)
    cdef cnnc_status status
    with nogil:
        status = cnnc_relu_forward(xv.shape[0], &xv[0], &yv[0])
    check_status(status)
    return out


def relu_backward(x, dy, out=None):
    """Gradient of relu: dy where x > 0, else 0. x, dy: same shape."""
    x = as_float32(x, "x")
    dy = as_float32(dy, "dy")
    same_shape(x, dy, "x", "dy")
    out = check_out(out, x.shape)
    cdef float[::1] xv = x.reshape(-1)
    cdef float[::1] dyv = dy.reshape(-1)
    cdef float[::1] dxv = out.reshape(-1)
    cdef cnnc_status status
    with nogil:
        status = cnnc_relu_backward(xv.shape[0], &xv[0], &dyv[0], &dxv[0])
    check_status(status)
    return out
