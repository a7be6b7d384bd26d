"""Max and average pooling over 1-D and 2-D windows."""
from cnnc import ops
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


class BasePooling(Layer):
    """A pooling window of ``pool_size`` moved by ``strides`` (default:
    ``pool_size``) over the spatial axes, "valid" or "same" padding; padded
    positions never win a max and are left out of an average (as Keras)."""

    rank = 2

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = conv_utils.normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = (self.pool_size if strides is None
                        else conv_utils.normalize_tuple(strides, self.rank, "strides"))
        self.padding = conv_utils.normalize_padding(padding)
        self.data_format = conv_utils.check_data_format(data_format)
        self._x = None
        self._checked_shape = None
        self._kernel_args = self._args()

    def _args(self):
        if self.rank == 1:
            return dict(pool_size=self.pool_size[0], strides=self.strides[0], padding=self.padding)
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def build(self, input_shape):
        conv_utils.check_input_rank(self, input_shape, self.rank + 2)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        spatial = tuple(conv_utils.conv_output_length(n, k, self.padding, s)
                        for n, k, s in zip(input_shape[1:-1], self.pool_size, self.strides))
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input shape {input_shape} is "
                             f"smaller than pool_size={self.pool_size}")
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def forward(self, x, training=False):
        if x.shape != self._checked_shape:  # validate each new input shape once
            conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
            self.compute_output_shape(x.shape)
            self._checked_shape = x.shape
        self._x = x if training else None
        return self._pool(x)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        return self._pool_backward(self._x, dy)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size), "strides": list(self.strides),
                       "padding": self.padding, "data_format": self.data_format})
        return config


class MaxPooling2D(BasePooling):
    """Max over ``pool_size`` windows of ``(N, H, W, C)``; the gradient goes to
    the first maximum of each window."""

    def _pool(self, x):
        return ops.max_pool2d(x, **self._kernel_args)

    def _pool_backward(self, x, dy):
        return ops.max_pool2d_backward(x, dy, **self._kernel_args)


class AveragePooling2D(BasePooling):
    """Mean over ``pool_size`` windows of ``(N, H, W, C)``."""

    def _pool(self, x):
        return ops.avg_pool2d(x, **self._kernel_args)

    def _pool_backward(self, x, dy):
        return ops.avg_pool2d_backward(dy, x.shape, **self._kernel_args)


class MaxPooling1D(BasePooling):
    """Max over ``pool_size`` windows of ``(N, L, C)``."""

    rank = 1

    def _pool(self, x):
        return ops.max_pool1d(x, **self._kernel_args)

    def _pool_backward(self, x, dy):
        return ops.max_pool1d_backward(x, dy, **self._kernel_args)


class AveragePooling1D(BasePooling):
    """Mean over ``pool_size`` windows of ``(N, L, C)``."""

    rank = 1

    def _pool(self, x):
        return ops.avg_pool1d(x, **self._kernel_args)

    def _pool_backward(self, x, dy):
        return ops.avg_pool1d_backward(dy, x.shape, **self._kernel_args)


MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
