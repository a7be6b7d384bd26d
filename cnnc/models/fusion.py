"""Fused passes of a graph model's training step.

A plain ReLU (``max(x, 0)``, its backward masking ``dy`` by its output)
whose input nothing else reads is applied by the layer that made that
input, in the same pass over memory:

- batch normalization followed by ReLU: one kernel normalizes and clamps;
  its backward takes the gradient of the ReLU's output and masks it inside
  its reductions and its input-gradient pass (no masked copy of ``dy``);
- the residual sum followed by ReLU (``relu(a + b)``): one kernel adds and
  clamps; backward masks ``dy`` once and hands that array to every input.

The ReLU step then passes its input through, forward and backward. The
fused kernels do the same float operations in the same order as the
separate ones (the clamp is the ReLU kernel's ``max(0, y)``, NaN and -0
included), so a fused step gives the weights of an unfused one to the last
bit.

:func:`plan` pairs the steps once per graph: the ReLU reads a tensor that
only it reads and that is neither a model input nor a model output, and
neither step is a shared layer. Whether a pair fuses is decided again at
every forward: only in training, without masks, and only when the producer
runs the mode that can (a frozen batch norm, or a sum of shapes that
broadcast, leaves the ReLU to its own layer); the producer says whether it
did in ``_relu_applied``.

A layer class takes part by defining ``fuses_relu`` (a producer) or
``is_plain_relu`` (the ReLU) itself: a subclass that does not define it
again is left out, since it may change what ``forward`` computes.

``set_enabled(False)``, the ``disabled()`` context, or ``CNNC_FUSION=0`` in
the environment at import turns fusion off (tests compare the two paths;
benchmarks time them).
"""
import os
from contextlib import contextmanager

_enabled = os.environ.get("CNNC_FUSION", "1").strip() != "0"


def enabled():
    """Whether graph models fuse the passes above."""
    return _enabled


def set_enabled(flag):
    """Turn fusion on or off for every model; returns the previous setting."""
    global _enabled
    previous = _enabled
    _enabled = bool(flag)
    return previous


@contextmanager
def disabled():
    """Run the block without fusion."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def _declares(layer, method):
    """Whether ``layer``'s own class defines ``method`` and it answers True."""
    return method in type(layer).__dict__ and getattr(layer, method)()


def plan(model):
    """Pair the steps of ``model``'s sorted graph: ``step.relu_after`` of a
    producer is the ReLU step it may apply, ``step.relu_of`` of that ReLU
    step its producer (both None elsewhere)."""
    steps = model._steps
    for step in steps:
        step.relu_after = step.relu_of = None
    outside = set(model._input_slots) | set(model._output_slots)
    for step in steps:
        if step.shared or step.multi_in or step.multi_out or not _declares(step.layer,
                                                                           "is_plain_relu"):
            continue
        s = step.inputs[0]
        producer = model._producer.get(s)
        if (producer is None or s in outside or model._consumers[s] != 1 or producer.shared
                or producer.multi_out or producer.relu_after is not None
                or not _declares(producer.layer, "fuses_relu")):
            continue
        producer.relu_after = step
        step.relu_of = producer
