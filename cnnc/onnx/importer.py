"""ONNX file -> trainable cnnc functional Model.

The graph is rebuilt from cnnc layers, channels-last inside: each ONNX
tensor is held as a cnnc tensor whose axes are the ONNX axes in some order
(``perm``), so convolutions, pooling and batch normalization run on NHWC
tensors, elementwise layers take whatever order comes, and a Permute layer
appears only where an ONNX op needs an order the tensor does not have.
Weights are converted to cnnc's layouts once, here.
"""
import os
import re

import numpy as np

from cnnc.onnx import layout
from cnnc.onnx.dependency import require_onnx


class UnsupportedError(ValueError):
    """An ONNX op, attribute or pattern that cnnc cannot import."""


class Tensor:
    """An ONNX tensor held in the cnnc graph: ``symbol`` (a cnnc
    SymbolicTensor) is the ONNX tensor transposed by ``perm``; ``shape`` is
    the ONNX shape (None where unknown, the batch first). ``row_order``:
    set on a Flatten whose cnnc element order differs from ONNX's (the
    following Gemm permutes its weight rows instead of the data)."""

    __slots__ = ("symbol", "perm", "shape", "row_order")

    def __init__(self, symbol, perm, shape, row_order=None):
        self.symbol, self.perm, self.shape = symbol, tuple(perm), tuple(shape)
        self.row_order = row_order

    @property
    def rank(self):
        return len(self.shape)


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

    def tensor(self, name):
        if name in self.constants:
            self.fail(f"the input {name!r} is a constant where a tensor computed from the model "
                      f"inputs is expected")
        if name not in self.tensors:
            self.fail(f"unknown input {name!r}")
        return self.tensors[name]

    def in_perm(self, tensor, perm):
        """``tensor`` held with ``perm`` (a Permute layer if needed)."""
        perm = tuple(perm)
        if tensor.perm == perm:
            return tensor
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


def _static(dim):
    return dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None


def _load_proto(onnx, path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at {path!r}")
    try:
        proto = onnx.load(path)
    except Exception as error:  # protobuf raises several kinds on corrupt input
        raise ValueError(f"{path!r} is not a readable ONNX model: {error}") from None
    if not proto.HasField("graph"):
        raise ValueError(f"{path!r} holds no ONNX graph")
    return proto


def load_model(path, input_layout="NCHW", name=None):
    """A trainable cnnc functional Model computing the ONNX model at ``path``.

    input_layout: "NCHW" (default) takes image inputs (rank 3 or 4)
    channels-first as the ONNX model does, and gives image outputs
    channels-first; "NHWC" takes and gives them channels-last, as cnnc's
    layers do. Inside, the model is channels-last either way.

    Supported ops: Conv, ConvTranspose, Gemm, MatMul (constant 2-D weight),
    BatchNormalization, Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Softmax,
    LogSoftmax, Clip, HardSigmoid, HardSwish, Gelu, Elu, Selu, Softplus,
    MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Add, Sub, Mul,
    Div (with a constant, or two tensors of one shape), Concat, Flatten,
    Reshape, Transpose (keeping the batch axis first), Pad, Dropout,
    Identity, Constant, and Shape/Gather/Unsqueeze/Squeeze/Concat/Cast/Slice
    on constants and static shapes. Anything else raises a ValueError naming
    the op type and the node.
    """
    onnx = require_onnx()
    if input_layout not in ("NCHW", "NHWC"):
        raise ValueError(f"input_layout must be 'NCHW' or 'NHWC', got {input_layout!r}")
    from cnnc.layers import Input
    from cnnc.models import Model
    from cnnc.onnx import import_ops

    proto = _load_proto(onnx, path)
    graph = proto.graph
    state = Importer(onnx, proto, input_layout)
    for init in graph.initializer:
        state.constants[init.name] = _array(onnx, init)
    state.graph_outputs = {o.name for o in graph.output}
    for node in graph.node:
        for name in node.input:
            state.consumers.setdefault(name, []).append(node)

    inputs = []
    for value_info in graph.input:
        if value_info.name in state.constants:
            continue
        tensor_type = value_info.type.tensor_type
        if tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                         onnx.TensorProto.FLOAT16):
            raise UnsupportedError(f"ONNX input {value_info.name!r} is not a float tensor")
        if not tensor_type.HasField("shape"):
            raise UnsupportedError(f"ONNX input {value_info.name!r} has no shape")
        shape = tuple(_static(d) for d in tensor_type.shape.dim)
        rank = len(shape)
        if rank < 2:
            raise UnsupportedError(f"ONNX input {value_info.name!r} must have a batch axis and "
                                   f"at least one more, got rank {rank}")
        nhwc = input_layout == "NHWC" and rank >= 3
        perm = layout.channels_last(rank) if nhwc else layout.identity(rank)
        layer_name = re.sub(r"[^A-Za-z0-9_.\-]", "_", value_info.name) or "input"
        state._names.add(layer_name)
        symbol = Input(shape=tuple(shape[a] for a in perm)[1:], name=layer_name)
        state.tensors[value_info.name] = Tensor(symbol, perm, shape)
        inputs.append(symbol)
    if not inputs:
        raise UnsupportedError("the ONNX model has no (non-initializer) input")

    for node in graph.node:
        state.node = node
        import_ops.convert(state, node)

    outputs = []
    for value_info in graph.output:
        state.node = onnx.helper.make_node("Identity", [value_info.name], [], name="output")
        tensor = state.tensor(value_info.name)
        if input_layout == "NCHW" or tensor.rank < 3:
            tensor = state.onnx_order(tensor)
        else:
            tensor = state.channels_last(tensor)
        outputs.append(tensor.symbol)
    return Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                 name=name or (re.sub(r"[^A-Za-z0-9_.\-]", "_", graph.name) or "onnx_model"))


def _array(onnx, tensor_proto):
    try:
        array = onnx.numpy_helper.to_array(tensor_proto)
    except Exception as error:
        raise ValueError(f"ONNX tensor {tensor_proto.name!r} cannot be read: {error}") from None
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    raise UnsupportedError(f"ONNX constant {tensor_proto.name!r} has dtype {array.dtype}")
