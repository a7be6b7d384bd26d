"""Global average and max pooling (over all spatial positions)."""
from cnnc import ops
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


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


class GlobalAveragePooling1D(GlobalAveragePooling2D):
    """Mean over L: ``(N, L, C)`` -> ``(N, C)``."""

    rank = 1


class GlobalMaxPooling1D(GlobalMaxPooling2D):
    """Max over L: ``(N, L, C)`` -> ``(N, C)``."""

    rank = 1


GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
