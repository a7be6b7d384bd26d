"""Padding, cropping and upsampling of sequences ``(N, L, C)``."""
import numpy as np

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


class _Sequence(Layer):
    def build(self, input_shape):
        conv_utils.check_input_rank(self, input_shape, 3)
        self.built = True

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, 3, "1-D")
        self._x_shape = x.shape
        conv_utils.check_output_size(self, self.compute_output_shape(x.shape))
        return self._forward(x)


class ZeroPadding1D(_Sequence):
    """Zeros added at the start and end of the steps axis; padding: int or
    ``(left, right)``."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = conv_utils.normalize_tuple(padding, 2, "padding", allow_zero=True)

    def compute_output_shape(self, input_shape):
        n, length, c = tuple(input_shape)
        return conv_utils.check_output_size(
            self, (n, None if length is None else length + sum(self.padding), c))

    def _forward(self, x):
        return np.pad(x, ((0, 0), self.padding, (0, 0)))

    def backward(self, dy):
        left = self.padding[0]
        return np.ascontiguousarray(dy[:, left:left + self._x_shape[1]])

    def get_config(self):
        config = super().get_config()
        config["padding"] = list(self.padding)
        return config


class Cropping1D(_Sequence):
    """Steps removed at the start and end; cropping: int or ``(left, right)``."""

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = conv_utils.normalize_tuple(cropping, 2, "cropping", allow_zero=True)

    def compute_output_shape(self, input_shape):
        n, length, c = tuple(input_shape)
        out = None if length is None else length - sum(self.cropping)
        if out is not None and out <= 0:
            raise ValueError(f"Cropping1D {self.name!r}: cropping {self.cropping} leaves nothing "
                             f"of inputs of shape {tuple(input_shape)}")
        return (n, out, c)

    def _forward(self, x):
        out = self.compute_output_shape(x.shape)[1]
        return np.ascontiguousarray(x[:, self.cropping[0]:self.cropping[0] + out])

    def backward(self, dy):
        return np.pad(dy, ((0, 0), self.cropping, (0, 0)))

    def get_config(self):
        config = super().get_config()
        config["cropping"] = list(self.cropping)
        return config


class UpSampling1D(_Sequence):
    """Each step repeated ``size`` times."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        (self.size,) = conv_utils.normalize_tuple(size, 1, "size")

    def compute_output_shape(self, input_shape):
        n, length, c = tuple(input_shape)
        return conv_utils.check_output_size(
            self, (n, None if length is None else length * self.size, c))

    def _forward(self, x):
        return np.repeat(x, self.size, axis=1)

    def backward(self, dy):
        n, length, c = self._x_shape
        return dy.reshape(n, length, self.size, c).sum(axis=2, dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size
        return config
