"""Upsampling of images by integer factors."""
import numpy as np

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


def _bilinear_matrix(n_in, factor):
    """(n_in * factor, n_in) interpolation matrix with half-pixel centers
    (TensorFlow's resize and PyTorch's align_corners=False)."""
    n_out = n_in * factor
    src = (np.arange(n_out) + 0.5) / factor - 0.5
    src = np.maximum(src, 0.0)
    lo = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(np.float32)


class UpSampling2D(Layer):
    """``(N, H, W, C)`` -> ``(N, H * sh, W * sw, C)``. interpolation:
    "nearest" (each pixel repeated) or "bilinear" (half-pixel centers, as
    Keras and PyTorch's ``align_corners=False``)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = conv_utils.normalize_tuple(size, 2, "size")
        self.data_format = conv_utils.check_data_format(data_format)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")
        self.interpolation = interpolation
        self._x_shape = None

    def compute_output_shape(self, input_shape):
        n, h, w, c = tuple(input_shape)
        sh, sw = self.size
        return conv_utils.check_output_size(
            self, (n, None if h is None else h * sh, None if w is None else w * sw, c))

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, 4, "2-D")
        self.compute_output_shape(x.shape)
        self._x_shape = x.shape
        n, h, w, c = x.shape
        sh, sw = self.size
        if self.interpolation == "nearest":
            y = np.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c))
            return np.ascontiguousarray(y).reshape(n, h * sh, w * sw, c)
        self._mh, self._mw = _bilinear_matrix(h, sh), _bilinear_matrix(w, sw)
        return np.ascontiguousarray(
            np.einsum("ph,nhwc,qw->npqc", self._mh, x, self._mw, optimize=True), dtype=np.float32)

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError(f"UpSampling2D {self.name!r}: backward needs a forward first")
        n, h, w, c = self._x_shape
        sh, sw = self.size
        if self.interpolation == "nearest":
            return dy.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4), dtype=np.float32)
        return np.ascontiguousarray(
            np.einsum("ph,npqc,qw->nhwc", self._mh, dy, self._mw, optimize=True), dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"size": list(self.size), "data_format": self.data_format,
                       "interpolation": self.interpolation})
        return config
