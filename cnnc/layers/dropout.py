"""Dropout regularization."""
import numbers

import numpy as np

from cnnc import _kernels as ops
from cnnc._inference_mode import behaves_as_training
from cnnc import random as cnnc_random
from cnnc.layers.base import Layer


class Dropout(Layer):
    """During training, zeroes each element with probability ``rate`` and
    scales the others by ``1 / (1 - rate)``; the identity at inference.

    noise_shape: shape of the mask broadcast over the input (None entries
    take the input's size), e.g. ``(None, 1, 1, C)`` drops whole channels.
    seed: the layer's seed; by default one is drawn from the global generator
    of :mod:`cnnc.random` when the layer is created. Each training call uses
    fresh positions of the seed's random stream, so successive steps differ
    while a run is reproducible for a fixed seed. Under data parallelism a
    rank takes the positions of its rows of the global batch
    (:func:`cnnc.random.batch_position`), so the ranks together draw the
    masks one process would.
    """

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if (isinstance(rate, bool) or not isinstance(rate, numbers.Real)
                or not 0.0 <= float(rate) < 1.0):
            raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        if noise_shape is not None:
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        self.seed = seed
        self._seed = int(seed) if seed is not None else cnnc_random.draw_seed()
        self._offset = 0
        self._mask = None

    def _resolved_noise_shape(self, shape):
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"Dropout {self.name!r}: noise_shape {self.noise_shape} does not "
                             f"match the rank of the input shape {shape}")
        resolved = tuple(s if d is None else d for d, s in zip(self.noise_shape, shape))
        if any(d not in (1, s) for d, s in zip(resolved, shape)):
            raise ValueError(f"Dropout {self.name!r}: noise_shape {self.noise_shape} cannot be "
                             f"broadcast to the input shape {shape}")
        return resolved

    def forward(self, x, training=False):
        if not behaves_as_training(training) or self.rate == 0.0:
            self._mask = None
            return x
        if self.noise_shape is None:
            offset, stream = self._stream_position(x.shape[0], x.size)
            y, self._mask = ops.dropout(x, self.rate, self._seed, offset)
            self._offset += stream
            self._scale = None
            return y
        noise = self._resolved_noise_shape(x.shape)
        if noise[0] == 1 and self.noise_shape[0] == 1:
            offset, stream = self._offset, int(np.prod(noise))  # one mask for every sample
        else:
            offset, stream = self._stream_position(x.shape[0], int(np.prod(noise)))
        scale, self._mask = ops.dropout(np.ones(noise, np.float32), self.rate, self._seed, offset)
        self._offset += stream
        self._scale = scale
        return x * scale

    def _stream_position(self, rows, size):
        """(offset of this batch's first element, stream length of the whole
        batch) for a batch of ``rows`` rows and ``size`` mask elements."""
        before, total = cnnc_random.batch_position(rows)
        per_row = size // rows
        return self._offset + before * per_row, total * per_row

    def backward(self, dy):
        if self._mask is None:
            return dy
        if self._scale is not None:
            return dy * self._scale
        return ops.dropout_backward(dy, self._mask, self.rate)

    def random_state(self):
        """The position in the layer's random stream (saved with the model so
        that a resumed run draws the masks an uninterrupted one would)."""
        return {"seed": self._seed, "offset": self._offset}

    def set_random_state(self, state):
        """Restore :meth:`random_state`'s output."""
        self._seed = int(state["seed"])
        self._offset = int(state["offset"])

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate,
                       "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                       "seed": self.seed})
        return config
