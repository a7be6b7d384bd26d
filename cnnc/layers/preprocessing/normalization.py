"""Feature-wise normalization with statistics learned by adapt()."""
import numbers

import numpy as np

from cnnc.layers.base import Layer

EPSILON = 1e-7


class Normalization(Layer):
    """``y = (x - mean) / sqrt(variance)`` (``invert=True``: the inverse,
    ``x * sqrt(variance) + mean``), in training and inference alike.

    axis: the axis or axes that keep their own statistics (default -1: one
    mean and variance per channel); None normalizes with one scalar. mean,
    variance: given statistics (broadcastable to the kept axes), or None to
    learn them with :meth:`adapt` before use. The statistics are the layer's
    two non-trainable weights, so they are saved with the model. The
    denominator is at least 1e-7. Any input shape; output the same.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError("pass both mean and variance, or neither (and call adapt())")
        self.input_mean = None if mean is None else np.asarray(mean, np.float64)
        self.input_variance = None if variance is None else np.asarray(variance, np.float64)
        if self.input_variance is not None and (self.input_variance < 0).any():
            raise ValueError("variance must be >= 0")
        self.invert = bool(invert)

    def _stat_shape(self, input_shape):
        rank = len(input_shape)
        kept = tuple(a % rank for a in self.axis)
        if any(a == 0 for a in kept) or len(set(kept)) != len(kept):
            raise ValueError(f"Normalization axis {self.axis} must name distinct non-batch axes "
                             f"of inputs of shape {tuple(input_shape)}")
        for a in kept:
            if input_shape[a] is None:
                raise ValueError(f"Normalization needs a known size on axis {a}, got {tuple(input_shape)}")
        return tuple(input_shape[a] if a in kept else 1 for a in range(1, rank)), kept

    def build(self, input_shape):
        shape, self._kept = self._stat_shape(input_shape)
        self.mean = self.add_weight("mean", shape, initializer="zeros", trainable=False)
        # NaN marks "no statistics yet"; adapt(), given values or loaded
        # weights replace it.
        self.variance = self.add_weight("variance", shape, trainable=False,
                                        initializer=lambda s: np.full(s, np.nan, np.float32))
        if self.input_mean is not None:
            self.mean.value[...] = np.broadcast_to(self.input_mean, shape)
            self.variance.value[...] = np.broadcast_to(self.input_variance, shape)
        self.built = True

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the mean and variance of ``data``: an array (N, ...) or an
        iterable of batches (arrays, or (x, y) tuples such as a
        cnnc.data.Dataset). Statistics are accumulated in float64."""
        if isinstance(data, np.ndarray) or not hasattr(data, "__iter__"):
            data = np.asarray(data)
            size = batch_size or max(1, len(data))
            batches = (data[i:i + size] for i in range(0, len(data), size))
        else:
            batches = iter(data)
        count, mean, m2 = 0, None, None
        for step, batch in enumerate(batches):
            if steps is not None and step >= steps:
                break
            if isinstance(batch, tuple):
                batch = batch[0]
            batch = np.asarray(batch, np.float64)
            if not self.built:
                self.build((None,) + batch.shape[1:])
            shape, kept = self._stat_shape((None,) + batch.shape[1:])
            reduce = tuple(a for a in range(batch.ndim) if a not in kept)
            n = int(np.prod([batch.shape[a] for a in reduce]))
            b_mean = batch.mean(axis=reduce, keepdims=True)[0]
            b_m2 = ((batch - b_mean[None]) ** 2).sum(axis=reduce, keepdims=True)[0]
            if mean is None:
                count, mean, m2 = n, b_mean, b_m2
                continue
            # Chan et al.'s merge of two partial means and sums of squares.
            delta = b_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + b_m2 + delta ** 2 * (count * n / total)
            count = total
        if mean is None or count == 0:
            raise ValueError("Normalization.adapt: no data")
        self.mean.value[...] = mean
        self.variance.value[...] = m2 / count

    def _check_ready(self):
        if np.isnan(self.variance.value).any():
            raise ValueError(f"Normalization layer {self.name!r} has no statistics: call adapt(data) "
                             f"or pass mean= and variance=")

    def forward(self, x, training=False):
        self._check_ready()
        std = np.maximum(np.sqrt(self.variance.value), np.float32(EPSILON))
        if self.invert:
            return (x * std + self.mean.value[None]).astype(np.float32)
        return ((x - self.mean.value[None]) / std[None]).astype(np.float32)

    def backward(self, dy):
        std = np.maximum(np.sqrt(self.variance.value), np.float32(EPSILON))
        return (dy * std[None] if self.invert else dy / std[None]).astype(np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis[0] if len(self.axis) == 1 else (list(self.axis) or None),
            "mean": None if self.input_mean is None else self.input_mean.tolist(),
            "variance": None if self.input_variance is None else self.input_variance.tolist(),
            "invert": self.invert})
        return config
