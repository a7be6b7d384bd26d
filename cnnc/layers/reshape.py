"""Reshape the non-batch axes."""
import math
import numbers

from cnnc.layers.base import Layer


class Reshape(Layer):
    """``(N, *in_shape)`` -> ``(N, *target_shape)``; one entry of
    target_shape may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target = tuple(target_shape)
        except TypeError:
            raise ValueError(f"target_shape must be a tuple of ints, got {target_shape!r}") from None
        if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in target):
            raise ValueError(f"target_shape must be a tuple of ints, got {target_shape!r}")
        target = tuple(int(d) for d in target)
        if any(d == 0 or d < -1 for d in target) or target.count(-1) > 1:
            raise ValueError(f"target_shape must hold positive ints and at most one -1, "
                             f"got {target_shape!r}")
        self.target_shape = target
        self._x_shape = None

    def _resolve(self, input_shape):
        rest = tuple(input_shape)[1:]
        if None in rest:
            return tuple(None if d == -1 else d for d in self.target_shape)
        size = math.prod(rest)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {rest} to "
                                 f"{self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape {rest} ({size} values) to "
                             f"{self.target_shape} ({known} values)")
        return self.target_shape

    def build(self, input_shape):
        self._resolve(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape)[0],) + self._resolve(input_shape)

    def forward(self, x, training=False):
        self._x_shape = x.shape
        return x.reshape((x.shape[0],) + self._resolve(x.shape))

    def backward(self, dy):
        if self._x_shape is None:
            raise RuntimeError(f"Reshape {self.name!r}: backward needs a forward first")
        return dy.reshape(self._x_shape)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config
