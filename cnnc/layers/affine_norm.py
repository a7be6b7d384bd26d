"""What LayerNormalization and GroupNormalization share: epsilon, the
per-feature scale gamma and offset beta, their initializers and
regularizers, and the config."""
import numbers

import numpy as np

from cnnc import initializers, regularizers
from cnnc.layers.base import Layer


def normalize_axes(axis, ndim, name):
    """``axis`` (an int or a sequence of ints) as sorted non-negative axes of
    an ``ndim``-D input, none of them the batch axis."""
    values = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not values or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                             for a in values):
        raise ValueError(f"{name}: axis must be an int or a list of ints, got {axis!r}")
    axes = sorted({int(a) % ndim for a in values if -ndim <= a < ndim})
    if len(axes) != len(values) or 0 in axes:
        raise ValueError(f"{name}: axis {axis!r} is not a set of feature axes of inputs of "
                         f"rank {ndim}")
    return axes


class AffineNorm(Layer):
    """Base of normalizations ending in ``gamma * xhat + beta`` with
    weights (Keras order) gamma (if ``scale``) then beta (if ``center``)."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not float(epsilon) > 0.0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.gamma = self.beta = None
        self._cache = None

    def _build_affine(self, param_shape):
        if self.scale:
            self.gamma = self.add_weight("gamma", param_shape, self.gamma_initializer,
                                         self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight("beta", param_shape, self.beta_initializer,
                                        self.beta_regularizer)
        self.built = True

    def _affine(self, xhat, broadcast_shape):
        y = xhat
        if self.scale:
            y = y * self.gamma.value.reshape(broadcast_shape)
        if self.center:
            y = y + self.beta.value.reshape(broadcast_shape)
        return np.ascontiguousarray(y, dtype=np.float32)

    def _affine_backward(self, dy, xhat, broadcast_shape):
        """Store dgamma and dbeta; return the gradient with respect to xhat."""
        reduce_axes = tuple(i for i, s in enumerate(broadcast_shape) if s == 1)
        if self.scale:
            self.gamma.grad[...] = ((dy * xhat).sum(axis=reduce_axes).reshape(self.gamma.shape)
                                    if self._trains(self.gamma) else 0.0)
        if self.center:
            self.beta.grad[...] = (dy.sum(axis=reduce_axes).reshape(self.beta.shape)
                                   if self._trains(self.beta) else 0.0)
        if self.scale:
            return dy * self.gamma.value.reshape(broadcast_shape)
        return dy

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        })
        return config
