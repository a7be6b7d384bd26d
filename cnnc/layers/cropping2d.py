"""Cropping of the spatial axes of images."""
import numpy as np

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer
from cnnc.layers.zero_padding2d import normalize_pad_pairs


class Cropping2D(Layer):
    """Removes rows and columns at the borders: ``(N, H, W, C)`` ->
    ``(N, H - top - bottom, W - left - right, C)``. cropping: int, ``(h, w)``
    or ``((top, bottom), (left, right))``."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = normalize_pad_pairs(cropping, "cropping")
        self.data_format = conv_utils.check_data_format(data_format)
        self._x_shape = None

    def compute_output_shape(self, input_shape):
        n, h, w, c = tuple(input_shape)
        (t, b), (l, r) = self.cropping
        oh = None if h is None else h - t - b
        ow = None if w is None else w - l - r
        if (oh is not None and oh <= 0) or (ow is not None and ow <= 0):
            raise ValueError(f"Cropping2D {self.name!r}: cropping {self.cropping} leaves nothing "
                             f"of inputs of shape {tuple(input_shape)}")
        return (n, oh, ow, c)

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, 4, "2-D")
        _, oh, ow, _ = self.compute_output_shape(x.shape)
        self._x_shape = x.shape
        (t, _), (l, _) = self.cropping
        return np.ascontiguousarray(x[:, t:t + oh, l:l + ow, :])

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError(f"Cropping2D {self.name!r}: backward needs a forward first")
        (t, b), (l, r) = self.cropping
        return np.pad(dy, ((0, 0), (t, b), (l, r), (0, 0)))

    def get_config(self):
        config = super().get_config()
        config.update({"cropping": [list(p) for p in self.cropping],
                       "data_format": self.data_format})
        return config
