"""Group normalization."""
import numbers

import numpy as np

from cnnc.layers.affine_norm import AffineNorm, normalize_axes
from cnnc.layers.normalization_math import standardize, standardize_backward


class GroupNormalization(AffineNorm):
    """Splits the channels (``axis``, default last) into ``groups`` groups of
    consecutive channels and normalizes each sample over every other
    non-batch axis and the channels of each group, as Keras's
    GroupNormalization (``groups == C``: instance normalization;
    ``groups == 1``: layer normalization over all features); then ``gamma``
    and ``beta`` per channel. The same in training and inference.

    Input and output: ``(N, ..., C)`` (rank >= 2) with C divisible by
    ``groups``. Weights: gamma (if ``scale``) and beta (if ``center``), each
    ``(C,)``.
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups <= 0:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        if isinstance(axis, (list, tuple)):
            raise ValueError(f"GroupNormalization normalizes one channel axis, got axis={axis!r}")
        super().__init__(axis=axis, epsilon=epsilon, center=center, scale=scale, **kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        name = f"GroupNormalization {self.name!r}"
        if len(input_shape) < 2:
            raise ValueError(f"{name} expects inputs of rank >= 2, got shape {input_shape}")
        self._axis = normalize_axes(self.axis, len(input_shape), name)[0]
        channels = input_shape[self._axis]
        if channels is None:
            raise ValueError(f"{name}: the channel axis of the input must be defined, got shape "
                             f"{input_shape}")
        if channels % self.groups:
            raise ValueError(f"{name}: {channels} channels cannot be split into {self.groups} "
                             f"groups")
        self._channels = channels
        self._build_affine((channels,))

    def _grouped(self, x):
        """x with the channel axis last, as (N, positions, groups, C / groups)."""
        last = np.moveaxis(x, self._axis, -1)
        return np.ascontiguousarray(last).reshape(x.shape[0], -1, self.groups,
                                                  self._channels // self.groups)

    def _ungrouped(self, y, shape):
        moved = list(shape)
        moved.append(moved.pop(self._axis))
        return np.moveaxis(y.reshape(moved), -1, self._axis)

    def forward(self, x, training=False):
        if x.ndim <= self._axis or x.shape[self._axis] != self._channels:
            raise ValueError(f"GroupNormalization {self.name!r} was built for {self._channels} "
                             f"channels on axis {self.axis}, got input of shape {x.shape}")
        xhat, inv_std = standardize(self._grouped(x), (1, 3), self.epsilon)
        self._cache = (xhat, inv_std, x.shape) if training else None
        y = self._affine(xhat, self._param_broadcast())
        return np.ascontiguousarray(self._ungrouped(y, x.shape))

    def _param_broadcast(self):
        return (1, 1, self.groups, self._channels // self.groups)

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"GroupNormalization {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        xhat, inv_std, shape = self._cache
        dyg = self._grouped(np.asarray(dy, dtype=np.float32))
        dxhat = self._affine_backward(dyg, xhat, self._param_broadcast())
        dx = standardize_backward(dxhat, xhat, inv_std, (1, 3))
        return np.ascontiguousarray(self._ungrouped(dx, shape))

    def get_config(self):
        config = super().get_config()
        config["groups"] = self.groups
        return config
