"""Rescaling of input values (e.g. pixels from [0, 255] to [0, 1])."""
import numpy as np

from cnnc.layers.base import Layer


class Rescaling(Layer):
    """``y = x * scale + offset``, any shape; ``Rescaling(1 / 255)`` turns
    8-bit pixels into [0, 1] inside the model."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("scale", scale), ("offset", offset)):
            if np.ndim(value) != 0 or not np.isfinite(float(value)):
                raise ValueError(f"{name} must be a finite scalar, got {value!r}")
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x, training=False):
        y = np.multiply(x, np.float32(self.scale), dtype=np.float32)
        if self.offset:
            y += np.float32(self.offset)
        return y

    def backward(self, dy):
        return np.multiply(dy, np.float32(self.scale), dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config
