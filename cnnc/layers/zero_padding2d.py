"""Zero padding of the spatial axes of images."""
import numpy as np

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


def normalize_pad_pairs(padding, name="padding"):
    """int p -> ((p, p), (p, p)); (h, w) -> ((h, h), (w, w)); or ((top,
    bottom), (left, right)) as is. Non-negative ints."""
    if isinstance(padding, (list, tuple)) and len(padding) == 2 and all(
            isinstance(p, (list, tuple)) for p in padding):
        return tuple(conv_utils.normalize_tuple(p, 2, name, allow_zero=True) for p in padding)
    h, w = conv_utils.normalize_tuple(padding, 2, name, allow_zero=True)
    return ((h, h), (w, w))


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros: ``(N, H, W, C)`` -> ``(N, H + top +
    bottom, W + left + right, C)``. padding: int, ``(h, w)`` or ``((top,
    bottom), (left, right))``."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = normalize_pad_pairs(padding)
        self.data_format = conv_utils.check_data_format(data_format)
        self._x_shape = None

    def compute_output_shape(self, input_shape):
        n, h, w, c = tuple(input_shape)
        (t, b), (l, r) = self.padding
        return conv_utils.check_output_size(
            self, (n, None if h is None else h + t + b, None if w is None else w + l + r, c))

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, 4, "2-D")
        self.compute_output_shape(x.shape)
        self._x_shape = x.shape
        (t, b), (l, r) = self.padding
        return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError(f"ZeroPadding2D {self.name!r}: backward needs a forward first")
        (t, _), (l, _) = self.padding
        _, h, w, _ = self._x_shape
        return np.ascontiguousarray(dy[:, t:t + h, l:l + w, :])

    def get_config(self):
        config = super().get_config()
        config.update({"padding": [list(p) for p in self.padding],
                       "data_format": self.data_format})
        return config
