"""Traced NumPy-style operations (Keras's ``keras.ops`` numpy names):
arithmetic with broadcasting, elementwise functions, reductions, matmul,
comparisons and selection. On plain arrays they return arrays."""
import math

import numpy as np

from cnnc import _elementwise, _gemm
from cnnc.autodiff.dispatch import any_traced, binary, node_input, raw, unary
from cnnc.autodiff.tensor import apply, unbroadcast

__all__ = ["add", "subtract", "multiply", "divide", "true_divide", "power", "negative",
           "abs", "absolute", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "square",
           "sin", "cos", "sign", "reciprocal", "maximum", "minimum", "clip", "where", "matmul",
           "dot", "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp",
           "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
           "stop_gradient", "argmax", "argmin", "erf"]


def _plain_same(x1, x2, out):
    """Whether the C kernel (same shapes, float32) serves this call."""
    if out is not None:
        if any_traced(x1, x2):
            raise ValueError("out= is not accepted on traced tensors")
        return True
    return (type(x1) is np.ndarray and type(x2) is np.ndarray and x1.shape == x2.shape
            and x1.dtype == np.float32 and x2.dtype == np.float32)


def add(x1, x2, out=None):
    """``x1 + x2`` with broadcasting (``out=``: same-shape float32 kernel)."""
    if _plain_same(x1, x2, out):
        return _elementwise.add(x1, x2, out=out)
    return binary(x1, x2, np.add, lambda a, b, y, g, na, nb: (g, g))


def subtract(x1, x2):
    return binary(x1, x2, np.subtract, lambda a, b, y, g, na, nb: (g, -g if nb else None))


def multiply(x1, x2, out=None):
    """``x1 * x2`` with broadcasting (``out=``: same-shape float32 kernel)."""
    if _plain_same(x1, x2, out):
        return _elementwise.multiply(x1, x2, out=out)
    return binary(x1, x2, np.multiply,
                  lambda a, b, y, g, na, nb: (g * b if na else None, g * a if nb else None))


def divide(x1, x2):
    return binary(x1, x2, np.true_divide,
                  lambda a, b, y, g, na, nb: (g / b if na else None,
                                              -g * y / b if nb else None))


true_divide = divide


def power(x1, x2):
    def grad(a, b, y, g, na, nb):
        da = g * b * np.power(a, np.subtract(b, 1)) if na else None
        db = None
        if nb:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = np.where(a > 0, g * y * np.log(np.where(a > 0, a, 1)), 0.0)
        return da, db
    return binary(x1, x2, np.power, grad)


def negative(x):
    return unary(x, np.negative, lambda v, y, g: -g)


def abs(x):
    return unary(x, np.abs, lambda v, y, g: g * np.sign(v))


absolute = abs


def sign(x):
    return unary(x, np.sign, lambda v, y, g: np.zeros_like(g))


def exp(x):
    return unary(x, np.exp, lambda v, y, g: g * y)


def expm1(x):
    return unary(x, np.expm1, lambda v, y, g: g * (y + 1))


def log(x):
    return unary(x, np.log, lambda v, y, g: g / v)


def log1p(x):
    return unary(x, np.log1p, lambda v, y, g: g / (1 + v))


def sqrt(x):
    return unary(x, np.sqrt, lambda v, y, g: g * 0.5 / y)


def rsqrt(x):
    return unary(x, lambda v: 1 / np.sqrt(v), lambda v, y, g: g * -0.5 * y / v)


def reciprocal(x):
    return unary(x, np.reciprocal, lambda v, y, g: -g * y * y)


def square(x):
    return unary(x, np.square, lambda v, y, g: g * 2 * v)


def sin(x):
    return unary(x, np.sin, lambda v, y, g: g * np.cos(v))


def cos(x):
    return unary(x, np.cos, lambda v, y, g: -g * np.sin(v))


_vector_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    """The error function, elementwise."""
    return unary(x, lambda v: _vector_erf(v).astype(np.result_type(v, np.float32)),
                 lambda v, y, g: g * (2 / math.sqrt(math.pi)) * np.exp(-np.square(v)))


def maximum(x1, x2):
    """Elementwise maximum; a tie sends the gradient to ``x1``."""
    return binary(x1, x2, np.maximum,
                  lambda a, b, y, g, na, nb: (np.where(a >= b, g, 0) if na else None,
                                              np.where(a >= b, 0, g) if nb else None))


def minimum(x1, x2):
    """Elementwise minimum; a tie sends the gradient to ``x1``."""
    return binary(x1, x2, np.minimum,
                  lambda a, b, y, g, na, nb: (np.where(a <= b, g, 0) if na else None,
                                              np.where(a <= b, 0, g) if nb else None))


def clip(x, x_min, x_max):
    """Values limited to ``[x_min, x_max]``; gradient 1 inside, 0 outside."""
    return unary(x, lambda v: np.clip(v, x_min, x_max),
                 lambda v, y, g: np.where((v >= x_min) & (v <= x_max), g, 0).astype(g.dtype))


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` else ``x2`` (broadcast); with one argument
    the indices of the true elements (as NumPy)."""
    cond = raw(condition)
    if x1 is None and x2 is None:
        return np.nonzero(cond)
    return binary(x1, x2, lambda a, b: np.where(cond, a, b),
                  lambda a, b, y, g, na, nb: (np.where(cond, g, 0) if na else None,
                                              np.where(cond, 0, g) if nb else None))


def _compare(fn):
    def compare(x1, x2):
        return fn(raw(x1), raw(x2))
    compare.__name__ = fn.__name__
    compare.__doc__ = f"Elementwise ``{fn.__name__}`` (boolean, no gradient)."
    return compare


less = _compare(np.less)
less_equal = _compare(np.less_equal)
greater = _compare(np.greater)
greater_equal = _compare(np.greater_equal)
equal = _compare(np.equal)
not_equal = _compare(np.not_equal)


def stop_gradient(x):
    """The value of ``x``, through which no gradient flows."""
    return raw(x) if node_input(x) is None else apply(node_input(x).value, (), None)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(raw(x), axis=axis, keepdims=keepdims)


def argmin(x, axis=None, keepdims=False):
    return np.argmin(raw(x), axis=axis, keepdims=keepdims)


# -- matrix products ------------------------------------------------------------------
def _matmul_values(a, b):
    if a.ndim == 2 and b.ndim == 2 and a.dtype == np.float32 and b.dtype == np.float32:
        return _gemm.matmul(a, b)
    return np.matmul(a, b)


def matmul(x1, x2, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """``x1 @ x2`` as NumPy (batched over leading axes, 1-D operands as
    vectors). On 2-D float32 arrays it runs the C GEMM, which also takes
    ``trans_a``, ``trans_b``, ``out``, ``alpha`` and ``beta`` (see
    ``docs/ops-api.md``)."""
    if type(x1) is np.ndarray and type(x2) is np.ndarray and x1.ndim == 2 and x2.ndim == 2:
        return _gemm.matmul(x1, x2, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha,
                            beta=beta)
    if not any_traced(x1, x2):
        if trans_a or trans_b or out is not None or alpha != 1.0 or beta != 0.0:
            return _gemm.matmul(x1, x2, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha,
                                beta=beta)
        a, b = raw(x1), raw(x2)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim == 2 \
                and b.ndim == 2:
            return _gemm.matmul(a, b)
        return np.matmul(a, b)
    if trans_a or trans_b or out is not None or alpha != 1.0 or beta != 0.0:
        raise ValueError("matmul on traced tensors takes only x1 and x2 (transpose them with "
                         "cnnc.ops.transpose)")
    t1, t2 = node_input(x1), node_input(x2)
    a = t1.value if t1 is not None else np.asarray(raw(x1), np.float32)
    b = t2.value if t2 is not None else np.asarray(raw(x2), np.float32)
    y = _matmul_values(a, b)

    def grad(g):
        g = g[0]
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        da = db = None
        if t1 is not None and t1.requires_grad:
            da = _matmul_values(g2, np.swapaxes(b2, -1, -2))
            da = unbroadcast(da, a2.shape).reshape(a.shape)
        if t2 is not None and t2.requires_grad:
            db = _matmul_values(np.swapaxes(a2, -1, -2), g2)
            db = unbroadcast(db, b2.shape).reshape(b.shape)
        return da, db

    return apply(y, (t1, t2), grad)


def dot(x1, x2):
    """``matmul`` for 1-D and 2-D operands (as ``numpy.dot``)."""
    return matmul(x1, x2)


# -- reductions ------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis)


def _expand(g, shape, axes, keepdims):
    """Broadcastable form of a reduced gradient."""
    if not keepdims:
        for a in sorted(axes):
            g = np.expand_dims(g, a)
    return g


def sum(x, axis=None, keepdims=False):
    def backward(v, y, g):
        axes = _axes(axis, v.ndim)
        return np.broadcast_to(_expand(g, v.shape, axes, keepdims), v.shape).astype(
            g.dtype, copy=True)
    return unary(x, lambda v: np.sum(v, axis=axis, keepdims=keepdims), backward)


def mean(x, axis=None, keepdims=False):
    def backward(v, y, g):
        axes = _axes(axis, v.ndim)
        count = int(np.prod([v.shape[a] for a in axes])) if axes else 1
        return np.broadcast_to(_expand(g, v.shape, axes, keepdims) / count, v.shape).astype(
            np.float32, copy=True)
    return unary(x, lambda v: np.mean(v, axis=axis, keepdims=keepdims, dtype=np.float64)
                 .astype(np.result_type(v.dtype, np.float32)), backward)


def _extreme(fn):
    def reduce(x, axis=None, keepdims=False, initial=None):
        def backward(v, y, g):
            axes = _axes(axis, v.ndim)
            y_full = _expand(y, v.shape, axes, keepdims)
            hits = (v == y_full)
            # Ties share the gradient equally (as TensorFlow does).
            counts = np.sum(hits, axis=axes, keepdims=True)
            return np.where(hits, _expand(g, v.shape, axes, keepdims) / counts, 0).astype(
                np.float32)
        return unary(x, lambda v: fn(v, axis=axis, keepdims=keepdims, initial=initial)
                     if initial is not None else fn(v, axis=axis, keepdims=keepdims), backward)
    reduce.__name__ = fn.__name__
    reduce.__doc__ = (f"``{fn.__name__}`` over ``axis``; the gradient is shared by the "
                      f"elements equal to the result.")
    return reduce


max = _extreme(np.max)
min = _extreme(np.min)
amax = max
amin = min


def var(x, axis=None, keepdims=False):
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, computed stably."""
    def forward(v):
        m = np.max(v, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        out = np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=_axes(axis, v.ndim))

    def backward(v, y, g):
        axes = _axes(axis, v.ndim)
        return (_expand(g, v.shape, axes, keepdims) *
                np.exp(v - _expand(y, v.shape, axes, keepdims))).astype(np.float32)
    return unary(x, forward, backward)
