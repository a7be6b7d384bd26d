"""Masking: marks the time steps whose features all equal a padding value."""
import numbers

import numpy as np

from cnnc.layers.base import Layer


class Masking(Layer):
    """Masks the steps of ``(N, ..., features)`` inputs whose features all
    equal ``mask_value`` (as Keras): those steps become zeros and the mask
    ``(N, ...)`` (True where a step is kept) goes to the layers after it
    (see :mod:`cnnc.models.masking`). The gradient of a masked step is 0.
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(mask_value, numbers.Real) or isinstance(mask_value, bool):
            raise ValueError(f"mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)
        self._keep = None

    def build(self, input_shape):
        if len(tuple(input_shape)) < 2:
            raise ValueError(f"Masking {self.name!r} needs inputs with a feature axis, got "
                             f"shape {tuple(input_shape)}")
        self.built = True

    def _kept_steps(self, x):
        return np.any(x != np.float32(self.mask_value), axis=-1, keepdims=True)

    def compute_mask(self, inputs, mask=None):
        return self._kept_steps(np.asarray(inputs))[..., 0]

    def forward(self, x, training=False):
        keep = self._kept_steps(x)
        self._keep = keep if training else None
        return np.multiply(x, keep, dtype=np.float32)

    def backward(self, dy):
        if self._keep is None:
            raise RuntimeError(f"Masking {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        if not self.need_input_gradient:
            return None
        return np.multiply(dy, self._keep, dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
