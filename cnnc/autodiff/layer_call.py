"""Layers on traced tensors.

Two kinds of layers meet in a trace:

* built-in layers (``forward``/``backward`` written by hand, fused in C):
  called on Tensors, each call runs ``forward`` on the values and records
  ONE node whose backward is the layer's own ``backward``;
* traced layers (a subclass that writes ``call()``, e.g. a custom layer, a
  ``Lambda`` or a subclassed model): called on Tensors inside a trace,
  ``call()`` runs inline and its operations join the same tape; called on
  arrays (or from a functional model's graph), ``forward`` runs ``call()``
  on fresh leaf tensors and keeps the tape, and ``backward`` replays it.
"""
import inspect

import numpy as np

from cnnc._inference_mode import behaves_as_training, inference_behaviour
from cnnc.autodiff.engine import WeightGrads, gradients
from cnnc.autodiff.tensor import Node, Tensor, lift, trace, trace_state


def as_float_input(value):
    if value.dtype != np.float32 or not value.flags.c_contiguous:
        value = np.ascontiguousarray(value, dtype=np.float32)
    return value


def _shapes(values, multi):
    shapes = [(None,) + tuple(v.shape[1:]) for v in values]
    return shapes if multi else shapes[0]


def call_builtin(layer, inputs, training):
    """A built-in layer applied to Tensors (inside a trace): one node."""
    multi = isinstance(inputs, (list, tuple))
    tensors = [lift(t) for t in inputs] if multi else [lift(inputs)]
    values = [as_float_input(t.value) for t in tensors]
    layer._ensure_built(_shapes(values, multi))
    state = trace_state()
    if state.record and not training:
        # Called with training=False in a recorded (training) trace: the
        # layer keeps what its backward needs but behaves as in inference.
        with inference_behaviour():
            y = layer.forward(values if multi else values[0], training=True)
    else:
        y = layer.forward(values if multi else values[0], training=training)
    multi_out = isinstance(y, (list, tuple))
    outs = list(y) if multi_out else [y]
    layer._last_output_shape = _shapes(outs, multi_out)
    if not (state.record and (any(t.requires_grad for t in tensors) or layer.trainable_weights)):
        result = [Tensor(v) for v in outs]
    else:
        node = Node(tuple(tensors), None, len(outs), layer)
        node.output_shapes = [v.shape for v in outs]
        node.snapshot = layer._save_state()
        layer._tape_owner = node.seq
        result = [Tensor(v, True, node, i) for i, v in enumerate(outs)]
    return result if multi_out else result[0]


def _accepts(function, name):
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def has_parameter(function, name):
    """Whether ``function`` names the parameter ``name`` in its signature."""
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def invoke_call(layer, inputs, training, args, kwargs):
    """``layer.call(inputs, *args, **kwargs)``, passing ``training`` when
    the signature takes it (as Keras)."""
    cls = type(layer)
    takes = cls.__dict__.get("_call_takes_training")
    if takes is None:
        takes = _accepts(layer.call, "training")
        cls._call_takes_training = takes
    if takes and "training" not in kwargs:
        kwargs = dict(kwargs, training=training)
    return layer.call(inputs, *args, **kwargs)


def _flat_outputs(out):
    if isinstance(out, dict):
        return [lift(t) for t in out.values()], "dict"
    if isinstance(out, (list, tuple)):
        return [lift(t) for t in out], "list"
    return [lift(out)], "single"


def call_inline(layer, inputs, training, args, kwargs):
    """A traced layer called on Tensors inside a trace: build it from the
    input shapes when needed, then run ``call()`` on the same tape."""
    if not layer.built:
        multi = isinstance(inputs, (list, tuple))
        values = [lift(t).value for t in inputs] if multi else [lift(inputs).value]
        layer._ensure_built(_shapes(values, multi))
    state = trace_state()
    with trace(state.record, training):
        out = invoke_call(layer, inputs, training, args, kwargs)
    outs, kind = _flat_outputs(out)
    shapes = [(None,) + tuple(t.shape[1:]) for t in outs]
    layer._last_output_shape = shapes if kind != "single" else shapes[0]
    return out


def traced_forward(layer, x, training=False, args=(), kwargs=None):
    """``forward`` of a traced layer on arrays: ``call()`` on leaf tensors.
    With ``training`` the tape is kept for :func:`traced_backward`."""
    keys = list(x) if isinstance(x, dict) else None
    multi = keys is not None or isinstance(x, (list, tuple))
    arrays = [np.asarray(x[k]) for k in keys] if keys is not None else (
        [np.asarray(a) for a in x] if multi else [np.asarray(x)])
    layer._ensure_built(_shapes(arrays, multi) if keys is None else
                        dict(zip(keys, _shapes(arrays, True))))
    wants_dx = bool(training) and layer.need_input_gradient
    leaves = [Tensor(a, wants_dx and a.dtype.kind == "f") for a in arrays]
    if keys is not None:
        structured = dict(zip(keys, leaves))
    else:
        structured = leaves if multi else leaves[0]
    # In an inference_behaviour() context (a call with training=False in a
    # model being trained) the tape is kept but call() sees training=False.
    behaviour = behaves_as_training(training)
    with trace(bool(training), behaviour):
        out = invoke_call(layer, structured, behaviour, args, kwargs or {})
    outs, kind = _flat_outputs(out)
    layer._tape = (leaves, outs, kind == "single", not multi) if training else None
    values = [as_float_input(np.asarray(t.value)) for t in outs]
    shapes = [(None,) + tuple(v.shape[1:]) for v in values]
    layer._last_output_shape = shapes if kind != "single" else shapes[0]
    return values[0] if kind == "single" else values


def traced_backward(layer, dy):
    """``backward`` of a traced layer: replay the tape of the last
    ``forward(x, training=True)``; weight gradients are overwritten (zeros
    for trainable weights the output does not depend on)."""
    tape = getattr(layer, "_tape", None)
    if tape is None:
        raise RuntimeError(f"layer {layer.name!r}: backward needs a forward(x, training=True) "
                           f"first")
    leaves, outs, single, single_in = tape
    dys = [dy] if single else list(dy)
    if len(dys) != len(outs):
        raise ValueError(f"layer {layer.name!r} has {len(outs)} outputs, got {len(dys)} "
                         f"gradients")
    dxs, weight_grads = gradients(outs, dys, leaves, WeightGrads())
    store_weight_grads(weight_grads, layer.trainable_weights)
    if not layer.need_input_gradient:
        return None
    dxs = [np.zeros(leaf.shape, np.float32) if d is None else as_float_input(d)
           for leaf, d in zip(leaves, dxs)]
    return dxs[0] if single_in else dxs


def store_weight_grads(weight_grads, trainable):
    """Write the summed gradients; zero those of trainable weights that
    received none (the optimizer still visits them)."""
    touched = weight_grads.store()
    for w in trainable:
        if id(w) not in touched:
            w.grad.fill(0.0)
