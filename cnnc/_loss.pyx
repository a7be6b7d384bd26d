# cython: language_level=3, boundscheck=False
"""Losses: per-sample values and the gradient of their sum.

Each function returns ``(loss, grad)``: ``loss`` of shape ``(N,)`` holds
``sample_weight[i] * L_i`` where ``L_i`` is sample i's loss averaged over its
non-batch positions, and ``grad`` (the first argument's shape) is
``grad_scale * d(sum(loss)) / d(first argument)`` (``None`` with
``need_grad=False``). A Keras "sum over batch size" reduction is
``loss.sum() / N`` with ``grad_scale=1/N``.

Keras averages the elementwise losses (binary cross-entropy, MSE, MAE) over
the last axis only and then the batch; averaging over all non-batch axes per
sample gives the same batch mean, and the same per-sample value for 2-D
inputs. Label smoothing follows Keras: categorical targets become
``(1 - s) t + s / C`` (also with integer labels, as PyTorch's
``cross_entropy``), binary targets ``(1 - s) z + s / 2``.
"""
import numpy as np
from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
from cnnc._pointers cimport data_ptr, in_ptr, out_ptr
from cnnc._arrays import as_float32, real_scalar

cdef extern from "cnnc.h" nogil:
    int64_t CNNC_NO_IGNORE
    cnnc_status cnnc_softmax_cross_entropy(int64_t n, int64_t positions, int64_t c, const float *logits,
                                           const int64_t *labels, const float *targets,
                                           float label_smoothing, int64_t ignore_index,
                                           const float *sample_weight, float grad_scale,
                                           float *loss, float *grad)
    cnnc_status cnnc_sigmoid_cross_entropy(int64_t n, int64_t d, const float *logits, const float *targets,
                                           float label_smoothing, const float *sample_weight,
                                           float grad_scale, float *loss, float *grad)
    cnnc_status cnnc_categorical_cross_entropy(int64_t n, int64_t positions, int64_t c, const float *probs,
                                               const int64_t *labels, const float *targets,
                                               float label_smoothing, int64_t ignore_index, float epsilon,
                                               const float *sample_weight, float grad_scale,
                                               float *loss, float *grad)
    cnnc_status cnnc_binary_cross_entropy(int64_t n, int64_t d, const float *probs, const float *targets,
                                          float label_smoothing, float epsilon, const float *sample_weight,
                                          float grad_scale, float *loss, float *grad)
    cnnc_status cnnc_mean_squared_error(int64_t n, int64_t d, const float *pred, const float *target,
                                        const float *sample_weight, float grad_scale, float *loss,
                                        float *grad)
    cnnc_status cnnc_mean_absolute_error(int64_t n, int64_t d, const float *pred, const float *target,
                                         const float *sample_weight, float grad_scale, float *loss,
                                         float *grad)

__all__ = ["softmax_cross_entropy", "sigmoid_cross_entropy", "categorical_cross_entropy",
           "binary_cross_entropy", "mean_squared_error", "mean_absolute_error"]


cdef const int64_t *_lptr(a) except? NULL:
    if a is None:
        return NULL
    return <const int64_t *>data_ptr(a, False)


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = as_float32(sample_weight, "sample_weight")
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n},)")
    return w


def _class_targets(x, labels, name):
    """Integer labels (x's shape without the class axis, or with a trailing 1)
    as int64, or probability targets of x's shape as float32."""
    if x.ndim < 2:
        raise ValueError(f"{name} must have a batch and a class axis, got shape {x.shape}")
    arr = np.asarray(labels)
    lead = x.shape[:-1]
    if arr.shape == lead or (arr.shape == lead + (1,) and x.shape[-1] != 1):
        if arr.dtype.kind in "iu":
            return np.ascontiguousarray(arr.reshape(lead), dtype=np.int64), None
        if arr.dtype.kind == "f":
            as_int = arr.astype(np.int64)
            if not np.array_equal(as_int, arr):
                raise ValueError("labels must hold integer class indices")
            return np.ascontiguousarray(as_int.reshape(lead)), None
        raise TypeError(f"labels must be integer class indices, got dtype {arr.dtype}")
    if arr.shape == x.shape:
        return None, as_float32(arr, "labels")
    raise ValueError(f"labels has shape {arr.shape}, expected {lead} (class indices) or {x.shape} "
                     f"(probabilities) for {name} of shape {x.shape}")


def _paired(x, target, xname, tname):
    """Targets of x's shape (a shape differing only by size-1 axes is reshaped)."""
    if x.ndim < 1:
        raise ValueError(f"{xname} must have a batch axis")
    t = as_float32(target, tname)
    if t.shape != x.shape:
        squeeze = lambda s: tuple(d for d in s[1:] if d != 1)
        if t.ndim >= 1 and t.shape[0] == x.shape[0] and squeeze(t.shape) == squeeze(x.shape):
            t = t.reshape(x.shape)
        else:
            raise ValueError(f"{tname} has shape {t.shape}, expected the shape of {xname} {x.shape}")
    return t


def _categorical(kind, x, labels, name, label_smoothing, epsilon, ignore_index, sample_weight, grad_scale,
                 need_grad):
    x = as_float32(x, name)
    lab, tgt = _class_targets(x, labels, name)
    cdef int64_t n = x.shape[0]
    cdef int64_t c = x.shape[x.ndim - 1]
    cdef int64_t positions = x.size // (n * c) if n * c else 1
    w = _weights(sample_weight, n)
    cdef float ls = real_scalar(label_smoothing, "label_smoothing")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float gs = real_scalar(grad_scale, "grad_scale")
    cdef int64_t ignore = CNNC_NO_IGNORE
    if ignore_index is not None:
        ignore = int(ignore_index)
    loss = np.empty(n, dtype=np.float32)
    grad = np.empty(x.shape, dtype=np.float32) if need_grad else None
    cdef const float *xp = in_ptr(x)
    cdef const int64_t *lp = _lptr(lab)
    cdef const float *tp = in_ptr(tgt)
    cdef const float *wp = in_ptr(w)
    cdef float *outp = out_ptr(loss)
    cdef float *gp = out_ptr(grad)
    cdef cnnc_status status
    cdef int softmax = kind == "softmax"
    with nogil:
        if softmax:
            status = cnnc_softmax_cross_entropy(n, positions, c, xp, lp, tp, ls, ignore, wp, gs, outp, gp)
        else:
            status = cnnc_categorical_cross_entropy(n, positions, c, xp, lp, tp, ls, ignore, eps, wp, gs, outp, gp)
    check_status(status)
    return loss, grad


def softmax_cross_entropy(logits, labels, label_smoothing=0.0, sample_weight=None, grad_scale=1.0,
                          ignore_index=None, need_grad=True):
    """Fused softmax + cross-entropy on logits ``(N, C)`` or ``(N, ..., C)``.

    ``labels``: integer class indices ``(N,)`` / ``(N, ...)`` (int32, int64,
    or integral floats; a trailing axis of 1 is accepted), or one-hot /
    probability targets of the logits' shape. Stable for any finite logits
    (log-sum-exp with the row maximum subtracted). Integer labels must lie in
    ``[0, C)`` or equal ``ignore_index`` (that position then contributes 0).
    The loss of a sample with extra axes is the mean over its positions.
    Returns ``(loss (N,), grad)``; grad is ``softmax * sum(t) - t`` per row,
    scaled as described in the module docstring.
    """
    return _categorical("softmax", logits, labels, "logits", label_smoothing, 0.0, ignore_index, sample_weight,
                        grad_scale, need_grad)


def categorical_cross_entropy(probs, targets, epsilon=1e-7, label_smoothing=0.0, sample_weight=None,
                              grad_scale=1.0, ignore_index=None, need_grad=True):
    """Cross-entropy on probabilities ``(N, ..., C)`` as Keras computes it:
    each row divided by its sum, clipped to ``[epsilon, 1 - epsilon]``, then
    ``-sum(t * log(q))``. ``targets``: probabilities of the same shape or
    integer class indices (sparse categorical cross-entropy; ``ignore_index``
    as in ``softmax_cross_entropy``). The gradient goes through the
    normalization and is zero where the clip is active."""
    return _categorical("probs", probs, targets, "probs", label_smoothing, epsilon, ignore_index, sample_weight,
                        grad_scale, need_grad)


def _elementwise(kind, x, target, xname, tname, label_smoothing, epsilon, sample_weight, grad_scale,
                 need_grad):
    x = as_float32(x, xname)
    t = _paired(x, target, xname, tname)
    cdef int64_t n = x.shape[0]
    cdef int64_t d = x.size // n if n else 1
    w = _weights(sample_weight, n)
    cdef float ls = real_scalar(label_smoothing, "label_smoothing")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float gs = real_scalar(grad_scale, "grad_scale")
    loss = np.empty(n, dtype=np.float32)
    grad = np.empty(x.shape, dtype=np.float32) if need_grad else None
    cdef const float *xp = in_ptr(x)
    cdef const float *tp = in_ptr(t)
    cdef const float *wp = in_ptr(w)
    cdef float *outp = out_ptr(loss)
    cdef float *gp = out_ptr(grad)
    cdef int which = {"sigmoid": 0, "binary": 1, "mse": 2, "mae": 3}[kind]
    cdef cnnc_status status
    with nogil:
        if which == 0:
            status = cnnc_sigmoid_cross_entropy(n, d, xp, tp, ls, wp, gs, outp, gp)
        elif which == 1:
            status = cnnc_binary_cross_entropy(n, d, xp, tp, ls, eps, wp, gs, outp, gp)
        elif which == 2:
            status = cnnc_mean_squared_error(n, d, xp, tp, wp, gs, outp, gp)
        else:
            status = cnnc_mean_absolute_error(n, d, xp, tp, wp, gs, outp, gp)
    check_status(status)
    return loss, grad


def sigmoid_cross_entropy(logits, targets, label_smoothing=0.0, sample_weight=None, grad_scale=1.0,
                          need_grad=True):
    """Binary cross-entropy on logits x with targets z (same shape, (N, ...)):
    per value ``max(x, 0) - x z + log1p(exp(-|x|))`` (stable for any x),
    averaged per sample; gradient ``sigmoid(x) - z``."""
    return _elementwise("sigmoid", logits, targets, "logits", "targets", label_smoothing, 0.0, sample_weight,
                        grad_scale, need_grad)


def binary_cross_entropy(probs, targets, epsilon=1e-7, label_smoothing=0.0, sample_weight=None,
                         grad_scale=1.0, need_grad=True):
    """Binary cross-entropy on probabilities as Keras: p clipped to
    ``[epsilon, 1 - epsilon]``, ``-(z log p + (1 - z) log(1 - p))`` averaged
    per sample; zero gradient where the clip is active."""
    return _elementwise("binary", probs, targets, "probs", "targets", label_smoothing, epsilon, sample_weight,
                        grad_scale, need_grad)


def mean_squared_error(pred, target, sample_weight=None, grad_scale=1.0, need_grad=True):
    """Per sample mean of ``(pred - target)^2`` over the non-batch axes."""
    return _elementwise("mse", pred, target, "pred", "target", 0.0, 0.0, sample_weight, grad_scale, need_grad)


def mean_absolute_error(pred, target, sample_weight=None, grad_scale=1.0, need_grad=True):
    """Per sample mean of ``|pred - target|``; gradient ``sign(pred - target)`` with sign(0) = 0."""
    return _elementwise("mae", pred, target, "pred", "target", 0.0, 0.0, sample_weight, grad_scale, need_grad)
