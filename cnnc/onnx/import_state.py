"""What one ONNX import tracks: the tensors built so far (cnnc symbols with
their axis order), the constants, the node being converted, and the names
given to layers."""
import re

import numpy as np

from cnnc.onnx import layout


class UnsupportedError(ValueError):
    """An ONNX op, attribute or pattern that cnnc cannot import."""


class Tensor:
    """An ONNX tensor held in the cnnc graph: ``symbol`` (a cnnc
    SymbolicTensor) is the ONNX tensor transposed by ``perm``; ``shape`` is
    the ONNX shape (None where unknown). The symbol's first axis is the
    batch, so the ONNX tensor's batch axis is ``perm[0]``: 0 except after a
    Transpose that moves it (which only Transpose, Gemm and the elementwise
    activations accept, e.g. the x^T of ``Gemm(transA=1)``). ``row_order``:
    set on a Flatten whose cnnc element order differs from ONNX's (the
    following Gemm permutes its weight rows instead of the data)."""

    __slots__ = ("symbol", "perm", "shape", "row_order")

    def __init__(self, symbol, perm, shape, row_order=None):
        self.symbol, self.perm, self.shape = symbol, tuple(perm), tuple(shape)
        self.row_order = row_order

    @property
    def rank(self):
        return len(self.shape)

    @property
    def batch_axis(self):
        return self.perm[0]


class Attributes:
    """A node's attributes; each converter reads the ones it knows, and any
    left unread with a non-default value makes the import fail."""

    def __init__(self, onnx, node):
        self.node = node
        self._values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        self._read = set()

    def get(self, name, default=None):
        self._read.add(name)
        value = self._values.get(name, default)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value

    def check_all_read(self):
        left = sorted(set(self._values) - self._read)
        if left:
            raise UnsupportedError(f"ONNX {self.node.op_type} node {self.node.name!r}: "
                                   f"unsupported attribute(s) {left}")


class Importer:
    """State of one import: ONNX tensor name -> Tensor or constant array."""

    def __init__(self, onnx, proto, input_layout):
        self.onnx = onnx
        self.proto = proto
        self.input_layout = input_layout
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                          None)
        if self.opset is None:
            raise UnsupportedError("the ONNX model imports no default-domain opset")
        self.tensors = {}
        self.constants = {}
        self.consumers = {}
        self.graph_outputs = set()
        self.fused_adds = {}  # Add nodes folded into a Dense bias -> the Dense output
        self._names = set()
        self.node = None

    # -- names and failures ---------------------------------------------------
    def fail(self, message):
        node = self.node
        raise UnsupportedError(f"ONNX {node.op_type} node {node.name!r}: {message}")

    def layer_name(self, suffix=""):
        base = self.node.name or f"{self.node.op_type}_{len(self._names)}"
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", base).strip("_.") or "node"
        name = base + suffix
        i = 1
        while name in self._names:
            i += 1
            name = f"{base}{suffix}_{i}"
        self._names.add(name)
        return name

    # -- values -----------------------------------------------------------------
    def is_constant(self, name):
        return name in self.constants

    def constant(self, name, what="input"):
        if name not in self.constants:
            self.fail(f"the {what} {name!r} must be a constant (an initializer or Constant)")
        return self.constants[name]

    def tensor(self, name, batch_anywhere=False):
        """The Tensor called ``name``; unless ``batch_anywhere``, one whose
        batch axis is its first."""
        if name in self.constants:
            self.fail(f"the input {name!r} is a constant where a tensor computed from the model "
                      f"inputs is expected")
        if name not in self.tensors:
            self.fail(f"unknown input {name!r}")
        t = self.tensors[name]
        if t.batch_axis != 0 and not batch_anywhere:
            self.fail(f"the input {name!r} holds the batch on axis {t.batch_axis} (after a "
                      f"Transpose); only Transpose, Gemm and elementwise activations read "
                      f"such a tensor")
        return t

    def in_perm(self, tensor, perm):
        """``tensor`` held with ``perm`` (a Permute layer if needed)."""
        perm = tuple(perm)
        if tensor.perm == perm:
            return tensor
        if perm[0] != tensor.perm[0]:
            self.fail(f"a tensor of shape {tensor.shape} would need its batch axis moved")
        from cnnc.layers import Permute
        step = layout.compose(layout.inverse(tensor.perm), perm)
        symbol = Permute(step[1:], name=self.layer_name("_permute"))(tensor.symbol)
        return Tensor(symbol, perm, tensor.shape)

    def onnx_order(self, tensor):
        return self.in_perm(tensor, layout.identity(tensor.rank))

    def channels_last(self, tensor):
        return self.in_perm(tensor, layout.channels_last(tensor.rank))

    def apply(self, layer, tensors, perm, shape, weights=None):
        """Call ``layer`` on the symbols of ``tensors`` and wrap the result."""
        symbols = [t.symbol for t in tensors]
        out = layer(symbols if len(symbols) > 1 else symbols[0])
        if weights is not None:
            layer.set_weights(weights)
        return Tensor(out, perm, shape)

    def set_output(self, index, value):
        name = self.node.output[index]
        if isinstance(value, (np.ndarray, np.generic)):
            self.constants[name] = np.asarray(value)
        else:
            self.tensors[name] = value

    def only_consumers(self, name, op_types):
        """The nodes reading ``name`` if all have one of ``op_types`` and it
        is not a graph output; else None."""
        nodes = self.consumers.get(name, [])
        if not nodes or name in self.graph_outputs or any(n.op_type not in op_types
                                                          for n in nodes):
            return None
        return nodes


def read_array(onnx, tensor_proto):
    try:
        array = onnx.numpy_helper.to_array(tensor_proto)
    except Exception as error:
        raise ValueError(f"ONNX tensor {tensor_proto.name!r} cannot be read: {error}") from None
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    raise UnsupportedError(f"ONNX constant {tensor_proto.name!r} has dtype {array.dtype}")
