"""Random erasing (Zhong et al., 2017) as a layer."""
import numbers

import numpy as np

from cnnc import ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer
from cnnc.layers.preprocessing.random_brightness import check_value_range


def _interval(value, name, low, high=None):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not (low < lo <= hi and (high is None or hi <= high)):
        raise ValueError(f"{name} must satisfy {low} < low <= high"
                         f"{'' if high is None else f' <= {high}'}, got {value!r}")
    return lo, hi


class RandomErasing(BaseRandomLayer):
    """In training, sets a random rectangle of each image to ``fill_value``
    with probability ``factor``; the identity at inference. Runs the C
    kernel ``cnnc.ops.random_erasing``.

    factor: the probability that an image is erased (a float in [0, 1];
    a (low, high) pair means a probability drawn uniformly in that range
    per image, which erases with probability (low + high) / 2). scale: the
    range of the rectangle's area as a fraction of the image's. ratio: the
    range of its aspect ratio height / width (drawn log-uniformly).
    fill_value: the constant written into the rectangle (random-noise fill,
    Keras's ``fill_value=None``, is not provided). value_range: the range of
    the pixel values, kept for Keras compatibility. Input and output:
    ``(N, H, W, C)``; the gradient is dy with the erased pixels zeroed.
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), ratio=(0.3, 3.3), fill_value=0.0,
                 value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"data_format must be 'channels_last', got {data_format!r}")
        if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
            if not 0.0 <= float(factor) <= 1.0:
                raise ValueError(f"factor must be a probability in [0, 1], got {factor!r}")
            self._probability = float(factor)
        else:
            lo, hi = _interval(factor, "factor", -1e-30, 1.0)
            self._probability = 0.5 * (lo + hi)
        self.factor = factor
        self.scale = _interval(scale, "scale", 0.0, 1.0)
        self.ratio = _interval(ratio, "ratio", 0.0)
        if fill_value is None or not isinstance(fill_value, numbers.Real) or isinstance(
                fill_value, bool) or not np.isfinite(fill_value):
            raise ValueError(f"fill_value must be a finite number (noise fill is not provided), "
                             f"got {fill_value!r}")
        self.fill_value = float(fill_value)
        self.value_range = check_value_range(value_range)
        self._call_seed = None

    def _erase(self, x, seed, value):
        return ops.random_erasing(x, probability=self._probability, area=self.scale,
                                  ratio=self.ratio, value=value, seed=seed)

    def transform(self, x, seed):
        self._call_seed = seed
        self._shape = x.shape
        return self._erase(x, seed, self.fill_value)

    def transform_backward(self, dy):
        # The same seed erases the same rectangles: a mask of 1 (kept) / 0 (erased).
        kept = self._erase(np.ones(self._shape, np.float32), self._call_seed, 0.0)
        return np.asarray(dy, dtype=np.float32) * kept

    def get_config(self):
        config = super().get_config()
        config.update({
            "factor": list(self.factor) if isinstance(self.factor, (tuple, list)) else self.factor,
            "scale": list(self.scale), "ratio": list(self.ratio), "fill_value": self.fill_value,
            "value_range": list(self.value_range),
        })
        return config
