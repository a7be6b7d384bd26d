"""The traced tensor of reverse-mode automatic differentiation.

Inside a traced ``call()`` (a custom layer, a subclassed model, a Lambda or a
custom loss) the values flowing through the model are :class:`Tensor`
objects: a float32 NumPy ``value`` computed eagerly, plus, when a gradient
is wanted, the :class:`Node` that produced it. A node holds its input
tensors and a ``backward`` closure that maps the gradients of its outputs to
the gradients of its inputs; the nodes reachable from a result form the tape
that :func:`cnnc.autodiff.engine.gradients` replays in reverse (nodes are
numbered in creation order, so sorting by number is a topological order).

Weights (:class:`cnnc.layers.Weight`) used by an operation while a trace is
active become leaf tensors whose gradient is summed into the weight's
``grad``; outside a trace, operations on weights take their values.
"""
import itertools
import threading

import numpy as np

from cnnc.autodiff.operators import ArrayValue

_sequence = itertools.count()
_state = threading.local()


class _TraceState:
    __slots__ = ("depth", "record", "training")

    def __init__(self):
        self.depth = 0
        self.record = False
        self.training = False


def trace_state():
    state = getattr(_state, "value", None)
    if state is None:
        state = _state.value = _TraceState()
    return state


class trace:
    """Context of a traced call: ``record`` says whether nodes are kept for a
    backward pass (False at inference), ``training`` is the training flag
    sub-layers inherit when their call does not give one (as Keras)."""

    def __init__(self, record, training):
        self.record = bool(record)
        self.training = bool(training)

    def __enter__(self):
        state = trace_state()
        self._saved = (state.record, state.training)
        state.depth += 1
        state.record, state.training = self.record, self.training
        return state

    def __exit__(self, *exc):
        state = trace_state()
        state.depth -= 1
        state.record, state.training = self._saved
        return False


class Node:
    """One recorded operation: ``backward(output_grads) -> input_grads``.

    output_grads: a list with one array per output (zeros filled in for
    outputs that received none); input_grads: a sequence aligned with
    ``inputs`` (None where an input needs no gradient). ``layer`` is set for
    the call of a built-in layer (one node for its fused backward)."""

    __slots__ = ("inputs", "backward", "seq", "n_outputs", "layer", "snapshot", "output_shapes")

    def __init__(self, inputs, backward, n_outputs=1, layer=None):
        self.inputs = inputs
        self.backward = backward
        self.seq = next(_sequence)
        self.n_outputs = n_outputs
        self.layer = layer
        self.snapshot = None
        self.output_shapes = None


class Tensor(ArrayValue):
    """A traced value. ``value``: the float32 (or integer) ndarray;
    ``requires_grad``: whether a gradient flows to it; ``node``/``index``:
    its producing operation and output position (None for leaves);
    ``weight``: the Weight a leaf stands for."""

    __slots__ = ("value", "requires_grad", "node", "index", "weight")
    # NumPy defers ``ndarray + Tensor`` to Tensor.__radd__ instead of
    # converting the tensor to an array and losing its gradient.
    __array_ufunc__ = None

    def __init__(self, value, requires_grad=False, node=None, index=0, weight=None):
        self.value = value
        self.requires_grad = requires_grad
        self.node = node
        self.index = index
        self.weight = weight

    def __len__(self):
        return len(self.value)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a traced cnnc tensor cannot be converted to a NumPy array inside a "
                        "traced call (its gradient would be lost): use cnnc.ops functions, "
                        "or tensor.numpy() to read the value without gradient")

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        return (f"<cnnc.Tensor shape={self.value.shape} dtype={self.value.dtype} "
                f"requires_grad={self.requires_grad}>")


def is_weight(x):
    return getattr(type(x), "_is_cnnc_weight", False)


def is_traced(x):
    """Whether ``x`` takes part in a trace: a Tensor, or a Weight while a
    trace is active."""
    if type(x) is Tensor:
        return True
    return is_weight(x) and trace_state().depth > 0


def weight_leaf(weight):
    state = trace_state()
    return Tensor(weight.value, requires_grad=state.record and weight.trainable, weight=weight)


def lift(x):
    """A Tensor for ``x`` (a Tensor, a Weight, an array or a number)."""
    if type(x) is Tensor:
        return x
    if is_weight(x):
        return weight_leaf(x)
    return Tensor(constant_value(x))


def constant_value(x):
    """``x`` as an ndarray: floats as float32, integers and booleans kept."""
    if type(x) is Tensor:
        return x.value
    if is_weight(x):
        return x.value
    array = np.asarray(x)
    if array.dtype.kind == "f" and array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


def value_of(x):
    """The value behind a Tensor or Weight; other inputs as they are."""
    if type(x) is Tensor or is_weight(x):
        return x.value
    return x


def apply(value, inputs, backward, layer=None):
    """Wrap the result ``value`` (an array, or a list of arrays for several
    outputs) of an operation on ``inputs`` (Tensors or constants), recording
    ``backward`` when gradients are wanted. Returns a Tensor (or a list)."""
    multi = isinstance(value, (list, tuple))
    values = list(value) if multi else [value]
    wanted = trace_state().record and any(
        type(t) is Tensor and t.requires_grad for t in inputs)
    if not wanted:
        outs = [Tensor(v) for v in values]
    else:
        node = Node(tuple(t if type(t) is Tensor else None for t in inputs), backward,
                    len(values), layer)
        outs = [Tensor(v, True, node, i) for i, v in enumerate(values)]
    return outs if multi else outs[0]


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched so it
    has ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
