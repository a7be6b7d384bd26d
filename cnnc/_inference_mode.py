"""Inference behaviour inside a training pass (Keras's ``layer(x, training=False)``).

A layer's ``forward(x, training=True)`` does two things: it keeps what its
``backward`` needs, and it behaves as in training (batch norm normalizes
with the batch's statistics and updates its moving ones, dropout drops,
augmentation layers transform). A layer called with ``training=False`` in a
model that is being trained (the frozen base of a transfer-learning model,
kept in inference mode while it is fine-tuned) needs the first without the
second: gradients still flow through it and reach its weights.

Inside :func:`inference_behaviour`, layers run ``forward(x, training=True)``
keeping their backward state, and the layers whose behaviour depends on the
mode ask :func:`behaves_as_training` instead of reading ``training``.
"""
import contextlib
import threading

_state = threading.local()


@contextlib.contextmanager
def inference_behaviour():
    """Layers behave as in inference (but keep their backward state) inside."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous


def behaves_as_training(training):
    """Whether a ``forward(x, training)`` behaves as in training: ``training``,
    unless an :func:`inference_behaviour` context is active."""
    return bool(training) and not getattr(_state, "active", False)
