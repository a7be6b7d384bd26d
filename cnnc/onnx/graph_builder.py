"""Collects the nodes and initializers of an ONNX graph under construction."""
import numpy as np

from cnnc.onnx import layout


class Value:
    """A cnnc tensor as it lives in the ONNX graph: the ONNX name and
    ``perm``, the ONNX tensor being the cnnc tensor transposed by ``perm``
    (channels-first for the convolutions, as they are in ONNX), and the cnnc
    shape (batch None)."""

    __slots__ = ("name", "perm", "shape")

    def __init__(self, name, perm, shape):
        self.name, self.perm, self.shape = name, tuple(perm), tuple(shape)

    @property
    def rank(self):
        return len(self.shape)


class GraphBuilder:
    """Adds nodes with unique names; ``const`` stores float32/int64
    initializers; ``transposed`` gives a Value in another axis order (once
    per value and order)."""

    def __init__(self, onnx, opset):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._names = set()
        self._transposes = {}

    def unique(self, hint):
        hint = "".join(c if c.isalnum() or c in "_./" else "_" for c in str(hint)) or "t"
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, value, hint, dtype=np.float32):
        name = self.unique(hint)
        array = np.array(value, dtype, order="C")  # keeps 0-d scalars 0-d
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def ints(self, values, hint):
        return self.const(np.asarray(values, np.int64), hint, np.int64)

    def node(self, op, inputs, hint, outputs=1, **attrs):
        """Add ``op`` on ``inputs`` (names; "" for an omitted optional
        input); returns its output name (a list when ``outputs`` > 1)."""
        names = [self.unique(f"{hint}" if outputs == 1 else f"{hint}_{i}")
                 for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op, list(inputs), names,
                                                name=self.unique(f"{hint}/{op}"), **attrs))
        return names[0] if outputs == 1 else names

    def in_perm(self, value, perm):
        """``value`` with its ONNX tensor being the cnnc tensor transposed by
        ``perm`` (a Transpose node when the order differs)."""
        perm = tuple(perm)
        if value.perm == perm:
            return value
        key = (value.name, perm)
        if key not in self._transposes:
            # onnx_old = cnnc.T(old); want cnnc.T(perm) = onnx_old.T(inv(old)).T(perm)
            step = layout.compose(layout.inverse(value.perm), perm)
            name = self.node("Transpose", [value.name], f"{value.name}_t", perm=list(step))
            self._transposes[key] = Value(name, perm, value.shape)
        return self._transposes[key]

    def channels_first(self, value):
        return self.in_perm(value, layout.channels_first(value.rank))

    def channels_last(self, value):
        return self.in_perm(value, layout.identity(value.rank))
