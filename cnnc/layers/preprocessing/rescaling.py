"""Rescaling of input values."""
import numbers

import numpy as np

from cnnc.layers.base import Layer


class Rescaling(Layer):
    """``y = x * scale + offset``, in training and inference alike: e.g.
    ``Rescaling(1 / 255)`` maps [0, 255] to [0, 1], ``Rescaling(1 / 127.5,
    offset=-1)`` maps it to [-1, 1]. Any input shape; output the same.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("scale", scale), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, got {value!r}")
        self.scale = float(scale)
        self.offset = float(offset)

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
