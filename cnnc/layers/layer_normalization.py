"""Layer normalization."""
from cnnc.layers.affine_norm import AffineNorm, normalize_axes
from cnnc.layers.normalization_math import standardize, standardize_backward


class LayerNormalization(AffineNorm):
    """Normalizes each sample over ``axis`` (default the last), as Keras's
    LayerNormalization: ``y = gamma (x - mean) / sqrt(var + epsilon) +
    beta`` with the mean and (biased) variance of each sample over the
    ``axis`` axes, the same in training and inference.

    Input and output: any shape ``(N, ...)``. Weights: gamma (if ``scale``)
    and beta (if ``center``), of shape ``[input_shape[a] for a in axis]``
    (``(C,)`` for the default axis=-1).
    """

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._axes = normalize_axes(self.axis, len(input_shape), f"LayerNormalization {self.name!r}")
        param_shape = tuple(input_shape[a] for a in self._axes)
        if any(s is None for s in param_shape):
            raise ValueError(f"LayerNormalization {self.name!r}: the normalized axes of the input "
                             f"must be defined, got shape {input_shape}")
        self._ndim = len(input_shape)
        self._param_shape = param_shape
        self._build_affine(param_shape)

    def _broadcast_shape(self, x):
        return tuple(x.shape[i] if i in self._axes else 1 for i in range(x.ndim))

    def forward(self, x, training=False):
        if x.ndim != self._ndim or any(x.shape[a] != s for a, s in
                                       zip(self._axes, self._param_shape)):
            raise ValueError(f"LayerNormalization {self.name!r} was built for axes {self._axes} "
                             f"of size {self._param_shape}, got input of shape {x.shape}")
        axes = tuple(self._axes)
        xhat, inv_std = standardize(x, axes, self.epsilon)
        self._cache = (xhat, inv_std) if training else None
        return self._affine(xhat, self._broadcast_shape(x))

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"LayerNormalization {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        xhat, inv_std = self._cache
        dxhat = self._affine_backward(dy, xhat, self._broadcast_shape(xhat))
        return standardize_backward(dxhat, xhat, inv_std, tuple(self._axes))
