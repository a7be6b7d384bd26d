"""Embedding lookup layer."""
import numpy as np

from cnnc import initializers, regularizers
from cnnc.layers.base import Layer
from cnnc.layers.kernel_layer import positive_int

# Batches reach layers as float32, whose integers are exact up to 2**24.
_MAX_INPUT_DIM = 2 ** 24


class Embedding(Layer):
    """Maps integer indices to dense vectors, as Keras's Embedding.

    x: indices of any shape ``(N, ...)`` (integers, or floats holding whole
    numbers, as the float32 batches of ``fit`` do), each in
    ``[0, input_dim)``, ``input_dim <= 2**24``; out-of-range or non-integer indices raise a
    ValueError naming the offending value. Output ``(N, ..., output_dim)``.
    Weight: embeddings ``(input_dim, output_dim)``; its gradient adds the
    rows of dy of every occurrence of an index. The indices get no gradient
    (``backward`` returns zeros of x's shape).

    mask_zero: index 0 is padding. ``compute_mask(x)`` then returns the
    boolean mask ``x != 0`` (True where a real token is), as Keras does, and
    ``input_dim`` must count index 0 (vocabulary size + 1). In a model the
    mask follows the output through the layers that support masking to the
    layers that consume it (GlobalAveragePooling1D, GlobalMaxPooling1D,
    BatchNormalization, Softmax) and to the loss and metrics, which skip the padded steps (see
    :mod:`cnnc.models.masking`). The embedding of 0 is still looked up.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = positive_int(input_dim, "input_dim")
        if self.input_dim > _MAX_INPUT_DIM:
            raise ValueError(f"input_dim must be at most {_MAX_INPUT_DIM}: indices travel through "
                             f"models as float32, exact up to 2**24, got {input_dim}")
        self.output_dim = positive_int(output_dim, "output_dim")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.embeddings = None
        self._indices = None

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          self.embeddings_regularizer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _indices_of(self, x):
        x = np.asarray(x)
        if x.dtype.kind in "iu":
            indices = x.astype(np.int64, copy=False)
        elif x.dtype.kind == "f":
            if not np.all(np.isfinite(x)) or not np.array_equal(np.floor(x), x):
                bad = x[~(np.isfinite(x) & (np.floor(x) == x))].flat[0]
                raise ValueError(f"Embedding {self.name!r}: indices must be whole numbers, "
                                 f"got {bad!r}")
            indices = x.astype(np.int64)
        else:
            raise TypeError(f"Embedding {self.name!r}: indices must be integers, got {x.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.input_dim):
            bad = indices[(indices < 0) | (indices >= self.input_dim)].flat[0]
            raise ValueError(f"Embedding {self.name!r}: index {int(bad)} is out of range "
                             f"[0, {self.input_dim}) (input_dim={self.input_dim})")
        return indices

    def forward(self, x, training=False):
        indices = self._indices_of(x)
        self._indices = indices if training else None
        return np.take(self.embeddings.value, indices, axis=0)

    def compute_mask(self, inputs, mask=None):
        """``inputs != 0`` when ``mask_zero`` is set, else None."""
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def backward(self, dy):
        if self._indices is None:
            raise RuntimeError(f"Embedding {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        grad = self.embeddings.grad
        grad.fill(0.0)
        if self._trains(self.embeddings):
            dy = np.asarray(dy, dtype=np.float32).reshape(-1, self.output_dim)
            np.add.at(grad, self._indices.reshape(-1), dy)
        if not self.need_input_gradient:
            return None
        return np.zeros(self._indices.shape, dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        })
        return config
