"""Padding of any non-batch axes: constant, reflect or edge."""
import numpy as np

from cnnc.layers import conv_utils
from cnnc.layers.base import Layer

_MODES = ("constant", "reflect", "edge")


class Pad(Layer):
    """Pads the non-batch axes: ``paddings`` holds one ``(before, after)``
    pair per non-batch axis. mode "constant" fills with ``constant_value``,
    "reflect" mirrors without repeating the edge (NumPy's and ONNX's
    reflect), "edge" repeats the edge. Output: each axis grows by
    ``before + after``. (ONNX's Pad; ZeroPadding2D is the zero-only case.)"""

    def __init__(self, paddings, mode="constant", constant_value=0.0, **kwargs):
        super().__init__(**kwargs)
        try:
            self.paddings = tuple(conv_utils.normalize_tuple(p, 2, "paddings", allow_zero=True)
                                  for p in paddings)
        except TypeError:
            raise ValueError(f"paddings must be (before, after) pairs, got {paddings!r}") from None
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.constant_value = float(constant_value)
        self._sources = {}
        self._x_shape = None

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != len(self.paddings) + 1:
            raise ValueError(f"Pad {self.name!r}: {len(self.paddings)} (before, after) pairs do "
                             f"not match inputs of shape {input_shape}")
        if self.mode == "reflect" and any(n is not None and max(p) >= n for n, p in
                                          zip(input_shape[1:], self.paddings)):
            raise ValueError(f"Pad {self.name!r}: reflect padding {self.paddings} must be "
                             f"smaller than the axes of {input_shape}")
        if self.mode == "edge" and any(n == 0 and max(p) > 0 for n, p in
                                       zip(input_shape[1:], self.paddings)):
            raise ValueError(f"Pad {self.name!r}: edge padding of an empty axis")
        return (input_shape[0],) + tuple(None if n is None else n + b + a for n, (b, a) in
                                         zip(input_shape[1:], self.paddings))

    def _pad_width(self):
        return ((0, 0),) + self.paddings

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape)
        self._x_shape = x.shape
        if self.mode == "constant":
            return np.pad(x, self._pad_width(), constant_values=np.float32(self.constant_value))
        return np.pad(x, self._pad_width(), mode=self.mode)

    def _source(self, shape):
        """For each output element of one sample, the input element it copies."""
        source = self._sources.get(shape)
        if source is None:
            index = np.arange(int(np.prod(shape[1:])), dtype=np.intp).reshape(shape[1:])
            source = np.pad(index, self.paddings, mode=self.mode).reshape(-1)
            self._sources[shape] = source
        return source

    def backward(self, dy):
        shape = self._x_shape
        if shape is None:
            raise RuntimeError(f"Pad {self.name!r}: backward needs a forward first")
        if self.mode == "constant":
            inner = (slice(None),) + tuple(slice(b, b + n) for (b, _), n in
                                           zip(self.paddings, shape[1:]))
            return np.ascontiguousarray(dy[inner])
        source = self._source(shape)
        size = int(np.prod(shape[1:]))
        flat = dy.reshape(dy.shape[0], -1)
        dx = np.empty((shape[0], size), np.float32)
        for i in range(shape[0]):  # sums the gradients of every copy of an element
            dx[i] = np.bincount(source, weights=flat[i], minlength=size)
        return dx.reshape(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"paddings": [list(p) for p in self.paddings], "mode": self.mode,
                       "constant_value": self.constant_value})
        return config
