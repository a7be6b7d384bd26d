# cython: language_level=3, boundscheck=False
"""Batch normalization over the last (channel) axis (src/include/cnnc/norm.h).

Statistics are taken over every axis but the last. Training normalizes with
the batch mean and biased variance and updates the running averages by the
Keras rule ``moving = moving * momentum + batch * (1 - momentum)``, folding
in the biased batch variance as Keras does (``unbiased_moving_var=True``
folds ``var * n / (n - 1)`` as PyTorch does; PyTorch's momentum m is
Keras's 1 - m). Results do not depend on the thread count.
"""
import numpy as np
from libc.stdint cimport int64_t
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32, check_out

cdef extern from "cnnc.h" nogil:
    int CNNC_BN_UNBIASED_MOVING_VAR
    int CNNC_BN_RELU
    cnnc_status cnnc_batch_norm_train_forward(int64_t rows, int64_t c, const float *x, const float *gamma,
                                              const float *beta, float momentum, float epsilon, int flags,
                                              float *moving_mean, float *moving_var, float *y,
                                              float *mean, float *inv_std)
    cnnc_status cnnc_batch_norm_inference(int64_t rows, int64_t c, const float *x, const float *gamma,
                                          const float *beta, const float *moving_mean,
                                          const float *moving_var, float epsilon, int flags, float *y)
    cnnc_status cnnc_batch_norm_backward(int64_t rows, int64_t c, const float *x, const float *dy,
                                         const float *relu_y, const float *gamma, const float *mean, const float *inv_std,
                                         float *dx, float *dgamma, float *dbeta)

__all__ = ["batch_norm_train", "batch_norm_inference", "batch_norm_backward"]


def _channels(x, name="x"):
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least one axis")
    return x.size // x.shape[x.ndim - 1], x.shape[x.ndim - 1]


def _vector(v, c, name, optional=False):
    if v is None:
        if optional:
            return None
        raise ValueError(f"{name} is required")
    v = as_float32(v, name)
    if v.shape != (c,):
        raise ValueError(f"{name} has shape {v.shape}, expected ({c},) (the channels of x)")
    return v


def _state(v, c, name):
    """A running average updated in place: a writable real ndarray of c
    elements. Returns the float32 contiguous array the C code updates (v
    itself when it already is one; otherwise a copy, written back after)."""
    if v is None:
        return None
    if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point numpy.ndarray updated in place, "
                        f"got {type(v).__name__ if not isinstance(v, np.ndarray) else v.dtype}")
    if v.size != c or v.ndim != 1:
        raise ValueError(f"{name} has shape {v.shape}, expected ({c},) (the channels of x)")
    if not v.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if v.dtype == np.float32 and v.flags.c_contiguous:
        return v
    return np.ascontiguousarray(v, dtype=np.float32)


def _float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None


def _activation_flag(activation):
    if activation is None or activation == "linear":
        return 0
    if activation == "relu":
        return CNNC_BN_RELU
    raise ValueError(f"activation must be None or 'relu', got {activation!r}")


def _check_epsilon(epsilon):
    epsilon = _float(epsilon, "epsilon")
    if not 0.0 < epsilon < float("inf"):
        raise ValueError(f"epsilon = {epsilon} must be > 0")
    return epsilon


def batch_norm_train(x, gamma, beta, moving_mean, moving_var, momentum=0.99, epsilon=1e-3,
                     unbiased_moving_var=False, activation=None):
    """Training-mode batch normalization of x (..., C).

    ``activation="relu"`` applies max(y, 0) in the same pass (then give y
    to batch_norm_backward as ``relu_output``).

    Returns (y, mean, inv_std) with inv_std = 1 / sqrt(var + epsilon), and
    updates moving_mean / moving_var ((C,) float arrays, or None to skip)
    in place. gamma / beta may be None (scale 1 / offset 0).
    """
    x = as_float32(x, "x")
    rows, c = _channels(x)
    gamma = _vector(gamma, c, "gamma", optional=True)
    beta = _vector(beta, c, "beta", optional=True)
    mm = _state(moving_mean, c, "moving_mean")
    mv = _state(moving_var, c, "moving_var")
    momentum = _float(momentum, "momentum")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum = {momentum} must be in [0, 1]")
    epsilon = _check_epsilon(epsilon)
    y = np.empty(x.shape, np.float32)
    mean = np.empty(c, np.float32)
    inv_std = np.empty(c, np.float32)
    cdef const float *px = in_ptr(x)
    cdef const float *pg = in_ptr(gamma)
    cdef const float *pb = in_ptr(beta)
    cdef float *pmm = out_ptr(mm)
    cdef float *pmv = out_ptr(mv)
    cdef float *py = out_ptr(y)
    cdef float *pm = out_ptr(mean)
    cdef float *ps = out_ptr(inv_std)
    cdef int64_t r = rows, cc = c
    cdef float mom = momentum, eps = epsilon
    cdef int flags = (CNNC_BN_UNBIASED_MOVING_VAR if unbiased_moving_var else 0) | _activation_flag(activation)
    cdef cnnc_status status
    with nogil:
        status = cnnc_batch_norm_train_forward(r, cc, px, pg, pb, mom, eps, flags, pmm, pmv, py, pm, ps)
    check_status(status)
    for state, work in ((moving_mean, mm), (moving_var, mv)):
        if state is not None and work is not state:
            state[...] = work
    return y, mean, inv_std


def batch_norm_inference(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3, activation=None):
    """(x - moving_mean) / sqrt(moving_var + epsilon) * gamma + beta over the
    last axis; ``activation="relu"`` fuses a ReLU."""
    x = as_float32(x, "x")
    rows, c = _channels(x)
    gamma = _vector(gamma, c, "gamma", optional=True)
    beta = _vector(beta, c, "beta", optional=True)
    moving_mean = _vector(moving_mean, c, "moving_mean")
    moving_var = _vector(moving_var, c, "moving_var")
    epsilon = _check_epsilon(epsilon)
    y = np.empty(x.shape, np.float32)
    cdef const float *px = in_ptr(x)
    cdef const float *pg = in_ptr(gamma)
    cdef const float *pb = in_ptr(beta)
    cdef const float *pmm = in_ptr(moving_mean)
    cdef const float *pmv = in_ptr(moving_var)
    cdef float *py = out_ptr(y)
    cdef int64_t r = rows, cc = c
    cdef float eps = epsilon
    cdef int flags = _activation_flag(activation)
    cdef cnnc_status status
    with nogil:
        status = cnnc_batch_norm_inference(r, cc, px, pg, pb, pmm, pmv, eps, flags, py)
    check_status(status)
    return y


def batch_norm_backward(x, dy, gamma, mean, inv_std, relu_output=None):
    """Gradients of batch_norm_train: returns (dx, dgamma, dbeta).

    mean and inv_std are those returned by the forward pass; gamma may be
    None. After a fused ReLU (activation="relu"), pass its output y as
    relu_output: dy then counts only where y > 0.
    """
    x = as_float32(x, "x")
    dy = as_float32(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy has shape {dy.shape}, expected the shape of x {x.shape}")
    if relu_output is not None:
        relu_output = as_float32(relu_output, "relu_output")
        if relu_output.shape != x.shape:
            raise ValueError(f"relu_output has shape {relu_output.shape}, expected the shape of x {x.shape}")
    rows, c = _channels(x)
    gamma = _vector(gamma, c, "gamma", optional=True)
    mean = _vector(mean, c, "mean")
    inv_std = _vector(inv_std, c, "inv_std")
    dx = np.empty(x.shape, np.float32)
    dgamma = np.empty(c, np.float32)
    dbeta = np.empty(c, np.float32)
    cdef const float *px = in_ptr(x)
    cdef const float *pdy = in_ptr(dy)
    cdef const float *pry = in_ptr(relu_output)
    cdef const float *pg = in_ptr(gamma)
    cdef const float *pm = in_ptr(mean)
    cdef const float *ps = in_ptr(inv_std)
    cdef float *pdx = out_ptr(dx)
    cdef float *pdg = out_ptr(dgamma)
    cdef float *pdb = out_ptr(dbeta)
    cdef int64_t r = rows, cc = c
    cdef cnnc_status status
    with nogil:
        status = cnnc_batch_norm_backward(r, cc, px, pdy, pry, pg, pm, ps, pdx, pdg, pdb)
    check_status(status)
    return dx, dgamma, dbeta
