"""Inference through the C model runtime (src/include/cnnc/model.h).

``predict`` runs a model by handing its config and weight arrays to the C
runtime once (no file image in between), which folds batch norm into
the convolutions, fuses activations and plans its buffers; the loaded model
is cached on the Python model and rebuilt when the architecture or any
weight changes. The runtime reads the kernels in place (it holds only their
packed forms, folded one layer at a time, and the small arrays), so the
arrays must not change while it uses them: they are frozen, below, and the
loaded model keeps them alive. Weights are not reread on each call: every way of reaching a
weight's array bumps its ``version`` (see :class:`cnnc.layers.base.Weight`),
and the arrays are made read-only while they match the cached C model, so a
write through an array obtained earlier raises rather than going unseen.
When no weight anywhere was handed out since the last call, checking the
cache is one comparison. Models the C runtime cannot run (custom Python
layers, options it does not know) fall back to running the Python layers.
"""
import numpy as np

from cnnc._model import LoadedModel
from cnnc.layers import base as _base


class _Entry:
    __slots__ = ("steps", "weights", "versions", "writes", "loaded")

    def __init__(self, steps, weights, versions, writes, loaded):
        self.steps = steps
        self.weights = weights
        self.versions = versions
        self.writes = writes
        self.loaded = loaded


def _model_weights(model):
    from cnnc.saving import weight_keys
    return [w for _, w in weight_keys(model)]


def loaded_model(model):
    """The C runtime's copy of ``model`` (a LoadedModel), or None when the
    runtime cannot run it."""
    entry = model.__dict__.get("_inference_entry")
    steps = model.__dict__.get("_steps")
    if entry is not None and entry.steps is steps:
        if entry.writes == _base._weight_writes[0]:
            return entry.loaded
        weights = _model_weights(model)
        if len(entry.weights) == len(weights) and all(
                a is b and a.version == v for a, b, v in zip(entry.weights, weights, entry.versions)):
            entry.writes = _base._weight_writes[0]
            return entry.loaded
    else:
        weights = _model_weights(model)
    loaded = None
    try:
        from cnnc.saving import inference_parts
        # The weights go to the loader as they are: no file image in between.
        loaded = LoadedModel.from_tensors(*inference_parts(model), borrow=True)
    except (ValueError, RuntimeError, TypeError, NotImplementedError):
        loaded = None
    versions = [w.freeze() if loaded is not None else w.version for w in weights]
    model.__dict__["_inference_entry"] = _Entry(steps, weights, versions, _base._weight_writes[0],
                                               loaded)
    return loaded


def run(model, xs):
    """Outputs of ``model`` for the input list ``xs`` through the C runtime,
    or None when it cannot run them (the caller then runs the layers)."""
    plan = model._mask_plan() if not model._traced else None
    if plan is not None and plan.consumes:
        return None  # the C runtime knows no masks
    loaded = loaded_model(model)
    if loaded is None or len(xs) != len(loaded.input_shapes):
        return None
    for x, shape in zip(xs, loaded.input_shapes):
        if np.ndim(x) != len(shape) + 1 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
            return None
    return loaded.predict(xs)
