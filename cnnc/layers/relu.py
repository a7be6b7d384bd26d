"""Rectified linear unit layer with Keras's options."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.base import Layer


class ReLU(Layer):
    """``y = max_value`` for ``x >= max_value``, ``x`` for ``threshold <= x <
    max_value``, ``negative_slope * (x - threshold)`` below the threshold.
    Defaults give ``max(x, 0)``; ``max_value=6`` gives ReLU6."""

    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and not float(max_value) >= 0.0:
            raise ValueError(f"max_value must be None or >= 0, got {max_value!r}")
        if not float(negative_slope) >= 0.0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope!r}")
        if not np.isfinite(float(threshold)):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)
        self._x = None
        self._y = None

    def _plain(self):
        return self.max_value is None and self.threshold == 0.0 and self.negative_slope == 0.0

    def writes_in_place(self):
        return self._plain()

    def is_plain_relu(self):
        return self._plain()

    def forward(self, x, training=False):
        if self._plain():
            # max(x, 0) > 0 exactly where x > 0: backward takes its mask from
            # the output, so the output may overwrite the input.
            y = ops.relu(x, out=x if self._may_overwrite(x) else None)
            self._y = y if training else None
            self._x = None
            return y
        self._x = x if training else None
        if self.max_value is None and self.threshold == 0.0:
            return ops.leaky_relu(x, alpha=self.negative_slope)
        t = np.float32(self.threshold)
        # Without a slope, below the threshold is 0, not 0 * (x - t), which
        # is NaN at -inf; NaN fails `x < t` and so passes through.
        below = (np.float32(self.negative_slope) * (x - t) if self.negative_slope
                 else np.float32(0.0))
        y = np.where(x < t, below, x).astype(np.float32)
        if self.max_value is not None:
            np.minimum(y, np.float32(self.max_value), out=y)
        return y

    def backward(self, dy):
        if self._plain():
            if self._y is None:
                raise RuntimeError(f"ReLU {self.name!r}: backward needs a forward(x, training=True) "
                                   f"first")
            return ops.relu_backward(self._y, dy)
        x = self._x
        if x is None:
            raise RuntimeError(f"ReLU {self.name!r}: backward needs a forward(x, training=True) first")
        if self.max_value is None and self.threshold == 0.0:
            return ops.leaky_relu_backward(x, dy, alpha=self.negative_slope)
        slope = np.where(x >= np.float32(self.threshold), np.float32(1.0),
                         np.float32(self.negative_slope))
        if self.max_value is not None:
            slope[x >= np.float32(self.max_value)] = 0.0
        return (dy * slope).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config
