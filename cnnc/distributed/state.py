"""Metric states summed over the ranks, and the state a stand-in step
saves and restores.

A metric's reducible state is the attributes its class lists in
``state_names`` (sums and counts, e.g. ``Mean``: total and count), which
add up over ranks. A metric without them is reduced by the mean of the
ranks' results (exact when every rank saw as many samples).
"""
import contextlib

import numpy as np


def all_layers(model):
    """Every layer of a model, nested models opened."""
    out, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        out.append(layer)
        if hasattr(layer, "layers"):
            stack = list(layer.layers) + stack
    return out


def _metrics(model):
    outputs = model._compiled_outputs or []
    found = [model._loss_tracker]
    for out in outputs:
        found.append(out.loss_tracker)
        found.extend(metric for metric, _ in out.metrics)
    return found


def _state(metric):
    names = getattr(metric, "state_names", ())
    return [np.asarray(getattr(metric, name), np.float64).copy() for name in names]


def _set_state(metric, values):
    for name, value in zip(getattr(metric, "state_names", ()), values):
        current = getattr(metric, name)
        setattr(metric, name, value.copy() if isinstance(current, np.ndarray) else float(value))


def snapshot_states(model):
    """What a stand-in step must not change: the metric states and the
    non-trainable weights of per-rank layers (those of synchronized layers,
    updated from the global batch, change on every rank alike)."""
    metrics = [(m, _state(m), None if getattr(m, "state_names", ()) else dict(vars(m)))
               for m in _metrics(model)]
    weights = [(w, w.value.copy()) for layer in all_layers(model)
               if not getattr(layer, "synchronized", False)
               for w in layer.non_trainable_weights]
    return metrics, weights


def restore_states(model, saved):
    metrics, weights = saved
    for metric, state, attributes in metrics:
        if attributes is None:
            _set_state(metric, state)
        else:
            vars(metric).clear()
            vars(metric).update(attributes)
    for weight, value in weights:
        weight.value[...] = value


@contextlib.contextmanager
def reduced_metrics(model, comm):
    """While open, every metric of ``model`` holds its sum over the ranks."""
    metrics = _metrics(model)
    local = [_state(m) for m in metrics]
    pieces = []
    for metric, state in zip(metrics, local):
        if state:
            pieces.extend(s.reshape(-1) for s in state)
        else:
            pieces.append(np.array([float(metric.result())]))
    flat = np.concatenate(pieces) if pieces else np.zeros(0)
    comm.allreduce(flat, "reducing the metrics")
    offset = 0
    patched = []
    for metric, state in zip(metrics, local):
        if state:
            values = []
            for s in state:
                values.append(flat[offset:offset + s.size].reshape(s.shape))
                offset += s.size
            _set_state(metric, values)
        else:
            value = flat[offset] / comm.size
            offset += 1
            metric.result = lambda value=value: value
            patched.append(metric)
    try:
        yield
    finally:
        for metric, state in zip(metrics, local):
            if state:
                _set_state(metric, state)
        for metric in patched:
            del metric.result
