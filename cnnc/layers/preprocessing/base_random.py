"""What the random augmentation layers share: the seed, the per-call seed
stream, the training switch and the (N, H, W, C) input check."""
import numbers

import numpy as np

from cnnc import random as cnnc_random
from cnnc._inference_mode import behaves_as_training
from cnnc.layers.base import Layer

_MASK64 = (1 << 64) - 1


def check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
    return seed


def symmetric_range(factor, name, center=0.0):
    """Keras's factor convention: f -> (center - f, center + f); (lo, hi) ->
    (center + lo, center + hi) with lo <= hi."""
    if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
        f = float(factor)
        if f < 0:
            raise ValueError(f"{name} must be >= 0 when given as one number, got {factor!r}")
        return (center - f, center + f)
    try:
        lo, hi = (float(v) for v in factor)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a (lower, upper) pair, got {factor!r}") from None
    if lo > hi:
        raise ValueError(f"{name}: lower bound {lo} is greater than upper bound {hi}")
    return (center + lo, center + hi)


class BaseRandomLayer(Layer):
    """A preprocessing layer that transforms images at random in training and
    is the identity at inference (``training=False``).

    Each training call draws a fresh seed from the layer's ``seed`` and a
    call counter, so successive batches differ while a run is reproducible;
    the C kernels then derive every image's parameters from that seed and
    its index, independently of the thread count.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self._seed = int(seed) if seed is not None else cnnc_random.draw_seed()
        self._calls = 0
        self._transformed = False

    def next_seed(self):
        """The seed of the next training call."""
        seed = (self._seed * 0x9E3779B97F4A7C15 + self._calls + 1) & _MASK64
        self._calls += 1
        return seed

    def random_state(self):
        """The position in the layer's random stream (saved with the model so
        that a resumed run draws what an uninterrupted one would)."""
        return {"seed": self._seed, "calls": self._calls}

    def set_random_state(self, state):
        """Restore :meth:`random_state`'s output."""
        self._seed = int(state["seed"])
        self._calls = int(state["calls"])

    @staticmethod
    def check_images(x, name):
        if x.ndim != 4:
            raise ValueError(f"{name} expects a batch of images (N, H, W, C), got shape {x.shape}")

    def forward(self, x, training=False):
        self.check_images(x, self.name)
        self._transformed = behaves_as_training(training)
        if not self._transformed:
            return self.inference(x)
        return self.transform(x, self.next_seed())

    def inference(self, x):
        return x

    def backward(self, dy):
        if not self._transformed:
            return self.inference_backward(dy)
        return self.transform_backward(dy)

    def inference_backward(self, dy):
        return dy

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
