# cython: language_level=3, boundscheck=False, wraparound=False
"""Fused optimizer updates, in place on float32 C-contiguous arrays.

Every update first transforms the gradient, per element and in this order:
``g += l1 * sign(p) + 2 * l2 * p`` (Keras L1/L2 regularizers, part of the
loss); ``g *= grad_scale`` (a clip-by-norm factor, see ``global_norm_sq``);
``g = clip(g, -clipvalue, clipvalue)``; then weight decay, coupled
(``decoupled=False``: ``g += weight_decay * p``, PyTorch's ``weight_decay``)
or decoupled (``decoupled=True``: ``p *= 1 - lr * weight_decay`` before the
step, as AdamW and Keras's ``weight_decay`` of every optimizer).

``torch_style=False`` applies Keras's update rule, ``True`` PyTorch's (see
each function). The hyperparameter defaults are Keras's; PyTorch's differ
(eps 1e-8, RMSprop alpha 0.99, AdamW weight_decay 0.01 vs Keras 0.004).
"""
import math

import numpy as np
from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._arrays import as_float32, check_out, real_scalar

cdef extern from "cnnc.h" nogil:
    ctypedef struct cnnc_optim_common:
        float lr
        float l1
        float l2
        float weight_decay
        int decoupled
        float grad_scale
        float clip_value
        int torch_style
    cnnc_status cnnc_sgd_update(int64_t n, float *param, const float *grad, float *velocity,
                                const cnnc_optim_common *common, float momentum, int nesterov)
    cnnc_status cnnc_adam_update(int64_t n, float *param, const float *grad, float *m, float *v,
                                 float *vhat, int64_t step, const cnnc_optim_common *common,
                                 float beta_1, float beta_2, float epsilon)
    cnnc_status cnnc_rmsprop_update(int64_t n, float *param, const float *grad, float *ms,
                                    float *mom, float *mg, const cnnc_optim_common *common,
                                    float rho, float momentum, float epsilon)
    cnnc_status cnnc_adagrad_update(int64_t n, float *param, const float *grad, float *acc,
                                    const cnnc_optim_common *common, float epsilon)
    cnnc_status cnnc_adadelta_update(int64_t n, float *param, const float *grad, float *acc_grad,
                                     float *acc_delta, const cnnc_optim_common *common, float rho,
                                     float epsilon)
    cnnc_status cnnc_adamax_update(int64_t n, float *param, const float *grad, float *m, float *u,
                                   int64_t step, const cnnc_optim_common *common, float beta_1,
                                   float beta_2, float epsilon)
    cnnc_status cnnc_nadam_update(int64_t n, float *param, const float *grad, float *m, float *v,
                                  int64_t step, double mu_product, const cnnc_optim_common *common,
                                  float beta_1, float beta_2, float epsilon, float momentum_decay)
    cnnc_status cnnc_nadam_mu_product(int64_t step, float beta_1, float momentum_decay,
                                      int64_t from_step, double from_product, double *product)
    cnnc_status cnnc_lion_update(int64_t n, float *param, const float *grad, float *m,
                                 const cnnc_optim_common *common, float beta_1, float beta_2)
    cnnc_status cnnc_ema_update(int64_t n, float *average, const float *param, float momentum)
    cnnc_status cnnc_sum_squares(int64_t n, const float *x, double *out)

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "adadelta_update",
           "adamax_update", "nadam_update", "nadam_mu_product", "lion_update", "ema_update",
           "sum_squares", "global_norm_sq"]


def _param(param):
    """The parameter updated in place: float32, C-contiguous, writable."""
    check_out(param, getattr(param, "shape", None), "param")
    if param.size == 0:
        raise ValueError("param is empty")
    return param


def _state(array, name, param):
    """An optimizer state array: float32, C-contiguous, writable, param's shape."""
    if array is None:
        raise ValueError(f"{name} is required with these options")
    check_out(array, param.shape, name)
    if np.may_share_memory(array, param):
        raise ValueError(f"{name} overlaps param")
    return array


def _grad(grad, param):
    grad = as_float32(grad, "grad")
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape}, expected the shape of param {param.shape}")
    return grad


def _step(step):
    if isinstance(step, float) and not step.is_integer():
        raise ValueError(f"step = {step} must be an integer >= 1")
    return int(step)


def _distinct(*named):
    """State arrays must not overlap one another."""
    for i, (name, a) in enumerate(named):
        for other, b in named[i + 1:]:
            if np.may_share_memory(a, b):
                raise ValueError(f"{name} and {other} overlap")


cdef cnnc_optim_common _common(lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue, torch_style) except *:
    cdef cnnc_optim_common c
    c.lr = real_scalar(lr, "lr")
    c.l1 = real_scalar(l1, "l1")
    c.l2 = real_scalar(l2, "l2")
    c.weight_decay = real_scalar(weight_decay, "weight_decay")
    c.decoupled = 1 if decoupled else 0
    c.grad_scale = real_scalar(grad_scale, "grad_scale")
    if clipvalue is None:
        c.clip_value = 0.0
    else:
        c.clip_value = real_scalar(clipvalue, "clipvalue")
        if not c.clip_value > 0:
            raise ValueError(f"clipvalue = {clipvalue} must be > 0 (or None)")
    c.torch_style = 1 if torch_style else 0
    return c


cdef struct update_args:
    int64_t n
    float *param
    const float *grad
    cnnc_optim_common common


cdef object _prepare(update_args *u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale,
                     clipvalue, torch_style, states=()):
    """What every update checks and passes first: the parameter, the
    gradient, the common hyperparameters and the state arrays ``states``
    (``(name, array)`` pairs every one required, none overlapping another).
    Returns the gradient as the kernel reads it: the caller keeps it alive
    until the kernel has run."""
    _param(param)
    grad = _grad(grad, param)
    u.common = _common(lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue, torch_style)
    for name, array in states:
        _state(array, name, param)
    _distinct(*states)
    u.n = param.size
    u.param = out_ptr(param)
    u.grad = in_ptr(grad)
    return grad


def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False, l1=0.0, l2=0.0,
               weight_decay=0.0, decoupled=False, grad_scale=1.0, clipvalue=None, torch_style=False):
    """One SGD step on ``param`` (any shape), in place.

    Keras rule (default): ``v = momentum * v - lr * g; p += v``, Nesterov
    ``p += momentum * v - lr * g``. PyTorch rule (``torch_style=True``,
    dampening 0): ``b = momentum * b + g; p -= lr * b``, Nesterov
    ``p -= lr * (g + momentum * b)``; the trajectories agree for a constant
    ``lr`` (v = -lr b). ``velocity`` (param's shape, zeros at first) may be
    None when ``momentum`` is 0.
    """
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style)
    cdef float mu = real_scalar(momentum, "momentum")
    if mu > 0:
        _state(velocity, "velocity", param)
    else:
        velocity = None
    cdef int nest = 1 if nesterov else 0
    cdef float *vel = out_ptr(velocity)
    cdef cnnc_status status
    with nogil:
        status = cnnc_sgd_update(u.n, u.param, u.grad, vel, &u.common, mu, nest)
    check_status(status)


def adam_update(param, grad, m, v, step, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                decoupled=False, vhat=None, l1=0.0, l2=0.0, grad_scale=1.0, clipvalue=None,
                torch_style=False):
    """One Adam step (AdamW with ``decoupled=True``; AMSGrad when ``vhat`` is given), in place.

    ``step`` counts updates including this one (1 at the first call).
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2`` (AMSGrad:
    ``vhat = max(vhat, v)`` replaces v below). Keras rule:
    ``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)``;
    PyTorch rule (``torch_style=True``):
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + epsilon)``.
    ``decoupled=False`` with ``weight_decay`` is PyTorch's Adam (L2 added to
    the gradient); ``decoupled=True`` is AdamW (PyTorch) and Keras's
    ``weight_decay`` of Adam/AdamW.
    """
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("m", m), ("v", v)))
    if vhat is not None:
        _state(vhat, "vhat", param)
    cdef int64_t t = _step(step)
    cdef float b1 = real_scalar(beta_1, "beta_1")
    cdef float b2 = real_scalar(beta_2, "beta_2")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float *mp = out_ptr(m)
    cdef float *vp = out_ptr(v)
    cdef float *vh = out_ptr(vhat)
    cdef cnnc_status status
    with nogil:
        status = cnnc_adam_update(u.n, u.param, u.grad, mp, vp, vh, t, &u.common, b1, b2, eps)
    check_status(status)


def rmsprop_update(param, grad, ms, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, mom=None,
                   mg=None, l1=0.0, l2=0.0, weight_decay=0.0, decoupled=False, grad_scale=1.0,
                   clipvalue=None, torch_style=False):
    """One RMSprop step, in place.

    ``ms = rho ms + (1 - rho) g^2``; centered: ``mg = rho mg + (1 - rho) g``
    and ``d = ms - mg^2``, else ``d = ms``. Keras rule:
    ``u = lr g / sqrt(d + epsilon)``, with momentum ``mom = momentum mom + u;
    p -= mom``, else ``p -= u``. PyTorch rule (``torch_style=True``; its
    ``alpha`` is rho): ``u = g / (sqrt(d) + epsilon)``, with momentum
    ``mom = momentum mom + u; p -= lr mom``, else ``p -= lr u``.
    ``mom`` is required when momentum > 0, ``mg`` when centered.
    """
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("ms", ms),))
    cdef float mu = real_scalar(momentum, "momentum")
    if mu > 0:
        _state(mom, "mom", param)
    else:
        mom = None
    if centered:
        _state(mg, "mg", param)
    else:
        mg = None
    cdef float r = real_scalar(rho, "rho")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float *msp = out_ptr(ms)
    cdef float *momp = out_ptr(mom)
    cdef float *mgp = out_ptr(mg)
    cdef cnnc_status status
    with nogil:
        status = cnnc_rmsprop_update(u.n, u.param, u.grad, msp, momp, mgp, &u.common, r, mu, eps)
    check_status(status)


def adagrad_update(param, grad, accumulator, lr, epsilon=1e-7, l1=0.0, l2=0.0, weight_decay=0.0,
                   decoupled=False, grad_scale=1.0, clipvalue=None, torch_style=False):
    """One Adagrad step, in place: ``acc += g^2``, then Keras's rule
    ``p -= lr g / sqrt(acc + epsilon)`` or PyTorch's (``torch_style=True``)
    ``p -= lr g / (sqrt(acc) + epsilon)``. Keras starts the accumulator at
    0.1 (``initial_accumulator_value``), PyTorch at 0 with eps 1e-10;
    PyTorch's ``lr_decay`` is the caller's: pass ``lr / (1 + (t - 1) lr_decay)``.
    """
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("accumulator", accumulator),))
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float *accp = out_ptr(accumulator)
    cdef cnnc_status status
    with nogil:
        status = cnnc_adagrad_update(u.n, u.param, u.grad, accp, &u.common, eps)
    check_status(status)


def adadelta_update(param, grad, acc_grad, acc_delta, lr, rho=0.95, epsilon=1e-7, l1=0.0, l2=0.0,
                    weight_decay=0.0, decoupled=False, grad_scale=1.0, clipvalue=None, torch_style=False):
    """One Adadelta step, in place (Keras's and PyTorch's rule):
    ``acc_grad = rho acc_grad + (1 - rho) g^2``,
    ``delta = sqrt((acc_delta + eps) / (acc_grad + eps)) g``,
    ``acc_delta = rho acc_delta + (1 - rho) delta^2``, ``p -= lr delta``.
    PyTorch's defaults are lr 1, rho 0.9, eps 1e-6; Keras's lr 0.001, rho
    0.95, eps 1e-7. ``torch_style`` changes nothing here (kept for a uniform
    signature)."""
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("acc_grad", acc_grad), ("acc_delta", acc_delta)))
    cdef float r = real_scalar(rho, "rho")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float *ag = out_ptr(acc_grad)
    cdef float *ad = out_ptr(acc_delta)
    cdef cnnc_status status
    with nogil:
        status = cnnc_adadelta_update(u.n, u.param, u.grad, ag, ad, &u.common, r, eps)
    check_status(status)


def adamax_update(param, grad, m, u, step, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, l1=0.0, l2=0.0,
                  weight_decay=0.0, decoupled=False, grad_scale=1.0, clipvalue=None, torch_style=False):
    """One Adamax step, in place; ``step`` counts updates including this one.
    ``m = b1 m + (1 - b1) g``; Keras rule: ``u = max(b2 u, |g|)``,
    ``p -= lr / (1 - b1^t) * m / (u + epsilon)``; PyTorch rule
    (``torch_style=True``): ``u = max(b2 u, |g| + epsilon)``,
    ``p -= lr / (1 - b1^t) * m / u``."""
    cdef update_args a
    grad = _prepare(&a, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("m", m), ("u", u)))
    cdef int64_t t = _step(step)
    cdef float b1 = real_scalar(beta_1, "beta_1")
    cdef float b2 = real_scalar(beta_2, "beta_2")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float *mp = out_ptr(m)
    cdef float *up = out_ptr(u)
    cdef cnnc_status status
    with nogil:
        status = cnnc_adamax_update(a.n, a.param, a.grad, mp, up, t, &a.common, b1, b2, eps)
    check_status(status)


def nadam_mu_product(step, beta_1=0.9, momentum_decay=1.0, from_step=0, from_product=1.0):
    """``from_product`` times the Nadam momentum coefficients
    ``mu_t = beta_1 (1 - 0.5 * 0.96^(t momentum_decay))`` for t in
    (from_step, step], multiplied in double in order, so continuing from an
    earlier result equals starting over; products below 2^-60 become 0."""
    cdef double out = 0.0
    cdef int64_t t = _step(step)
    cdef int64_t t0 = _step(from_step)
    cdef double start = float(from_product)
    cdef float b1 = real_scalar(beta_1, "beta_1")
    cdef float md = real_scalar(momentum_decay, "momentum_decay")
    check_status(cnnc_nadam_mu_product(t, b1, md, t0, start, &out))
    return out


def nadam_update(param, grad, m, v, step, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, momentum_decay=1.0,
                 mu_product=None, l1=0.0, l2=0.0, weight_decay=0.0, decoupled=False, grad_scale=1.0,
                 clipvalue=None, torch_style=False):
    """One Nadam step, in place; ``step`` t counts updates including this one.
    With ``mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay))`` (Keras:
    ``momentum_decay=1``; PyTorch's NAdam: 0.004) and ``mu_product`` the
    product mu_1 ... mu_t (computed from ``step`` when None, see
    ``nadam_mu_product``): ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr (mu_{t+1} m / (1 - mu_product mu_{t+1}) + (1 - mu_t) g / (1 - mu_product))
    / (sqrt(v / (1 - b2^t)) + epsilon)``. Keras and PyTorch apply the same rule;
    ``torch_style`` changes nothing here."""
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("m", m), ("v", v)))
    cdef int64_t t = _step(step)
    cdef float b1 = real_scalar(beta_1, "beta_1")
    cdef float b2 = real_scalar(beta_2, "beta_2")
    cdef float eps = real_scalar(epsilon, "epsilon")
    cdef float md = real_scalar(momentum_decay, "momentum_decay")
    cdef double prod = (nadam_mu_product(max(t, 0), b1, md) if mu_product is None
                        else float(mu_product))
    cdef float *mp = out_ptr(m)
    cdef float *vp = out_ptr(v)
    cdef cnnc_status status
    with nogil:
        status = cnnc_nadam_update(u.n, u.param, u.grad, mp, vp, t, prod, &u.common, b1, b2, eps, md)
    check_status(status)


def lion_update(param, grad, m, lr, beta_1=0.9, beta_2=0.99, l1=0.0, l2=0.0, weight_decay=0.0,
                decoupled=False, grad_scale=1.0, clipvalue=None, torch_style=False):
    """One Lion step, in place (Chen et al. 2023, Keras's rule):
    ``p -= lr sign(b1 m + (1 - b1) g)`` (sign(0) = 0), then
    ``m = b2 m + (1 - b2) g``. The paper's weight decay is decoupled
    (``decoupled=True``)."""
    cdef update_args u
    grad = _prepare(&u, param, grad, lr, l1, l2, weight_decay, decoupled, grad_scale, clipvalue,
                    torch_style, (("m", m),))
    cdef float b1 = real_scalar(beta_1, "beta_1")
    cdef float b2 = real_scalar(beta_2, "beta_2")
    cdef float *mp = out_ptr(m)
    cdef cnnc_status status
    with nogil:
        status = cnnc_lion_update(u.n, u.param, u.grad, mp, &u.common, b1, b2)
    check_status(status)


def ema_update(average, param, momentum):
    """``average = momentum * average + (1 - momentum) * param``, in place
    (the moving average of Keras's ``use_ema``); momentum in [0, 1]."""
    if average is None:
        raise TypeError("average must be a numpy.ndarray, got None")
    check_out(average, getattr(average, "shape", None), "average")
    param = as_float32(param, "param")
    if param.shape != average.shape:
        raise ValueError(f"param has shape {param.shape}, expected the shape of average {average.shape}")
    cdef float mu = real_scalar(momentum, "momentum")
    cdef int64_t n = average.size
    cdef float *a = out_ptr(average)
    cdef const float *p = in_ptr(param)
    cdef cnnc_status status
    with nogil:
        status = cnnc_ema_update(n, a, p, mu)
    check_status(status)


def sum_squares(x):
    """Sum of the squares of x's values (float64), the same on any thread count."""
    x = as_float32(x, "x", allow_empty=True)
    if x.size == 0:
        return 0.0
    cdef double out = 0.0
    cdef int64_t n = x.size
    cdef const float *xp = in_ptr(x)
    cdef cnnc_status status
    with nogil:
        status = cnnc_sum_squares(n, xp, &out)
    check_status(status)
    return out


def global_norm_sq(arrays):
    """Sum of squares over every array of ``arrays``, in order (for global
    clip-by-norm: scale = clipnorm / max(sqrt(result), clipnorm))."""
    total = 0.0
    for a in arrays:
        total += sum_squares(a)
    return total
