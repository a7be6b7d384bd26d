"""Keras's masks through a model graph.

A mask is a boolean array over the leading axes of a tensor, e.g. ``(N, T)``
for a sequence ``(N, T, F)``: True where a step is real, False where it is
padding. ``Embedding(mask_zero=True)`` and ``Masking`` make one; it then
follows the tensor through the graph as Keras's ``_keras_mask`` does:

* a layer whose ``supports_masking`` is true passes on
  ``compute_mask(inputs, mask)`` (the input's mask by default; merge layers
  combine their inputs' masks; a consumer such as GlobalAveragePooling1D
  returns None);
* a layer whose ``forward`` (or traced ``call``) takes a ``mask`` argument
  receives the mask of its input there (a list of masks for a list input);
* any other layer drops the mask, with Keras's warning, once per graph;
* the mask that reaches a model output excludes the masked steps from the
  loss (mean over the valid steps) and from the metrics.

Which tensors may carry a mask is decided once per graph and per set of
masked model inputs, so a model without masks runs exactly as before.
"""
import warnings

import numpy as np


def takes_mask(layer):
    """Whether the layer's ``forward`` (traced layers: ``call``) receives
    the mask of its input (Keras: a ``mask`` argument in ``call``)."""
    return layer._takes_mask()


def _warn_dropped(layer):
    warnings.warn(f"Layer {layer.name!r} (of type {type(layer).__name__}) was passed an input "
                  f"with a mask attached to it. However, this layer does not support masking "
                  f"and will therefore destroy the mask information. Downstream layers will "
                  f"not see the mask.", stacklevel=4)


class MaskPlan:
    """Which steps of a graph handle masks, for one set of masked inputs.

    steps[i]: step i must run through :func:`run_step`; consumes: some step
    receives a mask in its forward (so its outputs depend on the masks);
    outputs[k]: model output k may carry a mask.
    """

    __slots__ = ("steps", "consumes", "outputs")

    def __init__(self, steps, consumes, outputs):
        self.steps = steps
        self.consumes = consumes
        self.outputs = outputs


def make_plan(model, masked_inputs):
    """The MaskPlan of ``model``'s graph when the inputs flagged in
    ``masked_inputs`` carry masks; None when no tensor can carry one."""
    may = [False] * model._n_slots
    for slot, masked in zip(model._input_slots, masked_inputs):
        may[slot] = bool(masked)
    steps = [False] * len(model._steps)
    consumes = False
    for step in model._steps:
        layer = step.layer
        incoming = any(may[s] for s in step.inputs)
        if incoming and takes_mask(layer):
            consumes = True
        elif incoming and not layer.supports_masking:
            _warn_dropped(layer)
        out = bool(layer.supports_masking and (incoming or layer._may_make_mask()))
        steps[step.index] = incoming or out
        for s in step.outputs:
            may[s] = out
    if not any(steps):
        return None
    return MaskPlan(steps, consumes, [may[s] for s in model._output_slots])


def run_step(step, arg, masks, training, logits):
    """Runs one step that handles masks: the layer's forward (with its
    input's mask when it takes one; ``logits``: without its final
    activation), then records the masks of its outputs in ``masks``."""
    layer = step.layer
    if step.multi_in:
        mask = [masks[s] for s in step.inputs]
        has_mask = any(m is not None for m in mask)
    else:
        mask = masks[step.inputs[0]]
        has_mask = mask is not None
    if has_mask and takes_mask(layer):
        layer._logits_mode = bool(logits)
        try:
            if layer._traced:
                from cnnc.autodiff.layer_call import traced_forward
                y = traced_forward(layer, arg, training, (), {"mask": mask})
            else:
                y = layer.forward(arg, training=training, mask=mask)
        finally:
            layer._logits_mode = False
    elif logits:
        y = layer.forward_logits(arg, training=training)
    else:
        y = layer.forward(arg, training=training)
    out = layer.compute_mask(arg, mask if has_mask else None) if layer.supports_masking else None
    if step.multi_out:
        outs = out if isinstance(out, (list, tuple)) else [out] * len(step.outputs)
        for s, m in zip(step.outputs, outs):
            masks[s] = _as_mask(m)
    else:
        masks[step.outputs[0]] = _as_mask(out)
    return y


def _as_mask(mask):
    if mask is None:
        return None
    mask = np.asarray(mask)
    return mask if mask.dtype == np.bool_ else mask.astype(bool)
