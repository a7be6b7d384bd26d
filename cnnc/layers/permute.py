"""Permutation of the non-batch axes."""
import numpy as np

from cnnc.layers.base import Layer


class Permute(Layer):
    """Reorders the non-batch axes: ``dims`` is a permutation of 1..rank-1
    (1-based, as Keras), e.g. ``Permute((2, 1))`` swaps the two axes of
    ``(N, A, B)``."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            raise ValueError(f"dims must be a tuple of ints, got {dims!r}") from None
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"dims must be a permutation of 1..{len(dims)}, got {dims!r}")
        self.dims = dims
        self._perm = (0,) + dims
        self._inverse = tuple(int(i) for i in np.argsort(self._perm))

    def build(self, input_shape):
        if len(tuple(input_shape)) != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} do not match inputs of "
                             f"shape {tuple(input_shape)}")
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return tuple(input_shape[i] for i in self._perm)

    def forward(self, x, training=False):
        if x.ndim != len(self._perm):
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} do not match inputs of "
                             f"shape {x.shape}")
        return np.ascontiguousarray(x.transpose(self._perm))

    def backward(self, dy):
        return np.ascontiguousarray(dy.transpose(self._inverse))

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config
