# cython: language_level=3, boundscheck=False, wraparound=False
"""Elementwise activations and softmax (forward and backward).

Every function accepts any real numeric array (non-float32 or
non-contiguous input is converted to a C-contiguous float32 copy) and
returns a new float32 array of the same shape, or writes into ``out`` when
given (float32, C-contiguous, same shape; it may be the input itself).
Backward functions take the forward input ``x`` (softmax: the forward output
``y``) and the upstream gradient ``dy`` and return the gradient with respect
to the input.
"""
import numpy as np

from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32, check_out, same_shape

cdef extern from "cnnc.h" nogil:
    ctypedef enum cnnc_activation:
        CNNC_ACTIVATION_RELU
        CNNC_ACTIVATION_LEAKY_RELU
        CNNC_ACTIVATION_ELU
        CNNC_ACTIVATION_SIGMOID
        CNNC_ACTIVATION_TANH
        CNNC_ACTIVATION_GELU
        CNNC_ACTIVATION_GELU_TANH
        CNNC_ACTIVATION_SILU
        CNNC_ACTIVATION_SOFTPLUS
        CNNC_ACTIVATION_RELU6
        CNNC_ACTIVATION_HARD_SIGMOID
        CNNC_ACTIVATION_HARD_SWISH
        CNNC_ACTIVATION_SELU
    cnnc_status cnnc_activation_forward(cnnc_activation kind, int64_t n, const float *x, float *y,
                                        float alpha)
    cnnc_status cnnc_activation_backward(cnnc_activation kind, int64_t n, const float *x,
                                         const float *dy, float *dx, float alpha)
    cnnc_status cnnc_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y)
    cnnc_status cnnc_softmax_backward(int64_t rows, int64_t cols, const float *y, const float *dy,
                                      float *dx)
    cnnc_status cnnc_log_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y)
    cnnc_status cnnc_log_softmax_backward(int64_t rows, int64_t cols, const float *y,
                                          const float *dy, float *dx)

__all__ = [
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu", "elu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "gelu", "gelu_backward",
    "silu", "silu_backward", "softplus", "softplus_backward", "relu6", "relu6_backward",
    "hard_sigmoid", "hard_sigmoid_backward", "hard_swish", "hard_swish_backward",
    "selu", "selu_backward",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
]


def _scalar(value, name):
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if result != result:
        raise ValueError(f"{name} must not be NaN")
    return result


cdef object _forward(cnnc_activation kind, x, out, float alpha=0.0):
    x = as_float32(x, "x")
    out = check_out(out, x.shape)
    cdef const float[::1] xv = x.reshape(-1)
    cdef float[::1] yv = out.reshape(-1)
    cdef cnnc_status status
    with nogil:
        status = cnnc_activation_forward(kind, xv.shape[0], &xv[0], &yv[0], alpha)
    check_status(status)
    return out


cdef object _backward(cnnc_activation kind, x, dy, out, float alpha=0.0):
    x = as_float32(x, "x")
    dy = as_float32(dy, "dy")
    same_shape(x, dy, "x", "dy")
    out = check_out(out, x.shape)
    cdef const float[::1] xv = x.reshape(-1)
    cdef const float[::1] dyv = dy.reshape(-1)
    cdef float[::1] dxv = out.reshape(-1)
    cdef cnnc_status status
    with nogil:
        status = cnnc_activation_backward(kind, xv.shape[0], &xv[0], &dyv[0], &dxv[0], alpha)
    check_status(status)
    return out


def relu(x, out=None):
    """max(x, 0) elementwise (NaN stays NaN)."""
    return _forward(CNNC_ACTIVATION_RELU, x, out)


def relu_backward(x, dy, out=None):
    """Gradient of relu: dy where x > 0, else 0. x, dy: same shape."""
    return _backward(CNNC_ACTIVATION_RELU, x, dy, out)


def leaky_relu(x, alpha=0.3, out=None):
    """x where x > 0, else alpha * x (Keras default alpha = 0.3)."""
    return _forward(CNNC_ACTIVATION_LEAKY_RELU, x, out, _scalar(alpha, "alpha"))


def leaky_relu_backward(x, dy, alpha=0.3, out=None):
    """Gradient of leaky_relu: dy where x > 0, else alpha * dy."""
    return _backward(CNNC_ACTIVATION_LEAKY_RELU, x, dy, out, _scalar(alpha, "alpha"))


def elu(x, alpha=1.0, out=None):
    """x where x > 0, else alpha * (exp(x) - 1), accurate near 0 (expm1)."""
    return _forward(CNNC_ACTIVATION_ELU, x, out, _scalar(alpha, "alpha"))


def elu_backward(x, dy, alpha=1.0, out=None):
    """Gradient of elu: dy where x > 0, else dy * alpha * exp(x)."""
    return _backward(CNNC_ACTIVATION_ELU, x, dy, out, _scalar(alpha, "alpha"))


def sigmoid(x, out=None):
    """1 / (1 + exp(-x)), without overflow for any input (sigmoid(-inf) = 0)."""
    return _forward(CNNC_ACTIVATION_SIGMOID, x, out)


def sigmoid_backward(x, dy, out=None):
    """Gradient of sigmoid from its input x: dy * s * (1 - s)."""
    return _backward(CNNC_ACTIVATION_SIGMOID, x, dy, out)


def tanh(x, out=None):
    """Hyperbolic tangent (tanh(+-inf) = +-1)."""
    return _forward(CNNC_ACTIVATION_TANH, x, out)


def tanh_backward(x, dy, out=None):
    """Gradient of tanh from its input x: dy * (1 - tanh(x)^2)."""
    return _backward(CNNC_ACTIVATION_TANH, x, dy, out)


def gelu(x, approximate=False, out=None):
    """x * Phi(x), Phi the standard normal CDF (exact erf form), or with
    ``approximate=True`` the tanh form x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))
    (PyTorch's approximate="tanh"). gelu(-inf) = 0, gelu(inf) = inf."""
    kind = CNNC_ACTIVATION_GELU_TANH if _approximate(approximate) else CNNC_ACTIVATION_GELU
    return _forward(kind, x, out)


def gelu_backward(x, dy, approximate=False, out=None):
    """Gradient of gelu (same ``approximate`` as the forward call)."""
    kind = CNNC_ACTIVATION_GELU_TANH if _approximate(approximate) else CNNC_ACTIVATION_GELU
    return _backward(kind, x, dy, out)


def silu(x, out=None):
    """x * sigmoid(x) (swish); silu(-inf) = 0."""
    return _forward(CNNC_ACTIVATION_SILU, x, out)


def silu_backward(x, dy, out=None):
    """Gradient of silu: dy * (s + x s (1 - s)), s = sigmoid(x)."""
    return _backward(CNNC_ACTIVATION_SILU, x, dy, out)


def softplus(x, out=None):
    """log(1 + exp(x)), without overflow (softplus(x) = x for large x)."""
    return _forward(CNNC_ACTIVATION_SOFTPLUS, x, out)


def softplus_backward(x, dy, out=None):
    """Gradient of softplus: dy * sigmoid(x)."""
    return _backward(CNNC_ACTIVATION_SOFTPLUS, x, dy, out)


def relu6(x, out=None):
    """min(max(x, 0), 6)."""
    return _forward(CNNC_ACTIVATION_RELU6, x, out)


def relu6_backward(x, dy, out=None):
    """Gradient of relu6: dy where 0 < x < 6, else 0."""
    return _backward(CNNC_ACTIVATION_RELU6, x, dy, out)


def hard_sigmoid(x, out=None):
    """relu6(x + 3) / 6 (Keras 3 and PyTorch's hardsigmoid)."""
    return _forward(CNNC_ACTIVATION_HARD_SIGMOID, x, out)


def hard_sigmoid_backward(x, dy, out=None):
    """Gradient of hard_sigmoid: dy / 6 where -3 < x < 3, else 0."""
    return _backward(CNNC_ACTIVATION_HARD_SIGMOID, x, dy, out)


def hard_swish(x, out=None):
    """x * relu6(x + 3) / 6 (hard_silu)."""
    return _forward(CNNC_ACTIVATION_HARD_SWISH, x, out)


def hard_swish_backward(x, dy, out=None):
    """Gradient of hard_swish: 0 up to -3, dy (x/3 + 1/2) between, dy from 3 on (as PyTorch)."""
    return _backward(CNNC_ACTIVATION_HARD_SWISH, x, dy, out)


def selu(x, out=None):
    """scale * elu(x, alpha) with the self-normalizing constants
    alpha = 1.67326324, scale = 1.05070099."""
    return _forward(CNNC_ACTIVATION_SELU, x, out)


def selu_backward(x, dy, out=None):
    """Gradient of selu."""
    return _backward(CNNC_ACTIVATION_SELU, x, dy, out)


def _approximate(value):
    # Accept PyTorch's spelling too: approximate="tanh" / "none".
    if isinstance(value, str):
        if value not in ("tanh", "none"):
            raise ValueError(f"approximate must be a bool, 'tanh' or 'none', got {value!r}")
        return value == "tanh"
    return bool(value)


def _rows_view(x, axis, name):
    """x with ``axis`` moved last and made C-contiguous, and the inverse map."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for {name} with {x.ndim} dimensions")
    axis = int(axis) % x.ndim
    if axis == x.ndim - 1:
        return x, axis
    return np.ascontiguousarray(np.moveaxis(x, axis, -1)), axis


def _rows_result(result, axis, moved, out, shape):
    """Undo _rows_view on a result: move the last axis back into place and
    write it into ``out`` when given."""
    if not moved:
        return result
    result = np.moveaxis(result, -1, axis)
    if out is None:
        return np.ascontiguousarray(result)
    out = check_out(out, shape)
    out[...] = result
    return out


cdef object _softmax(bint log, x, axis, out):
    x = as_float32(x, "x")
    rows_x, axis = _rows_view(x, axis, "x")
    moved = axis != x.ndim - 1
    result = check_out(None if moved else out, rows_x.shape)
    cdef int64_t cols = rows_x.shape[rows_x.ndim - 1]
    cdef int64_t rows = rows_x.size // cols
    cdef const float[::1] xv = rows_x.reshape(-1)
    cdef float[::1] yv = result.reshape(-1)
    cdef cnnc_status status
    with nogil:
        if log:
            status = cnnc_log_softmax_forward(rows, cols, &xv[0], &yv[0])
        else:
            status = cnnc_softmax_forward(rows, cols, &xv[0], &yv[0])
    check_status(status)
    return _rows_result(result, axis, moved, out, x.shape)


cdef object _softmax_backward(bint log, y, dy, axis, out):
    y = as_float32(y, "y")
    dy = as_float32(dy, "dy")
    same_shape(y, dy, "y", "dy")
    rows_y, axis = _rows_view(y, axis, "y")
    moved = axis != y.ndim - 1
    rows_dy = np.ascontiguousarray(np.moveaxis(dy, axis, -1)) if moved else dy
    result = check_out(None if moved else out, rows_y.shape)
    cdef int64_t cols = rows_y.shape[rows_y.ndim - 1]
    cdef int64_t rows = rows_y.size // cols
    cdef const float[::1] yv = rows_y.reshape(-1)
    cdef const float[::1] dyv = rows_dy.reshape(-1)
    cdef float[::1] dxv = result.reshape(-1)
    cdef cnnc_status status
    with nogil:
        if log:
            status = cnnc_log_softmax_backward(rows, cols, &yv[0], &dyv[0], &dxv[0])
        else:
            status = cnnc_softmax_backward(rows, cols, &yv[0], &dyv[0], &dxv[0])
    check_status(status)
    return _rows_result(result, axis, moved, out, y.shape)


def softmax(x, axis=-1, out=None):
    """exp(x) / sum(exp(x)) along ``axis`` (default: last), computed with the
    maximum subtracted so nothing overflows; -inf entries get probability 0."""
    return _softmax(False, x, axis, out)


def softmax_backward(y, dy, axis=-1, out=None):
    """Gradient of softmax from its OUTPUT y: y * (dy - sum(dy * y, axis))."""
    return _softmax_backward(False, y, dy, axis, out)


def log_softmax(x, axis=-1, out=None):
    """x - logsumexp(x) along ``axis`` (default: last), numerically stable."""
    return _softmax(True, x, axis, out)


def log_softmax_backward(y, dy, axis=-1, out=None):
    """Gradient of log_softmax from its OUTPUT y: dy - exp(y) * sum(dy, axis)."""
    return _softmax_backward(True, y, dy, axis, out)
