"""Softmax layer."""
import numbers

import numpy as np

from cnnc import activations
from cnnc.layers.base import Layer


class Softmax(Layer):
    """``y = exp(x) / sum(exp(x))`` along ``axis`` (default the last).

    As the final layer before a cross-entropy it exposes
    ``activation_name == "softmax"`` so the trainer can fuse the two.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise ValueError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self.activation = activations.softmax
        self._ran = False
        self._input_rank = None

    def build(self, input_shape):
        self._last(len(tuple(input_shape)))
        self.built = True

    @property
    def activation_name(self):
        # Only a softmax over the last axis is the one a loss can fuse with.
        if self.axis == -1 or (self._input_rank is not None and self.axis == self._input_rank - 1):
            return "softmax"
        return None

    def _last(self, ndim):
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Softmax {self.name!r}: axis {self.axis} is out of range for "
                             f"inputs of rank {ndim}")
        self._input_rank = ndim
        return self.axis % ndim == ndim - 1

    def forward(self, x, training=False):
        self._ran = training
        if self._last(x.ndim):
            return self._activate(x, training, owned=False)
        xl = np.ascontiguousarray(np.moveaxis(x, self.axis, -1))
        return np.moveaxis(self._activate(xl, training), -1, self.axis)

    def backward(self, dy):
        if not self._ran:
            raise RuntimeError(f"Softmax {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        if self._last(dy.ndim):
            return self._activate_backward(dy)
        dyl = np.ascontiguousarray(np.moveaxis(dy, self.axis, -1))
        return np.moveaxis(self._activate_backward(dyl), -1, self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config
