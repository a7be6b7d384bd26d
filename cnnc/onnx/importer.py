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

from cnnc.onnx import import_ops, layout
from cnnc.onnx.dependency import require_onnx
from cnnc.onnx.import_state import Importer, Tensor, UnsupportedError, read_array


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


def _fixed_shape(name, shape, given):
    """The input's shape with its unknown non-batch sizes taken from ``given``
    (the shape without the batch axis, in the file's axis order)."""
    if None not in shape[1:]:
        return shape
    if given is None:
        raise UnsupportedError(f"ONNX input {name!r} has shape {shape} with unknown sizes; cnnc "
                               f"models have fixed sizes: pass input_shape=(...) (without the "
                               f"batch axis, in the file's axis order)")
    given = tuple(int(d) for d in given)
    if len(given) != len(shape) - 1 or any(
            d < 1 or (s is not None and s != d) for s, d in zip(shape[1:], given)):
        raise ValueError(f"input_shape {given} does not fit ONNX input {name!r} of shape {shape}")
    return (shape[0],) + given


def load_model(path, input_layout="NCHW", name=None, input_shape=None):
    """A trainable cnnc functional Model computing the ONNX model at ``path``.

    input_layout: "NCHW" (default) takes image inputs (rank 3 or 4)
    channels-first as the ONNX model does, and gives image outputs
    channels-first; "NHWC" takes and gives them channels-last, as cnnc's
    layers do. Inside, the model is channels-last either way. input_shape:
    the sizes (without the batch axis, in the file's axis order) of an input
    the file leaves dynamic, e.g. ``(3, 224, 224)``.

    Supported ops: Conv, ConvTranspose, Gemm (every attribute: alpha, beta,
    transA, transB, C constant or computed; A or B constant), MatMul
    (constant 2-D weight), BatchNormalization, Relu, LeakyRelu, PRelu,
    Sigmoid, Tanh, Softmax, LogSoftmax, Clip, HardSigmoid, HardSwish, Gelu,
    Elu, Selu, Softplus, MaxPool and AveragePool (pads, auto_pad, ceil_mode,
    count_include_pad, dilations), GlobalAveragePool, GlobalMaxPool,
    ReduceMean and ReduceMax over the spatial axes, Add, Sub, Mul, Div, Max,
    Min, Sum, Mean (NumPy broadcasting, between tensors or with constants),
    Concat, Flatten, Reshape, Transpose, Pad, Dropout, Identity, Constant,
    and Shape/Gather/Unsqueeze/Squeeze/Concat/Cast/Slice on constants and
    static shapes. A Transpose may move the batch axis only for a Gemm (or
    elementwise activations) to read. Anything else raises a ValueError naming
    the op type and the node.
    """
    onnx = require_onnx()
    if input_layout not in ("NCHW", "NHWC"):
        raise ValueError(f"input_layout must be 'NCHW' or 'NHWC', got {input_layout!r}")
    from cnnc.layers import Input
    from cnnc.models import Model

    proto = _load_proto(onnx, path)
    graph = proto.graph
    state = Importer(onnx, proto, input_layout)
    for init in graph.initializer:
        state.constants[init.name] = read_array(onnx, init)
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
        shape = _fixed_shape(value_info.name, tuple(_static(d) for d in tensor_type.shape.dim),
                             input_shape)
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
    return Model(inputs if len(inputs) > 1 else inputs[0],
                 outputs if len(outputs) > 1 else outputs[0], name=name or (re.sub(r"[^A-Za-z0-9_.\-]", "_", graph.name) or "onnx_model"))
