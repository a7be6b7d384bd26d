"""Layers combining several tensors: Add, Subtract, Divide, Multiply, Average,
Maximum, Minimum (same shapes) and Concatenate."""
import numbers

import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.base import Layer


class BaseMerge(Layer):
    """Elementwise combination of a list of same-shape tensors."""

    supports_masking = True

    min_inputs = 2
    max_inputs = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._inputs = None

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(
                shapes[0], (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r} must be called on a list of "
                             f"tensors")
        n = len(shapes)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            expected = (f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs
                        else f"at least {self.min_inputs}")
            raise ValueError(f"{type(self).__name__} {self.name!r} takes {expected} inputs, "
                             f"got {n}")
        first = tuple(shapes[0])[1:]
        for s in shapes[1:]:
            s = tuple(s)[1:]
            if len(s) != len(first) or any(a is not None and b is not None and a != b
                                           for a, b in zip(s, first)):
                raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs of the same "
                                 f"shape, got {[tuple(x) for x in shapes]}")

    def build(self, input_shape):
        self._check_shapes(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check_shapes(input_shape)
        return tuple(input_shape[0])

    def forward(self, inputs, training=False):
        inputs = list(inputs)
        self._check_shapes([x.shape for x in inputs])
        if inputs[0].shape[0] != inputs[-1].shape[0] or any(
                x.shape != inputs[0].shape for x in inputs):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs of the same "
                             f"shape, got {[x.shape for x in inputs]}")
        self._inputs = inputs if training else None
        return self._merge(inputs)

    def backward(self, dy):
        if self._inputs is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(inputs, training=True) first")
        return self._merge_backward(self._inputs, dy)

    def _may_make_mask(self):
        return False  # it only combines its inputs' masks

    def compute_mask(self, inputs, mask=None):
        """A position is kept where every masked input keeps it (as Keras)."""
        if mask is None or all(m is None for m in mask):
            return None
        return np.logical_and.reduce([np.asarray(m, bool) for m in mask if m is not None])


class Add(BaseMerge):
    """Sum of the inputs; the gradient ``dy`` goes unchanged to each."""

    def _merge(self, inputs):
        y = ops.add(inputs[0], inputs[1])
        for x in inputs[2:]:
            ops.add(y, x, out=y)
        return y

    def _merge_backward(self, inputs, dy):
        return [dy] * len(inputs)


class Subtract(BaseMerge):
    """``inputs[0] - inputs[1]``."""

    max_inputs = 2

    def _merge(self, inputs):
        return np.subtract(inputs[0], inputs[1], dtype=np.float32)

    def _merge_backward(self, inputs, dy):
        return [dy, np.negative(dy)]


class Divide(BaseMerge):
    """``inputs[0] / inputs[1]``."""

    max_inputs = 2

    def _merge(self, inputs):
        return np.divide(inputs[0], inputs[1], dtype=np.float32)

    def _merge_backward(self, inputs, dy):
        dx0 = np.divide(dy, inputs[1], dtype=np.float32)
        dx1 = np.negative(dx0 * inputs[0] / inputs[1]).astype(np.float32, copy=False)
        return [dx0, dx1]


class Multiply(BaseMerge):
    """Elementwise product of the inputs."""

    def _merge(self, inputs):
        y = ops.multiply(inputs[0], inputs[1])
        for x in inputs[2:]:
            ops.multiply(y, x, out=y)
        return y

    def _merge_backward(self, inputs, dy):
        grads = []
        for i in range(len(inputs)):
            g = dy
            for j, x in enumerate(inputs):
                if j != i:
                    g = ops.multiply(g, x)
            grads.append(g)
        return grads


class Average(Add):
    """Mean of the inputs."""

    def _merge(self, inputs):
        y = super()._merge(inputs)
        y *= np.float32(1.0 / len(inputs))
        return y

    def _merge_backward(self, inputs, dy):
        return [dy * np.float32(1.0 / len(inputs))] * len(inputs)


class Maximum(BaseMerge):
    """Elementwise maximum; the gradient goes to the first input holding it."""

    reduce = staticmethod(np.maximum)

    def _merge(self, inputs):
        y = np.array(inputs[0], dtype=np.float32, copy=True)
        for x in inputs[1:]:
            self.reduce(y, x, out=y)
        return y

    def _merge_backward(self, inputs, dy):
        winner = np.zeros(inputs[0].shape, np.intp)
        best = np.array(inputs[0], dtype=np.float32, copy=True)
        for i, x in enumerate(inputs[1:], 1):
            better = self.reduce(best, x) != best
            winner[better] = i
            self.reduce(best, x, out=best)
        zero = np.float32(0.0)
        return [np.where(winner == i, dy, zero).astype(np.float32) for i in range(len(inputs))]


class Minimum(Maximum):
    """Elementwise minimum; the gradient goes to the first input holding it."""

    reduce = staticmethod(np.minimum)


class Concatenate(Layer):
    """Joins the inputs along ``axis`` (default the last, the channels);
    the other axes must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise ValueError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self._sizes = None

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) < 2 or not isinstance(
                shapes[0], (list, tuple)):
            raise ValueError(f"Concatenate {self.name!r} must be called on a list of at least "
                             f"2 tensors")
        rank = len(shapes[0])
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis={self.axis} is not a non-batch "
                             f"axis of inputs of rank {rank}")
        axis = self.axis % rank
        for s in shapes:
            if len(s) != rank or any(i != axis and a is not None and b is not None and a != b
                                     for i, (a, b) in enumerate(zip(s, shapes[0]))):
                raise ValueError(f"Concatenate {self.name!r}: inputs must match except on axis "
                                 f"{self.axis}, got {[tuple(x) for x in shapes]}")
        return axis

    def build(self, input_shape):
        self._check_shapes(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        axis = self._check_shapes(input_shape)
        sizes = [s[axis] for s in input_shape]
        out = list(input_shape[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def forward(self, inputs, training=False):
        inputs = list(inputs)
        axis = self._check_shapes([x.shape for x in inputs])
        self._axis = axis
        self._sizes = [x.shape[axis] for x in inputs]
        return ops.concatenate(inputs, axis=axis)

    def backward(self, dy):
        if self._sizes is None:
            raise RuntimeError(f"Concatenate {self.name!r}: backward needs a forward first")
        if self._axis == dy.ndim - 1:
            return list(ops.split_channels(dy, self._sizes))
        return np.split(dy, np.cumsum(self._sizes)[:-1], axis=self._axis)

    supports_masking = True

    def _may_make_mask(self):
        return False  # it only combines its inputs' masks

    def compute_mask(self, inputs, mask=None):
        """The inputs' masks (all True for an input without one), each
        widened to its input's shape, joined along ``axis`` and reduced with
        ``any`` over the last axis (as Keras)."""
        if mask is None or all(m is None for m in mask):
            return None
        inputs = [np.asarray(x) for x in inputs]
        full = []
        for x, m in zip(inputs, mask):
            if m is None:
                full.append(np.ones(x.shape, bool))
                continue
            m = np.asarray(m, bool)
            if m.ndim < x.ndim:
                m = np.broadcast_to(m[..., None], x.shape)
            full.append(m)
        return np.concatenate(full, axis=self._check_shapes([x.shape for x in inputs])).any(axis=-1)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


# Keras's functional forms: ``layers.add([a, b])`` is ``layers.Add()([a, b])``.
def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
