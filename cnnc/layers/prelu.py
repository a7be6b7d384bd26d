"""Parametric ReLU layer."""
import numpy as np

from cnnc import initializers, regularizers
from cnnc.layers.base import Layer


class PReLU(Layer):
    """``y = x`` for ``x >= 0``, ``alpha * x`` below, with a learned
    ``alpha`` per element of the non-batch shape, as Keras's PReLU.

    shared_axes: non-batch axes (1-based) along which one alpha is shared,
    e.g. ``[1, 2]`` for one alpha per channel of ``(N, H, W, C)`` images
    (PyTorch's and ONNX's usual PReLU). Weight: alpha of the input shape
    without the batch axis, 1 along the shared axes.
    """

    supports_masking = True

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if alpha_constraint is not None:
            raise ValueError("PReLU: alpha_constraint is not supported (pass None)")
        if shared_axes is None:
            shared_axes = ()
        elif isinstance(shared_axes, int):
            shared_axes = (shared_axes,)
        self.shared_axes = tuple(sorted(int(a) for a in shared_axes))
        self.alpha = None
        self._x = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        rank = len(input_shape)
        if any(not 1 <= a < rank for a in self.shared_axes):
            raise ValueError(f"PReLU {self.name!r}: shared_axes {list(self.shared_axes)} must be "
                             f"non-batch axes of inputs of rank {rank}")
        shape = [1 if i in self.shared_axes else input_shape[i] for i in range(1, rank)]
        if None in shape:
            raise ValueError(f"PReLU {self.name!r}: the input axes without a shared alpha must "
                             f"be defined, got shape {input_shape}")
        self.alpha = self.add_weight("alpha", shape, self.alpha_initializer,
                                     self.alpha_regularizer)
        self.built = True

    def forward(self, x, training=False):
        if x.shape[1:] != np.broadcast_shapes(x.shape[1:], self.alpha.shape):
            raise ValueError(f"PReLU {self.name!r} was built for inputs matching alpha "
                             f"{self.alpha.shape}, got shape {x.shape}")
        self._x = x if training else None
        return np.where(x >= 0, x, self.alpha.value * x).astype(np.float32, copy=False)

    def backward(self, dy):
        x = self._x
        if x is None:
            raise RuntimeError(f"PReLU {self.name!r}: backward needs a forward(x, training=True) "
                               f"first")
        negative = x < 0
        if self._trains(self.alpha):
            full = np.where(negative, dy * x, np.float32(0.0))
            axes = (0,) + self.shared_axes
            self.alpha.grad[...] = full.sum(axis=axes).reshape(self.alpha.grad.shape)
        else:
            self.alpha.grad.fill(0.0)
        return np.where(negative, dy * self.alpha.value, dy).astype(np.float32, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update({"alpha_initializer": initializers.serialize(self.alpha_initializer),
                       "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                       "alpha_constraint": None,
                       "shared_axes": list(self.shared_axes) or None})
        return config
