"""Batch normalization."""
import numbers

import numpy as np

from cnnc import _kernels as ops, initializers, regularizers
from cnnc._inference_mode import behaves_as_training
from cnnc._masks import check_step_mask
from cnnc.layers.base import Layer

# Keras's backend.epsilon(), added to the count of kept positions.
_COUNT_EPSILON = 1e-7


class BatchNormalization(Layer):
    """Normalizes each channel (``axis``, default last) with the batch
    statistics in training and the moving averages at inference, then
    scales by ``gamma`` and shifts by ``beta``.

    Training: ``y = gamma (x - mean) / sqrt(var + epsilon) + beta`` over the
    batch and spatial axes, and ``moving = momentum * moving + (1 - momentum)
    * batch_stat``. Weights (Keras order): gamma (if ``scale``), beta (if
    ``center``), moving_mean, moving_variance (the last two not trainable).
    A frozen layer (``trainable = False``), or one called with
    ``training=False`` in a model graph, always uses the moving statistics;
    in the second case gamma and beta still get their gradients.

    With a mask (from a layer such as ``Embedding(mask_zero=True)``, of
    shape ``x.shape[:-1]``, feature axis last), the training statistics are
    those of the kept positions only, as Keras computes them; every position
    is normalized with them and the mask is passed on.
    """

    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"axis must be a single axis, got {axis!r}")
            axis = axis[0]
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise ValueError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.gamma = self.beta = None
        self._cache = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"BatchNormalization {self.name!r}: axis={self.axis} is not a "
                             f"feature axis of inputs of shape {input_shape}")
        self._axis = self.axis % ndim
        channels = input_shape[self._axis]
        if channels is None:
            raise ValueError(f"BatchNormalization {self.name!r}: the axis {self.axis} of the "
                             f"input must be defined, got shape {input_shape}")
        if self.scale:
            self.gamma = self.add_weight("gamma", (channels,), self.gamma_initializer,
                                         self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight("beta", (channels,), self.beta_initializer,
                                        self.beta_regularizer)
        self.moving_mean = self.add_weight("moving_mean", (channels,),
                                           self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (channels,),
                                               self.moving_variance_initializer, trainable=False)
        self._ones = np.ones(channels, np.float32)
        self._zeros = np.zeros(channels, np.float32)
        self.built = True

    def _gamma(self):
        return self.gamma.value if self.scale else self._ones

    def _beta(self):
        return self.beta.value if self.center else self._zeros

    def _to_last(self, x):
        if self._axis == x.ndim - 1:
            return x
        return np.ascontiguousarray(np.moveaxis(x, self._axis, -1))

    def _from_last(self, y):
        if self._axis == y.ndim - 1:
            return y
        return np.moveaxis(y, -1, self._axis)

    def forward(self, x, training=False, mask=None):
        channels = self.moving_mean.shape[0]
        if x.ndim <= self._axis or x.shape[self._axis] != channels:
            raise ValueError(f"BatchNormalization {self.name!r} was built for {channels} "
                             f"features on axis {self.axis}, got input of shape {x.shape}")
        xl = self._to_last(x)
        batch_statistics = behaves_as_training(training) and self.trainable
        if mask is not None and batch_statistics:
            if self._axis != x.ndim - 1:
                raise ValueError(f"BatchNormalization {self.name!r}: masked statistics need the "
                                 f"feature axis last, got axis={self.axis}")
            return self._masked_train(xl, check_step_mask(self, x, mask, x.ndim - 1))
        if batch_statistics:
            y, mean, inv_std = ops.batch_norm_train(
                xl, self._gamma(), self._beta(), self.moving_mean.value,
                self.moving_variance.value, momentum=self.momentum, epsilon=self.epsilon)
            self._cache = ("batch", xl, mean, inv_std)
        else:
            y = ops.batch_norm_inference(xl, self._gamma(), self._beta(), self.moving_mean.value,
                                         self.moving_variance.value, epsilon=self.epsilon)
            self._cache = None
            if training:
                self._cache = self._moving_cache(xl)
        return self._from_last(y)

    def _moving_cache(self, xl):
        """What backward needs after normalizing with the moving statistics:
        the scale, and (when gamma or beta train: a trainable layer called
        with training=False in a training pass) the normalized input."""
        inv_std = np.float32(1.0) / np.sqrt(self.moving_variance.value + np.float32(self.epsilon))
        xhat = None
        if any(w is not None and self._trains(w) for w in (self.gamma, self.beta)):
            xhat = (xl - self.moving_mean.value) * inv_std
        return ("moving", (self._gamma() * inv_std).astype(np.float32), xhat)

    def backward_reads_output(self):
        return False  # it keeps its input (or, frozen, the scale alone)

    def forward_updated_weights(self):
        return [self.moving_mean, self.moving_variance] if self.built else []

    def _masked_train(self, x, keep):
        """Training forward with the statistics of the kept positions (float64)."""
        c = x.shape[-1]
        x2 = x.reshape(-1, c).astype(np.float64)
        w = keep.reshape(-1, 1).astype(np.float64)
        count = float(w.sum()) + _COUNT_EPSILON
        mean = (w * x2).sum(axis=0) / count
        var = (w * (x2 - mean) ** 2).sum(axis=0) / count
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        momentum = self.momentum
        self.moving_mean.value[...] = momentum * self.moving_mean.value + (1 - momentum) * mean
        self.moving_variance.value[...] = (momentum * self.moving_variance.value
                                           + (1 - momentum) * var)
        xhat = (x2 - mean) * inv_std
        self._cache = ("masked", xhat, w, count, inv_std)
        y = xhat * self._gamma() + self._beta()
        return y.astype(np.float32).reshape(x.shape)

    def _masked_backward(self, dy):
        """Every position's output depends on the statistics, which depend on
        the kept inputs alone."""
        _, xhat, w, count, inv_std = self._cache
        dy2 = dy.reshape(xhat.shape).astype(np.float64)
        if self.scale:
            self.gamma.grad[...] = (dy2 * xhat).sum(axis=0)
        if self.center:
            self.beta.grad[...] = dy2.sum(axis=0)
        g = dy2 * self._gamma()
        dvar = -0.5 * (g * xhat).sum(axis=0) * inv_std ** 2
        dmean = -inv_std * g.sum(axis=0) - 2.0 * dvar * (w * xhat).sum(axis=0) / (inv_std * count)
        dx = g * inv_std + w * (dmean + 2.0 * dvar * xhat / inv_std) / count
        return dx.astype(np.float32).reshape(dy.shape)

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"BatchNormalization {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        dyl = self._to_last(np.asarray(dy, dtype=np.float32))
        if self._cache[0] == "masked":
            return self._masked_backward(dyl)
        if self._cache[0] == "moving":
            _, scale, xhat = self._cache
            self._zero_grads()
            if xhat is not None:
                rows = dyl.reshape(-1, dyl.shape[-1])
                if self.scale and self._trains(self.gamma):
                    self.gamma.grad[...] = (rows * xhat.reshape(rows.shape)).sum(
                        axis=0, dtype=np.float64)
                if self.center and self._trains(self.beta):
                    self.beta.grad[...] = rows.sum(axis=0, dtype=np.float64)
            return self._from_last(dyl * scale)
        _, xl, mean, inv_std = self._cache
        dx, dgamma, dbeta = ops.batch_norm_backward(xl, dyl, self._gamma(), mean, inv_std)
        if self.scale:
            self.gamma.grad[...] = dgamma
        if self.center:
            self.beta.grad[...] = dbeta
        return self._from_last(dx)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(
                self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        })
        return config
