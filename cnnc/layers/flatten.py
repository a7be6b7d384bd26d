"""Flatten all non-batch axes."""
import math

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


class Flatten(Layer):
    """``(N, d1, d2, ...)`` -> ``(N, d1 * d2 * ...)`` in C (channels-last)
    order, a view when the input is contiguous."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = conv_utils.check_data_format(data_format)
        self._x_shape = None

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def forward(self, x, training=False):
        if x.ndim < 1:
            raise ValueError(f"Flatten {self.name!r} needs an input with a batch axis")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError(f"Flatten {self.name!r}: backward needs a forward first")
        return dy.reshape(self._x_shape)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config
