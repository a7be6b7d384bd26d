"""Layers combining several tensors: Add, Subtract, Divide, Multiply, Average,
Maximum, Minimum (one shape, or shapes that broadcast) and Concatenate."""
import numbers

import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.base import Layer


def broadcast_shape(shapes, what="inputs"):
    """The shape (batch first) that ``shapes`` broadcast to: the batch axes
    match, the other axes follow NumPy's rule aligned on the right (a
    lower-rank input gains 1s after its batch axis). None is an unknown
    size. Raises ValueError naming ``what`` when they do not broadcast."""
    shapes = [tuple(s) for s in shapes]
    rank = max(len(s) for s in shapes)
    columns = zip(*[(1,) * (rank - len(s)) + s[1:] for s in shapes])
    out = []
    for axis, sizes in enumerate(columns, 1):
        known = {d for d in sizes if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"{what} of shapes {shapes} do not broadcast: axis {axis} has "
                             f"sizes {sorted(known)}")
        out.append(known.pop() if known else None if None in sizes else 1)
    return (shapes[0][0],) + tuple(out)


def unbroadcast(grad, shape):
    """``grad`` (of the broadcast result) summed back onto an input of
    ``shape`` (batch first): over the axes the input had as 1 or lacked."""
    if grad.shape == tuple(shape):
        return grad
    inner = grad.ndim - len(shape)
    full = (shape[0],) + (1,) * inner + tuple(shape[1:])
    axes = tuple(a for a in range(1, grad.ndim) if full[a] == 1 and grad.shape[a] != 1)
    summed = grad.sum(axis=axes, keepdims=True, dtype=np.float32) if axes else grad
    return np.ascontiguousarray(summed.reshape(shape), dtype=np.float32)


class BaseMerge(Layer):
    """Elementwise combination of a list of tensors of one shape, or of
    shapes that broadcast against each other (NumPy's rule on the axes after
    the batch axis, as Keras's merge layers: ``(N, H, W, C) * (N, 1, 1, C)``,
    the squeeze-and-excitation scaling). The output has the broadcast shape;
    each input's gradient is summed back over the axes it was broadcast
    along."""

    supports_masking = True

    min_inputs = 2
    max_inputs = None
    # Whether _merge_backward reads the inputs (Add needs only their count).
    _backward_reads_inputs = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._inputs = None
        self._shapes = None

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
        if any(len(s) < 1 for s in shapes):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs with a batch "
                             f"axis, got {[tuple(x) for x in shapes]}")
        return broadcast_shape(shapes, f"{type(self).__name__} {self.name!r}: inputs")

    def build(self, input_shape):
        self._check_shapes(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._check_shapes(input_shape)

    def forward(self, inputs, training=False):
        inputs = list(inputs)
        shape = self._check_shapes([x.shape for x in inputs])
        if any(x.shape[0] != inputs[0].shape[0] for x in inputs):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs of one batch "
                             f"size, got {[x.shape for x in inputs]}")
        self._inputs = None
        self._shapes = [x.shape for x in inputs]  # what each gradient is summed back to
        if training:
            self._inputs = inputs if self._backward_reads_inputs else [None] * len(inputs)
        if any(x.shape != shape for x in inputs):
            # lower-rank inputs gain their 1s after the batch axis, then NumPy broadcasts
            inputs = [x.reshape((x.shape[0],) + (1,) * (len(shape) - x.ndim) + x.shape[1:])
                      for x in inputs]
        return self._merge(inputs)

    def backward(self, dy):
        if self._inputs is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(inputs, training=True) first")
        inputs, shapes = self._inputs, self._shapes
        if all(s == dy.shape for s in shapes):
            return self._merge_backward(inputs, dy)
        expanded = [x if x is None else x.reshape((s[0],) + (1,) * (dy.ndim - len(s)) + s[1:])
                    for x, s in zip(inputs, shapes)]
        grads = self._merge_backward(expanded, dy)
        return [unbroadcast(np.broadcast_to(g, dy.shape) if g.shape != dy.shape else g, s)
                for g, s in zip(grads, shapes)]

    def _may_make_mask(self):
        return False  # it only combines its inputs' masks

    def compute_mask(self, inputs, mask=None):
        """A position is kept where every masked input keeps it (as Keras)."""
        if mask is None or all(m is None for m in mask):
            return None
        return np.logical_and.reduce([np.asarray(m, bool) for m in mask if m is not None])


class Add(BaseMerge):
    """Sum of the inputs; the gradient ``dy`` goes unchanged to each. Inside
    a model, the sum is written over an input no other layer reads (the
    residual branch of a ResNet block), not into a new array."""

    _backward_reads_inputs = False
    _y = None  # the output, when forward applied a ReLU to it

    def writes_in_place(self):
        return True

    def backward_reads_output(self):
        return False

    def fuses_relu(self):
        return True  # inputs of one shape

    def _merge(self, inputs):
        self._y = None
        if any(x.shape != inputs[0].shape for x in inputs):
            # shapes that broadcast: NumPy's sums, into a new array
            y = np.add(inputs[0], inputs[1], dtype=np.float32)
            for x in inputs[2:]:
                y = np.add(y, x, dtype=np.float32)
            return y
        # A model may ask for the ReLU after the sum in its last pass;
        # backward then masks dy by the output (kept in _y).
        relu = self._fuse_relu
        last = len(inputs) - 2
        # IEEE addition is commutative, so the first sum may go into either
        # of its operands with the same bits as a fresh a + b (not into a
        # later input: it is still to be added).
        target = next((i for i in (0, 1) if self._may_overwrite(inputs, i)), None)
        y = ops.add(inputs[0], inputs[1], out=None if target is None else inputs[target],
                    activation="relu" if relu and last == 0 else None)
        for i, x in enumerate(inputs[2:], 1):
            ops.add(y, x, out=y, activation="relu" if relu and i == last else None)
        if relu:
            self._y = y
            self._relu_applied = True
        return y

    def _merge_backward(self, inputs, dy):
        if self._y is not None:
            # one masked gradient, the same array for every input
            dy = ops.relu_backward(self._y, dy)
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
        y = None
        for x in inputs[1:]:
            a = inputs[0] if y is None else y
            if x.shape == a.shape:  # the kernel for one shape, else NumPy's broadcasting
                y = ops.multiply(a, x, out=y)
            else:
                y = np.multiply(a, x, dtype=np.float32)
        return y

    def _merge_backward(self, inputs, dy):
        grads = []
        for i in range(len(inputs)):
            g = dy
            for j, x in enumerate(inputs):
                if j != i:
                    g = ops.multiply(g, x) if g.shape == x.shape else np.multiply(g, x,
                                                                                   dtype=np.float32)
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
        y = self.reduce(inputs[0], inputs[1], dtype=np.float32)
        for x in inputs[2:]:
            y = self.reduce(y, x, dtype=np.float32)
        return y

    def _merge_backward(self, inputs, dy):
        winner = np.zeros(dy.shape, np.intp)
        best = np.array(np.broadcast_to(inputs[0], dy.shape), dtype=np.float32, copy=True)
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
