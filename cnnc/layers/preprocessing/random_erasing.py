"""Random erasing (Zhong et al., 2017) as a layer."""
import numbers

import numpy as np

from cnnc import _kernels as ops
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
    """In training, fills a random rectangle of some images; the identity at
    inference. The rectangles come from the C kernel
    ``cnnc.ops.random_erasing``.

    factor: Keras 3's convention. A pair (low, high) draws each image's
    erasing probability uniformly in [low, high]; one number f draws it in
    [0, f], so an image is erased with probability f / 2 (the default 1.0
    erases half the images, as Keras's layer does; (1.0, 1.0) erases all).
    scale: the range of the rectangle's area as a fraction of the image's,
    with ratio the range of its aspect ratio height / width (drawn
    log-uniformly), as in Zhong et al. (Keras draws the two sides as
    sqrt(u) times the image's sides, u uniform in scale, and has no ratio).
    fill_value: None (Keras's default) fills with noise, a standard normal
    times ``value_range[1]``; a number fills with that constant; a sequence
    of one number per channel fills each channel with its own. Either way
    the fill is clipped to ``value_range``, the range of the pixel values,
    as Keras does. Input and output: ``(N, H, W, C)``; the gradient is dy
    with the erased pixels zeroed.
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), ratio=(0.3, 3.3), fill_value=None,
                 value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"data_format must be 'channels_last', got {data_format!r}")
        if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
            if not 0.0 <= float(factor) <= 1.0:
                raise ValueError(f"factor must be a probability in [0, 1], got {factor!r}")
            self._probability = 0.5 * float(factor)
        else:
            lo, hi = _interval(factor, "factor", -1e-30, 1.0)
            self._probability = 0.5 * (lo + hi)
        self.factor = factor
        self.scale = _interval(scale, "scale", 0.0, 1.0)
        self.ratio = _interval(ratio, "ratio", 0.0)
        self.value_range = check_value_range(value_range)
        self.fill_value = _check_fill(fill_value)
        self._call_seed = None

    def _erase(self, x, seed, value):
        return ops.random_erasing(x, probability=self._probability, area=self.scale,
                                  ratio=self.ratio, value=value, seed=seed)

    def _fill(self, shape, seed):
        """The fill of a batch of ``shape``: an array, or a float for a
        constant (clipped to value_range)."""
        lo, hi = self.value_range
        if isinstance(self.fill_value, float):
            return float(np.clip(self.fill_value, lo, hi))
        if self.fill_value is None:
            noise = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
            return np.clip(noise * np.float32(hi), lo, hi)
        if len(self.fill_value) != shape[-1]:
            raise ValueError(f"RandomErasing {self.name!r}: fill_value has "
                             f"{len(self.fill_value)} values for images of {shape[-1]} channels")
        return np.clip(np.asarray(self.fill_value, np.float32), lo, hi)

    def _kept(self, shape, seed):
        # The same seed erases the same rectangles: a mask of 1 (kept) / 0 (erased).
        return self._erase(np.ones(shape, np.float32), seed, 0.0)

    def transform(self, x, seed):
        self._call_seed = seed
        self._shape = x.shape
        fill = self._fill(x.shape, seed)
        if isinstance(fill, float):
            return self._erase(x, seed, fill)
        return np.where(self._kept(x.shape, seed) != 0, x, fill).astype(np.float32)

    def transform_backward(self, dy):
        return np.asarray(dy, dtype=np.float32) * self._kept(self._shape, self._call_seed)

    def get_config(self):
        config = super().get_config()
        fill = self.fill_value
        config.update({
            "factor": list(self.factor) if isinstance(self.factor, (tuple, list)) else self.factor,
            "scale": list(self.scale), "ratio": list(self.ratio),
            "fill_value": list(fill) if isinstance(fill, tuple) else fill,
            "value_range": list(self.value_range),
        })
        return config


def _check_fill(fill_value):
    """None (noise), a finite float, or a tuple of finite floats (one per channel)."""
    def finite(value):
        return (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and np.isfinite(value))
    if fill_value is None:
        return None
    if finite(fill_value):
        return float(fill_value)
    if isinstance(fill_value, (list, tuple)) and fill_value and all(finite(v) for v in fill_value):
        return tuple(float(v) for v in fill_value)
    raise ValueError(f"fill_value must be None (noise), a finite number or a list of finite "
                     f"numbers (one per channel), got {fill_value!r}")
