"""Replaying the tape: gradients of traced results with respect to the
leaves (model inputs) and to the weights they used.

The nodes reachable from the results are visited from the newest to the
oldest; each one receives the summed gradients of its outputs and returns
those of its inputs. A built-in layer called several times in one trace
(a shared layer) keeps the state of its last forward pass only, so each of
its nodes carries a snapshot of that state taken after its forward pass and
restored before its backward pass; its weight gradients (which a layer's
backward overwrites) are copied and summed over the calls.
"""
import numpy as np


class WeightGrads:
    """Sums of the gradients reaching each weight during one backward pass."""

    def __init__(self):
        self.grads = {}      # id(weight) -> [weight, array, owned]

    def add(self, weight, grad, borrowed=False):
        """Add ``grad``; ``borrowed``: the array belongs to someone else (a
        layer's ``weight.grad``) and must not be written to."""
        entry = self.grads.get(id(weight))
        if entry is None:
            self.grads[id(weight)] = [weight, grad, not borrowed]
        elif entry[2]:
            np.add(entry[1], grad, out=entry[1])
        else:
            entry[1] = np.add(entry[1], grad, dtype=np.float32)
            entry[2] = True

    def store(self):
        """Write the sums into the weights' ``grad`` arrays (in place)."""
        for weight, grad, _ in self.grads.values():
            if grad is not weight.grad:
                weight.grad[...] = grad
        return {key: entry[0] for key, entry in self.grads.items()}


def _reachable(outputs):
    nodes = {}
    stack = [t.node for t in outputs if t.node is not None]
    while stack:
        node = stack.pop()
        if node.seq in nodes:
            continue
        nodes[node.seq] = node
        for t in node.inputs:
            if t is not None and t.requires_grad and t.node is not None \
                    and t.node.seq not in nodes:
                stack.append(t.node)
    return [nodes[k] for k in sorted(nodes, reverse=True)]


def _accumulate(grads, key, grad):
    current = grads.get(key)
    grads[key] = grad if current is None else current + grad


def gradients(outputs, output_grads, leaves=(), weight_grads=None):
    """Backward from ``outputs`` (Tensors) given d(objective)/d(outputs).

    Returns the gradients of ``leaves`` (None for a leaf nothing reached)
    and fills ``weight_grads`` (a :class:`WeightGrads`) with those of the
    weights used on the way."""
    weight_grads = weight_grads if weight_grads is not None else WeightGrads()
    grads = {}
    for t, g in zip(outputs, output_grads):
        if g is not None and t.requires_grad:
            _accumulate(grads, id(t), np.asarray(g, dtype=t.value.dtype).reshape(t.value.shape))
    nodes = _reachable(outputs)
    calls = {}
    for node in nodes:
        if node.layer is not None:
            calls.setdefault(id(node.layer), []).append(node)
    # Output tensors of a node, to look up their gradients: kept alive by
    # the consumers' inputs, found by identity.
    produced = {}
    for t in outputs:
        if t.node is not None:
            produced.setdefault(t.node.seq, {})[t.index] = t
    for node in nodes:
        for t in node.inputs:
            if t is not None and t.node is not None:
                produced.setdefault(t.node.seq, {})[t.index] = t
    for node in nodes:
        outs = produced.get(node.seq, {})
        dys = [grads.pop(id(outs[i]), None) if i in outs else None
               for i in range(node.n_outputs)]
        if all(d is None for d in dys):
            continue
        if any(d is None for d in dys):
            dys = [np.zeros(outs[i].shape if i in outs else node.output_shapes[i], np.float32)
                   if d is None else d for i, d in enumerate(dys)]
        if node.layer is not None:
            dxs = _layer_backward(node, dys, len(calls[id(node.layer)]) > 1, weight_grads)
        else:
            dxs = node.backward(dys)
        for t, d in zip(node.inputs, dxs):
            if t is None or d is None or not t.requires_grad:
                continue
            if t.node is None and t.weight is not None:
                weight_grads.add(t.weight, d, borrowed=True)
            else:
                _accumulate(grads, id(t), d)
    for layer_nodes in calls.values():
        if len(layer_nodes) > 1:
            _restore(layer_nodes[0])     # the newest call: the layer's state before backward
    result = []
    for leaf in leaves:
        result.append(grads.get(id(leaf)))
    return result, weight_grads


def _restore(node):
    layer = node.layer
    if getattr(layer, "_tape_owner", None) != node.seq:
        layer._restore_state(node.snapshot)
        layer._tape_owner = node.seq


def _layer_backward(node, dys, shared, weight_grads):
    """One built-in layer call: its fused ``backward``, state restored first
    when the layer was called again after this call."""
    layer = node.layer
    if shared:
        _restore(node)
    saved_flag = layer.need_input_gradient
    layer.need_input_gradient = any(t is not None and t.requires_grad for t in node.inputs)
    try:
        dx = layer.backward(dys if node.n_outputs > 1 else dys[0])
    finally:
        layer.need_input_gradient = saved_flag
    for w in layer.trainable_weights:
        weight_grads.add(w, w.grad.copy() if shared else w.grad, borrowed=not shared)
    if dx is None:
        return [None] * len(node.inputs)
    dxs = list(dx) if len(node.inputs) > 1 else [dx]
    if shared:
        # The layer may hand back its own buffers, reused by its next backward.
        dxs = [None if d is None else np.array(d, copy=True) for d in dxs]
    return dxs
