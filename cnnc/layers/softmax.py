"""Softmax layer."""
import numbers

import numpy as np

from cnnc import activations
from cnnc.layers.base import Layer


class Softmax(Layer):
    """``y = exp(x) / sum(exp(x))`` along ``axis`` (default the last).

    As the final layer before a cross-entropy it exposes
    ``activation_name == "softmax"`` so the trainer can fuse the two.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise ValueError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self.activation = activations.softmax
        self._ran = False
        self._input_rank = None

    def build(self, input_shape):
        self._last(len(tuple(input_shape)))
        self.built = True

    @property
    def activation_name(self):
        # Only a softmax over the last axis is the one a loss can fuse with.
        if self.axis == -1 or (self._input_rank is not None and self.axis == self._input_rank - 1):
            return "softmax"
        return None

    def _last(self, ndim):
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Softmax {self.name!r}: axis {self.axis} is out of range for "
                             f"inputs of rank {ndim}")
        self._input_rank = ndim
        return self.axis % ndim == ndim - 1

    supports_masking = True

    # Keras's large negative number for float32: exp() of it is 0.
    _MASKED_LOGIT = np.float32(-1e9)

    def forward(self, x, training=False, mask=None):
        """mask: True where ``x`` takes part; the masked entries get
        ``x - 1e9``, so their probability is 0 (as Keras). A mask of the
        input's rank must broadcast against ``x``; a mask of one entry per
        row (``x.shape[:-1]``, e.g. padded steps from an Embedding) leaves
        the rows as they are and is passed on."""
        if mask is not None and np.ndim(mask) == x.ndim:
            try:
                keep = np.broadcast_to(np.asarray(mask, bool), x.shape)
            except ValueError:
                raise ValueError(f"Softmax {self.name!r}: a mask of shape {np.shape(mask)} does "
                                 f"not broadcast against inputs of shape {x.shape}") from None
            x = np.where(keep, x, x + self._MASKED_LOGIT).astype(np.float32)
        self._ran = training
        if self._last(x.ndim):
            return self._activate(x, training, owned=False)
        xl = np.ascontiguousarray(np.moveaxis(x, self.axis, -1))
        return np.moveaxis(self._activate(xl, training), -1, self.axis)

    def backward(self, dy):
        if not self._ran:
            raise RuntimeError(f"Softmax {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        if self._last(dy.ndim):
            return self._activate_backward(dy)
        dyl = np.ascontiguousarray(np.moveaxis(dy, self.axis, -1))
        return np.moveaxis(self._activate_backward(dyl), -1, self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config
