"""Leaky ReLU layer."""
from cnnc import _kernels as ops
from cnnc.layers.base import Layer


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise (Keras's
    default slope 0.3; ``alpha=`` is accepted as the older name)."""

    supports_masking = True

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None:
            negative_slope = alpha
        if not float(negative_slope) >= 0.0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self._x = None

    def forward(self, x, training=False):
        self._x = x if training else None
        return ops.leaky_relu(x, alpha=self.negative_slope)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"LeakyReLU {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        return ops.leaky_relu_backward(self._x, dy, alpha=self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config
