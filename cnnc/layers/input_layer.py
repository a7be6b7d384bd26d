"""The entry point of a functional model: ``Input(shape)``."""
import numpy as np

from cnnc.layers.base import Layer, Node, SymbolicTensor


class InputLayer(Layer):
    """Holds the shape of a model input; the identity on arrays.

    shape: per-sample shape, e.g. ``(28, 28, 1)`` (or ``input_shape=``);
    batch_size: optional fixed batch size; batch_shape: the full shape with
    the batch axis (alternative to shape + batch_size).

    Its single :class:`Node` has no inputs and one output, the tensor
    returned by :func:`Input`.
    """

    def __init__(self, shape=None, batch_size=None, batch_shape=None, name=None, dtype=None,
                 input_shape=None, batch_input_shape=None, **kwargs):
        if shape is None:
            shape = input_shape
        if batch_shape is None:
            batch_shape = batch_input_shape
        if batch_shape is not None:
            batch_shape = _check_dims(batch_shape, "batch_shape", allow_batch_none=True)
        elif shape is not None:
            if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                           or batch_size <= 0):
                raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
            batch_shape = (batch_size,) + _check_dims(shape, "shape")
        else:
            raise ValueError("InputLayer needs shape= (or batch_shape=)")
        super().__init__(name=name, dtype=dtype, batch_input_shape=batch_shape, **kwargs)
        self.built = True
        node = Node(self, [], [])
        node.outputs = [SymbolicTensor(batch_shape, node, 0, name=self.name)]
        self._inbound_nodes.append(node)

    @property
    def batch_shape(self):
        return self._batch_input_shape

    def compute_output_shape(self, input_shape):
        return self._batch_input_shape

    def forward(self, x, training=False):
        x = np.asarray(x, dtype=np.float32)
        expected = self._batch_input_shape
        if x.ndim != len(expected) or any(
                e is not None and e != d for e, d in zip(expected, x.shape)):
            raise ValueError(f"input {self.name!r} expects arrays of shape {expected}, "
                             f"got {x.shape}")
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self._batch_input_shape),
                "dtype": "float32"}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)


def _check_dims(shape, name, allow_batch_none=False):
    try:
        dims = tuple(shape)
    except TypeError:
        dims = (shape,)
    for i, d in enumerate(dims):
        if d is None and (not allow_batch_none or i > 0):
            raise ValueError(f"{name} must be fully defined (only the batch axis may be None), "
                             f"got {shape!r}")
        if d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool)
                              or d <= 0):
            raise ValueError(f"{name} must contain positive integers, got {shape!r}")
    return tuple(None if d is None else int(d) for d in dims)


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
    """A symbolic tensor to start a functional model: ``x = Input((28, 28, 1))``.

    shape: per-sample shape (without the batch axis). Returns a
    :class:`SymbolicTensor` of shape ``(batch_size, *shape)``.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, batch_shape=batch_shape, name=name,
                       dtype=dtype)
    return layer._inbound_nodes[0].outputs[0]
