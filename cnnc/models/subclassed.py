"""Subclassed models: ``class M(cnnc.Model)`` that creates layers in
``__init__`` and writes ``call()``.

Such a model has no graph: each step runs ``call()`` eagerly on traced
tensors (see :mod:`cnnc.autodiff`), so Python control flow works, and the
gradient comes from the tape. It is built on its first batch (or by
``build(input_shape)``): ``call()`` runs once on two samples to learn the
structure and shapes of the inputs and outputs, which ``compile``, the
metrics and ``summary`` use. Its layers are the ones held as attributes.
"""
import numpy as np

from cnnc.autodiff import layer_call
from cnnc.layers.base import SymbolicTensor


def _placeholders(shapes):
    return [SymbolicTensor((None,) + tuple(s)[1:]) for s in shapes]


def _input_structure(model, sample):
    """The inputs as ``call()`` receives them, from arrays or shapes."""
    if isinstance(sample, dict):
        model._call_input_keys = list(sample)
        return [sample[k] for k in model._call_input_keys], True
    model._call_input_keys = None
    if isinstance(sample, (list, tuple)):
        return list(sample), True
    return [sample], False


def build_from_shapes(model, input_shape):
    """Run ``call()`` on zeros of ``input_shape`` (batch 2 when None)."""
    if isinstance(input_shape, (list, tuple)) and all(
            d is None or isinstance(d, (int, np.integer)) for d in input_shape):
        model._call_input_keys = None
        shapes, multi = [tuple(input_shape)], False
    else:
        shapes, multi = _input_structure(model, input_shape)
    if not shapes or not all(isinstance(s, (list, tuple)) for s in shapes):
        raise ValueError(f"model {model.name!r}: build() takes an input shape such as "
                         f"(None, 28, 28, 1), or a list or dict of them, got {input_shape!r}")
    arrays = [np.zeros((2 if s[0] is None else int(s[0]),) + tuple(int(d) for d in s[1:]),
                       np.float32) for s in shapes]
    build_from_arrays(model, arrays, multi)


def build_from_data(model, x):
    arrays, multi = _input_structure(model, x)
    arrays = [np.asarray(a)[:2] for a in arrays]
    build_from_arrays(model, [a if a.dtype.kind != "f" else a.astype(np.float32)
                              for a in arrays], multi)


def build_from_arrays(model, arrays, multi):
    model._single_input = not multi
    model._input_tensors = _placeholders([a.shape for a in arrays])
    model._input_layers = [None] * len(arrays)
    from cnnc.models.functional import Model
    model._building = True
    try:
        if not model.built and type(model).build is not Model.build:
            shapes = [(None,) + a.shape[1:] for a in arrays]
            keys = getattr(model, "_call_input_keys", None)
            model.build(dict(zip(keys, shapes)) if keys is not None else
                        (shapes if multi else shapes[0]))
        model.built = True
        outs = layer_call.traced_forward(model, call_inputs(model, arrays), training=False)
    finally:
        model._building = False
    outs = outs if isinstance(outs, list) else [outs]
    shape = model._last_output_shape
    model._single_output = not isinstance(shape, list)
    model._output_tensors = _placeholders([o.shape for o in outs])
    n = len(outs)
    model._output_slots = list(range(n))
    model._input_slots = []
    model._consumers = [0] * n
    model._producer = {}
    model._compiled_outputs = None
    model._graph_ready = True


def wrap_user_build(cls):
    """A subclass's own ``build(input_shape)`` (creating weights) also
    builds the model, as Keras's ``model.build`` does."""
    user_build = cls.__dict__["build"]

    def build(self, input_shape=None):
        user_build(self, input_shape)
        self.built = True
        if not self._graph_ready and not getattr(self, "_building", False):
            build_from_shapes(self, input_shape)

    build.__doc__ = user_build.__doc__
    build.__wrapped__ = user_build
    cls.build = build


def call_inputs(model, arrays):
    """The list of input arrays in the structure ``call()`` takes."""
    keys = getattr(model, "_call_input_keys", None)
    if keys is not None:
        return dict(zip(keys, arrays))
    return arrays[0] if model._single_input else list(arrays)


def run_forward(model, xs, training):
    outs = layer_call.traced_forward(model, call_inputs(model, xs), training)
    return outs if isinstance(outs, list) else [outs]


def run_backward(model, output_grads):
    dys = [g if g is not None else np.zeros(t.shape, np.float32)
           for g, t in zip(output_grads, model._tape[1])]
    dx = layer_call.traced_backward(model, dys[0] if model._single_output else dys)
    if model._backward_hook is not None:
        # The tape is replayed as a whole: every weight's gradient is final now.
        model._backward_hook(model)
    if dx is None:
        return [None] * len(model._input_tensors)
    return [dx] if model._single_input else list(dx)


def output_shape_rows(model):
    """(name (type), output shape, params) of each tracked layer."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "_last_output_shape", None)
        rows.append((f"{layer.name} ({type(layer).__name__})", shape if shape is not None
                     else "?", layer.count_params() if layer.built else "0 (unbuilt)", ""))
    return rows
