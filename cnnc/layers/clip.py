"""Clamp values into a range, after an optional affine map."""
import math

import numpy as np

from cnnc.layers.base import Layer


def _bound(value, name):
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number or None, got NaN")
    return value


class Clip(Layer):
    """``y = min(max(x, min_value), max_value)`` elementwise, any shape
    (ONNX's Clip; ``Clip(0, 6)`` is ReLU6). A None bound is no bound. The
    gradient passes where ``min_value <= x <= max_value``, as with PyTorch's
    clamp."""

    scale = 1.0
    offset = 0.0

    def __init__(self, min_value=None, max_value=None, **kwargs):
        super().__init__(**kwargs)
        self.min_value = _bound(min_value, "min_value")
        self.max_value = _bound(max_value, "max_value")
        if (self.min_value is not None and self.max_value is not None
                and self.min_value > self.max_value):
            raise ValueError(f"min_value {self.min_value} is larger than max_value "
                             f"{self.max_value}")
        self._keep = None

    def _affine(self, x):
        if self.scale == 1.0 and self.offset == 0.0:
            return np.array(x, dtype=np.float32, copy=True)
        z = np.multiply(x, np.float32(self.scale), dtype=np.float32)
        z += np.float32(self.offset)
        return z

    def forward(self, x, training=False):
        z = self._affine(x)
        lo = -np.inf if self.min_value is None else np.float32(self.min_value)
        hi = np.inf if self.max_value is None else np.float32(self.max_value)
        self._keep = ((z >= lo) & (z <= hi)) if training else None
        return np.clip(z, lo, hi, out=z)

    def backward(self, dy):
        if self._keep is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        return np.where(self._keep, dy * np.float32(self.scale),
                        np.float32(0.0)).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"min_value": self.min_value, "max_value": self.max_value})
        return config


class HardSigmoid(Clip):
    """``y = max(0, min(1, alpha * x + beta))`` (ONNX's HardSigmoid; the
    defaults ``alpha = 1/6, beta = 0.5`` give Keras 3's hard_sigmoid, ONNX's
    defaults are ``alpha = 0.2, beta = 0.5``)."""

    def __init__(self, alpha=1.0 / 6.0, beta=0.5, **kwargs):
        super().__init__(0.0, 1.0, **kwargs)
        self.alpha, self.beta = _bound(alpha, "alpha"), _bound(beta, "beta")
        if self.alpha is None or self.beta is None:
            raise ValueError("HardSigmoid: alpha and beta must be numbers")

    @property
    def scale(self):
        return self.alpha

    @property
    def offset(self):
        return self.beta

    def get_config(self):
        config = super().get_config()
        del config["min_value"], config["max_value"]
        config.update({"alpha": self.alpha, "beta": self.beta})
        return config
