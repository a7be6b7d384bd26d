"""Exponential linear unit layer."""
from cnnc import _kernels as ops
from cnnc.layers.base import Layer


class ELU(Layer):
    """``y = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""

    supports_masking = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self._x = None

    def forward(self, x, training=False):
        self._x = x if training else None
        return ops.elu(x, alpha=self.alpha)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"ELU {self.name!r}: backward needs a forward(x, training=True) first")
        return ops.elu_backward(self._x, dy, alpha=self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config
