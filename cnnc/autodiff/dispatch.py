"""Helpers shared by the traced operations: telling traced operands from
plain ones and recording unary/binary operations."""
import numbers

import numpy as np

from cnnc.autodiff.tensor import Tensor, apply, is_weight, trace_state, unbroadcast, weight_leaf


def node_input(x):
    """The Tensor standing for ``x`` in a trace, or None for a constant."""
    if type(x) is Tensor:
        return x
    if is_weight(x) and trace_state().depth > 0:
        return weight_leaf(x)
    return None


def raw(x):
    """The value of a constant operand: Python numbers stay as they are (so
    ``x * 2`` keeps float32), floating arrays become float32."""
    if type(x) is Tensor or is_weight(x):
        return x.value
    if isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, np.ndarray):
        return x
    array = np.asarray(x)
    if array.dtype.kind == "f" and array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


def any_traced(*xs):
    for x in xs:
        kind = type(x)
        if kind is np.ndarray:
            continue
        if kind is Tensor or (getattr(kind, "_is_cnnc_weight", False)
                              and trace_state().depth > 0):
            return True
    return False


def unary(x, forward, backward):
    """``forward(v) -> y`` on the value; ``backward(v, y, dy) -> dx``."""
    t = node_input(x)
    v = t.value if t is not None else raw(x)
    y = forward(v)
    if t is None:
        return y
    return apply(y, (t,), lambda g: (backward(v, y, g[0]),))


def binary(x1, x2, forward, backward):
    """Broadcasting binary operation: ``backward(a, b, y, dy, need_a,
    need_b) -> (da, db)`` before summing over the broadcast axes."""
    t1, t2 = node_input(x1), node_input(x2)
    a = t1.value if t1 is not None else raw(x1)
    b = t2.value if t2 is not None else raw(x2)
    y = forward(a, b)
    if t1 is None and t2 is None:
        return y
    shape_a, shape_b = np.shape(a), np.shape(b)

    def grad(g):
        need_a = t1 is not None and t1.requires_grad
        need_b = t2 is not None and t2.requires_grad
        da, db = backward(a, b, y, g[0], need_a, need_b)
        return (unbroadcast(np.asarray(da, np.float32), shape_a) if need_a else None,
                unbroadcast(np.asarray(db, np.float32), shape_b) if need_b else None)

    return apply(y, (t1, t2), grad)


def has_symbolic(args, kwargs):
    """Whether arguments hold symbolic tensors of the functional API."""
    for value in (*args, *kwargs.values()):
        if getattr(type(value), "_is_symbolic_tensor", False):
            return True
        if isinstance(value, (list, tuple)) and any(
                getattr(type(v), "_is_symbolic_tensor", False) for v in value):
            return True
    return False


def float_array(x):
    return np.asarray(x, dtype=np.float32)
