"""Random brightness changes."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer, symmetric_range


def check_value_range(value_range):
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a (low, high) pair, got {value_range!r}") from None
    if not lo < hi:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    return lo, hi


class RandomBrightness(BaseRandomLayer):
    """Adds a random offset to each image in training, then clips to
    ``value_range``; the identity at inference.

    factor: f means offsets in [-f, f] times the width of value_range,
    (lo, hi) means [lo, hi] times it (values in [-1, 1]). value_range: the
    range of the pixel values, (0, 255) by default. Input and output:
    (N, H, W, C).
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        lo, hi = symmetric_range(factor, "factor")
        if lo < -1 or hi > 1:
            raise ValueError(f"factor must lie in [-1, 1], got {factor!r}")
        self._range = (lo, hi)
        self.value_range = check_value_range(value_range)

    def transform(self, x, seed):
        vlo, vhi = self.value_range
        lo, hi = self._range
        y = ops.random_brightness(x, lo * (vhi - vlo), hi * (vhi - vlo), value_range=self.value_range,
                                  seed=seed)
        self._inside = (y > vlo) & (y < vhi)
        return y

    def transform_backward(self, dy):
        return np.where(self._inside, dy, np.float32(0)).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": list(self.factor) if isinstance(self.factor, (tuple, list)) else self.factor,
                       "value_range": list(self.value_range)})
        return config
