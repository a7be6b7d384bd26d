"""Random contrast changes."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer, symmetric_range
from cnnc.layers.preprocessing.random_brightness import check_value_range


class RandomContrast(BaseRandomLayer):
    """Scales each image's deviations from its per-channel mean by a random
    factor in training, ``(x - mean) * f + mean``, then clips to
    ``value_range``; the identity at inference.

    factor: f means f drawn in [1 - f, 1 + f]; (lo, hi) means [1 - lo, 1 + hi]
    (lo, hi >= 0, and the factors stay >= 0). Input and output: (N, H, W, C).
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = factor
        if isinstance(factor, (tuple, list)):
            lo, hi = symmetric_range(factor, "factor")
            if lo < 0 or hi < 0:
                raise ValueError(f"factor bounds must be >= 0, got {factor!r}")
            lo, hi = 1.0 - lo, 1.0 + hi
        else:
            lo, hi = symmetric_range(factor, "factor", center=1.0)
        if lo < 0:
            raise ValueError(f"factor must keep the contrast factor >= 0, got {factor!r}")
        self._range = (lo, hi)
        self.value_range = check_value_range(value_range)

    def transform(self, x, seed):
        self._call_seed = seed
        y = ops.random_contrast(x, self._range[0], self._range[1], value_range=self.value_range,
                                seed=seed)
        self._inside = (y > self.value_range[0]) & (y < self.value_range[1])
        return y

    def transform_backward(self, dy):
        # y = f x + (1 - f) mean(x): dx = f dy + (1 - f) mean(dy) per channel.
        dy = np.where(self._inside, np.asarray(dy, np.float32), np.float32(0))
        lo, hi = (np.float32(v) for v in self._range)
        f = np.array([lo + ops.augment_uniform(self._call_seed, i, 0) * (hi - lo)
                      for i in range(dy.shape[0])], np.float32).reshape(-1, 1, 1, 1)
        return (f * dy + (1 - f) * dy.mean(axis=(1, 2), keepdims=True)).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": list(self.factor) if isinstance(self.factor, (tuple, list)) else self.factor,
                       "value_range": list(self.value_range)})
        return config
