"""Global average and max pooling (over all spatial positions)."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer
from cnnc._masks import check_step_mask


class BaseGlobalPooling(Layer):
    """Reduces ``(N, *spatial, C)`` to ``(N, C)`` (or ``(N, 1, ..., 1, C)``
    with ``keepdims=True``). 1-D inputs are pooled as ``(N, L, 1, C)``."""

    rank = 2

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = conv_utils.check_data_format(data_format)
        self.keepdims = bool(keepdims)
        self._x = None

    def build(self, input_shape):
        conv_utils.check_input_rank(self, input_shape, self.rank + 2)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.keepdims:
            return (input_shape[0],) + (1,) * self.rank + (input_shape[-1],)
        return (input_shape[0], input_shape[-1])

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
        x4 = x if self.rank == 2 else x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
        self._x = x4 if training else None
        self._x_shape = x.shape
        y = self._pool(x4)
        return y.reshape((x.shape[0],) + (1,) * self.rank + (x.shape[-1],)) if self.keepdims else y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        dy = dy.reshape(dy.shape[0], dy.shape[-1])
        return self._pool_backward(self._x, dy).reshape(self._x_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalAveragePooling2D(BaseGlobalPooling):
    """Mean over H and W: ``(N, H, W, C)`` -> ``(N, C)``."""

    def _pool(self, x):
        return ops.global_avg_pool2d(x)

    def _pool_backward(self, x, dy):
        return ops.global_avg_pool2d_backward(dy, x.shape)


class GlobalMaxPooling2D(BaseGlobalPooling):
    """Max over H and W: ``(N, H, W, C)`` -> ``(N, C)``."""

    def _pool(self, x):
        return ops.global_max_pool2d(x)

    def _pool_backward(self, x, dy):
        return ops.global_max_pool2d_backward(x, dy)


class _MaskedSteps:
    """The 1-D global poolings over the steps a mask ``(N, L)`` keeps (True:
    a real step): the mask comes from the layer before (e.g. an
    ``Embedding(mask_zero=True)``) and is not passed on. A sample whose
    steps are all masked pools to zeros (and gets no gradient)."""

    rank = 1
    supports_masking = True

    def forward(self, x, training=False, mask=None):
        if mask is None:
            self._input_mask = None
            return super().forward(x, training)
        conv_utils.check_rank(self, x, 3, "1-D")
        keep = check_step_mask(self, x, mask, 2)
        self._x = x if training else None
        self._x_shape = x.shape
        self._input_mask = keep if training else None
        y = self._masked_pool(x, keep)
        return y.reshape(x.shape[0], 1, x.shape[2]) if self.keepdims else y

    def backward(self, dy):
        if self._input_mask is None:
            return super().backward(dy)
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        dy = np.asarray(dy, dtype=np.float32).reshape(dy.shape[0], dy.shape[-1])
        return self._masked_backward(self._x, self._input_mask, dy)

    def _may_make_mask(self):
        return False

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling1D(_MaskedSteps, GlobalAveragePooling2D):
    """Mean over L: ``(N, L, C)`` -> ``(N, C)``; with a mask, the mean over
    the kept steps (as Keras)."""

    @staticmethod
    def _kept_counts(keep):
        count = keep.sum(axis=1, dtype=np.float32)[:, None]
        return np.maximum(count, 1.0)  # all masked: a sum of zeros over 1

    def _masked_pool(self, x, keep):
        summed = np.einsum("nlc,nl->nc", x, keep.astype(np.float32), dtype=np.float32)
        return np.ascontiguousarray(summed / self._kept_counts(keep), dtype=np.float32)

    def _masked_backward(self, x, keep, dy):
        scale = keep.astype(np.float32) / self._kept_counts(keep)
        return np.ascontiguousarray(dy[:, None, :] * scale[:, :, None], dtype=np.float32)


class GlobalMaxPooling1D(_MaskedSteps, GlobalMaxPooling2D):
    """Max over L: ``(N, L, C)`` -> ``(N, C)``; with a mask, the max over the
    kept steps (Keras 3's GlobalMaxPooling1D ignores the mask; cnnc does
    not let padding win the max)."""

    @staticmethod
    def _argmax(x, keep):
        masked = np.where(keep[:, :, None], x, -np.inf)
        return np.argmax(masked, axis=1)  # (N, C): the first of equal maxima

    def _masked_pool(self, x, keep):
        index = self._argmax(x, keep)
        y = np.take_along_axis(x, index[:, None, :], axis=1)[:, 0, :]
        return np.ascontiguousarray(np.where(keep.any(axis=1)[:, None], y, 0.0),
                                    dtype=np.float32)

    def _masked_backward(self, x, keep, dy):
        index = self._argmax(x, keep)
        dx = np.zeros(x.shape, np.float32)
        dy = np.where(keep.any(axis=1)[:, None], dy, 0.0).astype(np.float32)
        np.put_along_axis(dx, index[:, None, :], dy[:, None, :], axis=1)
        return dx


GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
