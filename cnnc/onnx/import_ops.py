"""One converter per ONNX op type, building cnnc layers.

Each converter reads the node's inputs from the importer (constants or
Tensors), its attributes through ``attrs`` (unread ones fail the import)
and stores its outputs with ``state.set_output``.
"""
import numpy as np

from cnnc import layers as L
from cnnc.onnx import layout
from cnnc.onnx.import_state import Attributes, Tensor, read_array

_CONVERTERS = {}


def converts(*op_types):
    def register(fn):
        for op in op_types:
            _CONVERTERS[op] = fn
        return fn
    return register


def convert(state, node):
    if node.domain not in ("", "ai.onnx"):
        state.fail(f"ops of domain {node.domain!r} are not supported")
    fn = _CONVERTERS.get(node.op_type)
    if fn is None:
        state.fail("this op type is not supported by cnnc.onnx.load_model")
    attrs = Attributes(state.onnx, node)
    fn(state, node, attrs)
    attrs.check_all_read()


def _optional(node, i):
    return node.input[i] if len(node.input) > i and node.input[i] else None


# -- padding ------------------------------------------------------------------

def _same_pads(length, kernel, stride, dilation, lower):
    out = -(-length // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - length, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _padding(state, attrs, x, kernel, strides, dilations):
    """cnnc padding ("valid", "same" or (before, after) pairs) from ONNX's
    auto_pad and pads."""
    rank = len(kernel)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    pads = attrs.get("pads", None)
    if auto_pad == "VALID":
        return "valid"
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        spatial = x.shape[2:]
        if auto_pad == "SAME_UPPER" and None in spatial:
            return "same"  # TensorFlow's "same" puts the odd pixel after, as SAME_UPPER
        if None in spatial:
            state.fail("auto_pad SAME_LOWER needs a known input size")
        return tuple(_same_pads(n, k, s, d, auto_pad == "SAME_LOWER")
                     for n, k, s, d in zip(spatial, kernel, strides, dilations))
    if auto_pad not in ("NOTSET", ""):
        state.fail(f"unknown auto_pad {auto_pad!r}")
    if pads is None:
        return "valid"
    pads = [int(p) for p in pads]
    if len(pads) != 2 * rank or any(p < 0 for p in pads):
        state.fail(f"pads {pads} must be {2 * rank} non-negative ints")
    pairs = tuple((pads[i], pads[i + rank]) for i in range(rank))
    return "valid" if not any(pads) else pairs


def _scalar(state, name, what):
    """A constant input holding one number (0-d or of size 1)."""
    value = np.asarray(state.constant(name, what))
    if value.size != 1:
        state.fail(f"the {what} must hold one value, got shape {value.shape}")
    return float(value.reshape(-1)[0])


def _spatial_attrs(state, attrs, x, kernel_default=None):
    rank = x.rank - 2
    if rank not in (1, 2):
        state.fail(f"only 1-D and 2-D spatial inputs are supported, got rank {x.rank}")
    kernel = attrs.get("kernel_shape", kernel_default)
    if kernel is None:
        state.fail("kernel_shape is missing")
    kernel = tuple(int(k) for k in kernel)
    strides = tuple(int(s) for s in attrs.get("strides", [1] * rank))
    dilations = tuple(int(d) for d in attrs.get("dilations", [1] * rank))
    if len(kernel) != rank or len(strides) != rank or len(dilations) != rank:
        state.fail(f"kernel_shape {kernel}, strides {strides} and dilations {dilations} must "
                   f"each have {rank} values")
    return rank, kernel, strides, dilations


def _conv_out(n, k, s, d, pad):
    if n is None:
        return None
    if pad == "same":
        return -(-n // s)
    before, after = (0, 0) if pad == "valid" else pad
    return (n + before + after - (k - 1) * d - 1) // s + 1


# -- convolutions --------------------------------------------------------------

def _conv_inputs(state, node, attrs):
    """Input, constant weight and optional bias, and the window attributes."""
    x = state.tensor(node.input[0])
    w = state.constant(node.input[1], "weight")
    bias_name = _optional(node, 2)
    bias = None if bias_name is None else state.constant(bias_name, "bias")
    rank, kernel, strides, dilations = _spatial_attrs(state, attrs, x, w.shape[2:])
    return x, w, bias, rank, kernel, strides, dilations


@converts("Conv")
def _conv(state, node, attrs):
    x, w, bias, rank, kernel, strides, dilations = _conv_inputs(state, node, attrs)
    if w.ndim != rank + 2 or tuple(w.shape[2:]) != kernel:
        state.fail(f"weight shape {w.shape} does not match kernel_shape {kernel}")
    groups = int(attrs.get("group", 1))
    channels = x.shape[1]
    out_channels = w.shape[0]
    if channels is None or groups < 1 or channels % groups or out_channels % groups \
            or w.shape[1] * groups != channels:
        state.fail(f"weight {w.shape} and group {groups} do not fit {channels} input channels")
    padding = _padding(state, attrs, x, kernel, strides, dilations)
    if padding != "same" and not isinstance(padding, str) and rank == 1:
        padding_arg = padding[0]
    else:
        padding_arg = padding
    use_bias = bias is not None
    name = state.layer_name()
    if rank == 2 and groups == channels and groups > 1:
        multiplier = out_channels // channels
        layer = L.DepthwiseConv2D(kernel, strides=strides, padding=padding_arg,
                                  depth_multiplier=multiplier, dilation_rate=dilations,
                                  use_bias=use_bias, name=name)
        # (C * m, 1, KH, KW) -> (KH, KW, C, m)
        kernel_value = w.reshape(channels, multiplier, *kernel).transpose(2, 3, 0, 1)
    else:
        cls = L.Conv2D if rank == 2 else L.Conv1D
        layer = cls(out_channels, kernel, strides=strides, padding=padding_arg,
                    dilation_rate=dilations, groups=groups, use_bias=use_bias, name=name)
        # (Cout, Cin / g, K...) -> (K..., Cin / g, Cout)
        kernel_value = w.transpose(tuple(range(2, rank + 2)) + (1, 0))
    weights = [kernel_value] + ([bias.reshape(out_channels)] if use_bias else [])
    x = state.channels_last(x)
    spatial = tuple(_conv_out(n, k, s, d, p) for n, k, s, d, p in zip(
        x.shape[2:], kernel, strides, dilations,
        (padding,) * rank if isinstance(padding, str) else padding))
    state.set_output(0, state.apply(layer, [x], x.perm, (None, out_channels) + spatial, weights))


@converts("ConvTranspose")
def _conv_transpose(state, node, attrs):
    x, w, bias, rank, kernel, strides, dilations = _conv_inputs(state, node, attrs)
    if rank != 2:
        state.fail("only 2-D ConvTranspose is supported")
    groups = int(attrs.get("group", 1))
    channels = x.shape[1]
    if w.ndim != 4 or w.shape[0] != channels or tuple(w.shape[2:]) != kernel or channels % groups:
        state.fail(f"weight shape {w.shape} does not fit {channels} input channels, kernel "
                   f"{kernel} and group {groups}")
    filters = w.shape[1] * groups
    output_padding = [int(p) for p in attrs.get("output_padding", [0, 0])]
    output_shape = attrs.get("output_shape", None)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    pads = attrs.get("pads", None)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    pairs = []
    for axis in range(2):
        n, s, span = x.shape[2 + axis], strides[axis], spans[axis]
        full = None if n is None else (n - 1) * s + span + output_padding[axis]
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if n is None:
                state.fail("output_shape or auto_pad SAME needs a known input size")
            target = (int(output_shape[-2 + axis]) if output_shape is not None else n * s)
            total = full - target
            if total < 0:  # a larger output than the full one: extra output padding
                output_padding[axis] -= total
                total = 0
            small, big = total // 2, total - total // 2
            pairs.append((big, small) if auto_pad == "SAME_LOWER" or (
                output_shape is not None and auto_pad != "SAME_UPPER") else (small, big))
        elif auto_pad == "VALID" or pads is None:
            pairs.append((0, 0))
        else:
            if len(pads) != 4:
                state.fail(f"pads {list(pads)} must have 4 values")
            pairs.append((int(pads[axis]), int(pads[axis + 2])))
    if any(p >= max(s, d) for p, s, d in zip(output_padding, strides, dilations)):
        state.fail(f"output_padding {output_padding} must be smaller than the strides "
                   f"{strides} or dilations {dilations}")
    layer = L.Conv2DTranspose(filters, kernel, strides=strides, padding=tuple(pairs),
                              output_padding=output_padding, dilation_rate=dilations,
                              groups=groups, use_bias=bias is not None, name=state.layer_name())
    # (Cin, filters / g, KH, KW) -> (KH, KW, filters / g, Cin)
    weights = [w.transpose(2, 3, 1, 0)] + ([bias.reshape(filters)] if bias is not None else [])
    x = state.channels_last(x)
    spatial = tuple(None if n is None else (n - 1) * s + span - b - a + op
                    for n, s, span, (b, a), op in zip(x.shape[2:], strides, spans, pairs,
                                                      output_padding))
    state.set_output(0, state.apply(layer, [x], x.perm, (None, filters) + spatial, weights))


def _dense(state, x, kernel, bias, row_order, perm=None, shape=None):
    """y = x @ kernel + bias on the last ONNX axis; for a rank-2 ``x`` held
    batch-first (whatever its ONNX axis order), on its feature axis. ``perm``
    and ``shape``: the ONNX view of the result (default: x's order)."""
    if row_order is not None:
        kernel = kernel[row_order]
    elif x.rank != 2:
        x = state.onnx_order(x)
    features = x.shape[1 - x.batch_axis] if x.rank == 2 else x.shape[-1]
    if features is not None and features != kernel.shape[0]:
        state.fail(f"a weight of shape {kernel.shape} does not fit inputs of shape {x.shape}")
    units = kernel.shape[1]
    layer = L.Dense(units, use_bias=bias is not None, name=state.layer_name())
    weights = [kernel] + ([bias] if bias is not None else [])
    if perm is None:
        perm, shape = layout.identity(x.rank), x.shape[:-1] + (units,)
        if x.rank == 2:
            shape = (None, units)
    return state.apply(layer, [x], perm, shape, weights)


def _gemm_bias(state, c, beta, units, batch_axis):
    """Gemm's beta * C as a bias of ``units`` values: C must broadcast onto
    the (2-D) result without varying along its batch axis."""
    c = np.asarray(c, np.float32)
    if c.ndim > 2:
        state.fail(f"C of shape {c.shape} has more than 2 axes")
    full = c.reshape((1,) * (2 - c.ndim) + c.shape)
    unit_axis = 1 - batch_axis
    if full.shape[batch_axis] != 1 or full.shape[unit_axis] not in (1, units):
        state.fail(f"C of shape {c.shape} must broadcast as a bias of {units} values (one per "
                   f"output feature, the same for every sample)")
    return (beta * np.broadcast_to(full.reshape(-1), (units,))).astype(np.float32)


@converts("Gemm")
def _gemm(state, node, attrs):
    """Y = alpha * op(A) @ op(B) + beta * C, op transposing when transA /
    transB. With A computed (batch first in op(A)) and B constant: a Dense
    layer. With A constant and B computed (the batch on op(B)'s second
    axis): Y^T = op(B)^T @ op(A)^T, the same Dense layer, and Y is held
    transposed (its batch on axis 1). All constant: folded. C is a constant
    bias, or a computed tensor added after the product."""
    alpha = float(attrs.get("alpha", 1.0))
    beta = float(attrs.get("beta", 1.0))
    trans_a, trans_b = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    a_name, b_name, c_name = node.input[0], node.input[1], _optional(node, 2)
    if state.is_constant(a_name) and state.is_constant(b_name):
        a, b = (state.constants[n].astype(np.float32) for n in (a_name, b_name))
        if a.ndim != 2 or b.ndim != 2:
            state.fail(f"Gemm needs 2-D A and B, got {a.shape} and {b.shape}")
        y = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b))
        if c_name is not None:
            y = y + beta * state.constant(c_name, "C (with constant A and B)").astype(np.float32)
        state.set_output(0, y.astype(np.float32))
        return
    if not state.is_constant(b_name):
        if not state.is_constant(a_name):
            state.fail("a product of two computed tensors mixes the samples of a batch")
        # Y = op(A) @ op(B) with the batch on Y's axis 1: Y^T = op(B)^T @ op(A)^T
        x = state.tensor(b_name, batch_anywhere=True)
        a = state.constants[a_name].astype(np.float32)
        if x.rank != 2 or a.ndim != 2:
            state.fail(f"Gemm needs 2-D A and B, got {a.shape} and {x.shape}")
        if x.batch_axis != (0 if trans_b else 1):
            state.fail("op(B) would sum over the batch axis")
        op_a = a.T if trans_a else a
        units = op_a.shape[0]
        bias = None if c_name is None or not state.is_constant(c_name) else _gemm_bias(
            state, state.constants[c_name], beta, units, 1)
        y = _dense(state, x, (alpha * op_a.T).astype(np.float32), bias, x.row_order,
                   perm=(1, 0), shape=(units, None))
        batch_axis = 1
    else:
        x = state.tensor(a_name, batch_anywhere=True)
        b = state.constants[b_name].astype(np.float32)
        if x.rank != 2 or b.ndim != 2:
            state.fail(f"Gemm needs 2-D A and B, got {x.shape} and {b.shape}")
        if x.batch_axis != (1 if trans_a else 0):
            state.fail("op(A) would sum over the batch axis")
        op_b = b.T if trans_b else b
        units = op_b.shape[1]
        bias = None if c_name is None or not state.is_constant(c_name) else _gemm_bias(
            state, state.constants[c_name], beta, units, 0)
        y = _dense(state, x, (alpha * op_b).astype(np.float32), bias, x.row_order)
        batch_axis = 0
    if c_name is not None and not state.is_constant(c_name):
        c = state.tensor(c_name, batch_anywhere=True)
        if c.rank != 2 or c.batch_axis != batch_axis:
            state.fail(f"a computed C of shape {c.shape} must be 2-D with the batch where Y has it")
        if beta != 1.0:
            c = _same_perm_layer(state, L.ConstantArithmetic("multiply", constant=np.float32(beta),
                                                             name=state.layer_name("_beta")), c)
        c = state.in_perm(c, y.perm)
        shape = _broadcast_onnx_shapes(state, y.shape, c.shape)
        y = state.apply(L.Add(name=state.layer_name("_c")), [y, c], y.perm, shape)
    state.set_output(0, y)


def _matrix_constant(state, value, what, rank):
    """A constant MatMul operand as a 2-D matrix: leading axes of size 1
    (NumPy's broadcasting of a single matrix over the batch) are dropped."""
    value = np.asarray(value, np.float32)
    if value.ndim < 2:
        state.fail(f"a {value.ndim}-D {what} is not supported (a matrix is: reshape it to 2-D)")
    if value.ndim > 2 and (value.ndim > rank or any(d != 1 for d in value.shape[:-2])):
        state.fail(f"a {what} of shape {value.shape} stacks several matrices: cnnc's Dense "
                   f"layer holds one weight matrix for every position")
    return value.reshape(value.shape[-2:])


def _bias_of_following_add(state, node, units):
    """The constant vector of an Add that alone reads the MatMul's output,
    taken as the Dense layer's bias (the Add then passes its input on)."""
    consumers = state.only_consumers(node.output[0], ("Add",))
    if consumers is None or len(consumers) != 1:
        return None
    add = consumers[0]
    other = [n for n in add.input if n != node.output[0]]
    if len(other) != 1 or not state.is_constant(other[0]):
        return None
    c = state.constants[other[0]]
    if not (c.size == units and c.shape[-1:] == (units,) or c.size == 1):
        return None
    state.fused_adds[add.name or id(add)] = node.output[0]
    return np.broadcast_to(c.reshape(-1), (units,)).astype(np.float32)


@converts("MatMul")
def _matmul(state, node, attrs):
    """Y = A @ B (NumPy's matmul) where one operand is constant: a Dense
    layer over the axis the product sums. x @ W sums x's last axis; W @ x
    sums x's second-to-last axis (held last through a Permute, or x held
    with the batch on axis 1 after a Transpose, as Gemm's constant-A form).
    Constant W may carry leading axes of size 1. Both constant: folded."""
    a_name, b_name = node.input[0], node.input[1]
    if state.is_constant(a_name) and state.is_constant(b_name):
        a, b = (state.constants[n].astype(np.float32) for n in (a_name, b_name))
        state.set_output(0, np.matmul(a, b).astype(np.float32))
        return
    if not state.is_constant(a_name) and not state.is_constant(b_name):
        state.fail("a product of two computed tensors is not supported (cnnc's Dense layer "
                   "multiplies by a constant weight)")
    if state.is_constant(b_name):
        a = state.tensor(node.input[0], batch_anywhere=True)
        w = _matrix_constant(state, state.constants[b_name], "B (the second MatMul input)", a.rank)
        if a.batch_axis != 0:
            state.fail(f"A of shape {a.shape} holds the batch on the axis the product sums: it "
                       f"would mix the samples of a batch" if a.rank == 2 else
                       f"A of shape {a.shape} holds the batch on axis {a.batch_axis}")
        bias = _bias_of_following_add(state, node, w.shape[1])
        state.set_output(0, _dense(state, a, w, bias, a.row_order))
        return
    x = state.tensor(b_name, batch_anywhere=True)
    w = _matrix_constant(state, state.constants[a_name], "A (the first MatMul input)", x.rank)
    units = w.shape[0]
    if x.rank == 2:
        if x.batch_axis != 1:
            state.fail(f"B of shape {x.shape} holds the batch on the axis the product sums: it "
                       f"would mix the samples of a batch")
        # Y = W @ x with the batch on Y's axis 1: Y^T = x^T @ W^T
        state.set_output(0, _dense(state, x, np.ascontiguousarray(w.T), None, x.row_order,
                                   perm=(1, 0), shape=(units, None)))
        return
    if x.batch_axis != 0:
        state.fail(f"B of shape {x.shape} holds the batch on axis {x.batch_axis}")
    features = x.shape[-2]
    if features is not None and features != w.shape[1]:
        state.fail(f"A of shape {w.shape} does not fit B of shape {x.shape}")
    # the summed axis (ONNX axis rank - 2) held last, where Dense works
    perm = tuple(range(x.rank - 2)) + (x.rank - 1, x.rank - 2)
    x = state.in_perm(x, perm)
    layer = L.Dense(units, use_bias=False, name=state.layer_name())
    shape = x.shape[:-2] + (units, x.shape[-1])
    state.set_output(0, state.apply(layer, [x], perm, shape, [np.ascontiguousarray(w.T)]))


@converts("BatchNormalization")
def _batch_norm(state, node, attrs):
    x = state.tensor(node.input[0])
    gamma, beta, mean, var = (state.constant(n, what) for n, what in zip(
        node.input[1:5], ("scale", "B", "mean", "var")))
    epsilon = float(attrs.get("epsilon", 1e-5))
    momentum = float(attrs.get("momentum", 0.9))
    if int(attrs.get("training_mode", 0)):
        state.fail("training_mode = 1 is not supported (import the inference graph)")
    if int(attrs.get("spatial", 1)) != 1:
        state.fail("spatial = 0 is not supported")
    attrs.get("is_test")
    attrs.get("consumed_inputs")
    if len([o for o in node.output if o]) > 1:
        state.fail("only the first output (Y) is supported")
    axis = x.perm.index(1)
    layer = L.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon,
                                 name=state.layer_name())
    weights = [a.reshape(-1).astype(np.float32) for a in (gamma, beta, mean, var)]
    state.set_output(0, state.apply(layer, [x], x.perm, x.shape, weights))


# -- activations ------------------------------------------------------------------

def _same_perm_layer(state, layer, x, weights=None):
    """``layer`` applied to ``x``, an elementwise layer: same order, same shape."""
    return state.apply(layer, [x], x.perm, x.shape, weights)


def _same_shape(state, layer, x, weights=None):
    state.set_output(0, _same_perm_layer(state, layer, x, weights))


_SIMPLE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_silu",
           "Softplus": "softplus", "Softsign": "softsign", "Exp": "exponential"}


@converts(*_SIMPLE)
def _simple_activation(state, node, attrs):
    x = state.tensor(node.input[0], batch_anywhere=True)
    if node.op_type == "Relu":
        layer = L.ReLU(name=state.layer_name())
    else:
        layer = L.Activation(_SIMPLE[node.op_type], name=state.layer_name())
    _same_shape(state, layer, x)


@converts("LeakyRelu")
def _leaky_relu(state, node, attrs):
    _same_shape(state, L.LeakyReLU(negative_slope=float(attrs.get("alpha", 0.01)),
                                   name=state.layer_name()), state.tensor(node.input[0], batch_anywhere=True))


@converts("Elu")
def _elu(state, node, attrs):
    _same_shape(state, L.ELU(alpha=float(attrs.get("alpha", 1.0)), name=state.layer_name()),
                state.tensor(node.input[0], batch_anywhere=True))


@converts("Selu")
def _selu(state, node, attrs):
    alpha = float(attrs.get("alpha", 1.67326319217681884765625))
    gamma = float(attrs.get("gamma", 1.05070102214813232421875))
    if abs(alpha - 1.6732632) > 1e-6 or abs(gamma - 1.0507010) > 1e-6:
        state.fail(f"only the standard alpha and gamma are supported, got {alpha}, {gamma}")
    _same_shape(state, L.Activation("selu", name=state.layer_name()), state.tensor(node.input[0], batch_anywhere=True))


@converts("Gelu")
def _gelu(state, node, attrs):
    approximate = attrs.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        state.fail(f"unknown approximate {approximate!r}")
    _same_shape(state, L.Activation("gelu" if approximate == "none" else "gelu_tanh",
                                    name=state.layer_name()), state.tensor(node.input[0], batch_anywhere=True))


@converts("HardSigmoid")
def _hard_sigmoid(state, node, attrs):
    _same_shape(state, L.HardSigmoid(alpha=float(attrs.get("alpha", 0.2)),
                                     beta=float(attrs.get("beta", 0.5)), name=state.layer_name()),
                state.tensor(node.input[0], batch_anywhere=True))


@converts("Clip")
def _clip(state, node, attrs):
    x = state.tensor(node.input[0], batch_anywhere=True)
    if state.opset < 11:
        low, high = attrs.get("min", None), attrs.get("max", None)
    else:
        low_name, high_name = _optional(node, 1), _optional(node, 2)
        low = None if low_name is None else _scalar(state, low_name, "min")
        high = None if high_name is None else _scalar(state, high_name, "max")
    if low == 0.0 and high is None:
        layer = L.ReLU(name=state.layer_name())
    else:
        layer = L.Clip(low, high, name=state.layer_name())
    _same_shape(state, layer, x)


@converts("PRelu")
def _prelu(state, node, attrs):
    x = state.tensor(node.input[0], batch_anywhere=True)
    slope = state.constant(node.input[1], "slope")
    # ONNX's slope broadcasts against the ONNX tensor; hold it in x's order
    full = layout.constant_in_layout(slope, x.rank, x.perm)[0]
    cnnc_shape = tuple(x.shape[a] for a in x.perm)[1:]
    shared = [i + 1 for i, (s, n) in enumerate(zip(full.shape, cnnc_shape)) if s == 1]
    alpha_shape = tuple(1 if i + 1 in shared else n for i, n in enumerate(cnnc_shape))
    if None in alpha_shape:
        state.fail("a per-position slope needs known input sizes")
    alpha = np.broadcast_to(full, alpha_shape).astype(np.float32)
    _same_shape(state, L.PReLU(shared_axes=shared or None, name=state.layer_name()), x, [alpha])


def _softmax_axis(state, attrs, x):
    default = -1 if state.opset >= 13 else 1
    axis = int(attrs.get("axis", default))
    if not -x.rank <= axis < x.rank:
        state.fail(f"axis {axis} is out of range for rank {x.rank}")
    axis %= x.rank
    if axis == 0:
        state.fail("a softmax over the batch axis is not supported")
    if state.opset < 13 and any(d != 1 for d in x.shape[axis + 1:]):
        state.fail(f"opset {state.opset} softmax over the flattened axes {axis}.. is only "
                   f"supported when they are the last axis")
    return axis


@converts("Softmax", "LogSoftmax")
def _softmax(state, node, attrs):
    x = state.tensor(node.input[0])
    axis = _softmax_axis(state, attrs, x)
    if node.op_type == "Softmax":
        layer = L.Softmax(axis=x.perm.index(axis), name=state.layer_name())
        _same_shape(state, layer, x)
        return
    # log-softmax runs on the last cnnc axis: move the ONNX axis there
    perm = tuple(a for a in x.perm if a != axis) + (axis,)
    x = state.in_perm(x, perm)
    _same_shape(state, L.Activation("log_softmax", name=state.layer_name()), x)


# -- pooling --------------------------------------------------------------------

@converts("MaxPool", "AveragePool")
def _pool(state, node, attrs):
    x = state.tensor(node.input[0])
    rank, kernel, strides, dilations = _spatial_attrs(state, attrs, x)
    if int(attrs.get("storage_order", 0)):
        state.fail("storage_order = 1 is not supported")
    if len([o for o in node.output if o]) > 1 and node.output[1] in state.consumers:
        state.fail("the Indices output is not supported")
    ceil_mode = bool(int(attrs.get("ceil_mode", 0)))
    average = node.op_type == "AveragePool"
    count_include_pad = bool(int(attrs.get("count_include_pad", 0))) if average else False
    padding = _padding(state, attrs, x, kernel, strides, dilations)
    if padding == "same" and count_include_pad:
        if None in x.shape[2:]:
            state.fail("auto_pad SAME with count_include_pad needs a known input size")
        padding = tuple(_same_pads(n, k, s, d, False) for n, k, s, d in zip(
            x.shape[2:], kernel, strides, dilations))
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    if not isinstance(padding, str) and any(p >= e for pair, e in zip(padding, extent)
                                            for p in pair):
        state.fail(f"pads {padding} must be smaller than the window's extent {extent} "
                   f"(kernel_shape {kernel}, dilations {dilations})")
    cls = {(True, 2): L.AveragePooling2D, (True, 1): L.AveragePooling1D,
           (False, 2): L.MaxPooling2D, (False, 1): L.MaxPooling1D}[average, rank]
    extra = dict(count_include_pad=count_include_pad) if average else {}
    layer = cls(kernel, strides=strides, padding=padding, ceil_mode=ceil_mode,
                dilation_rate=dilations, name=state.layer_name(), **extra)
    x = state.channels_last(x)
    cnnc_in = tuple(x.shape[a] for a in x.perm)
    cnnc_out = layer.compute_output_shape(cnnc_in)
    onnx_out = tuple(cnnc_out[a] for a in layout.inverse(x.perm))
    state.set_output(0, state.apply(layer, [x], x.perm, onnx_out))


@converts("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(state, node, attrs):
    x = state.tensor(node.input[0])
    rank = x.rank - 2
    if rank not in (1, 2):
        state.fail(f"only 1-D and 2-D spatial inputs are supported, got rank {x.rank}")
    average = node.op_type == "GlobalAveragePool"
    cls = {(True, 2): L.GlobalAveragePooling2D, (True, 1): L.GlobalAveragePooling1D,
           (False, 2): L.GlobalMaxPooling2D, (False, 1): L.GlobalMaxPooling1D}[average, rank]
    x = state.channels_last(x)
    state.set_output(0, state.apply(cls(keepdims=True, name=state.layer_name()), [x], x.perm,
                                    x.shape[:2] + (1,) * rank))


_REDUCE_OPSET_WITH_AXES_INPUT = {"ReduceMean": 18, "ReduceMax": 18}


@converts("ReduceMean", "ReduceMax")
def _reduce(state, node, attrs):
    """A mean or max over all the spatial axes (a squeeze-and-excitation's
    ``x.mean((2, 3))``): global pooling, keeping the axes as 1s with
    keepdims. Constant inputs fold; other axis sets are refused."""
    if state.opset >= _REDUCE_OPSET_WITH_AXES_INPUT[node.op_type]:
        axes_name = _optional(node, 1)
        axes = None if axes_name is None else state.constant(axes_name, "axes")
    else:
        axes = attrs.get("axes", None)
    keepdims = bool(int(attrs.get("keepdims", 1)))
    noop = bool(int(attrs.get("noop_with_empty_axes", 0)))
    average = node.op_type == "ReduceMean"
    name = node.input[0]
    if state.is_constant(name):
        a = state.constants[name]
        axes_t = None if axes is None or len(np.asarray(axes).reshape(-1)) == 0 else tuple(
            int(v) % a.ndim for v in np.asarray(axes).reshape(-1))
        if axes_t is None and noop:
            state.set_output(0, a)
            return
        state.set_output(0, (np.mean if average else np.max)(a, axis=axes_t, keepdims=keepdims))
        return
    x = state.tensor(name)
    axes = [] if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
    if not axes and noop:
        state.set_output(0, x)
        return
    if any(not -x.rank <= a < x.rank for a in axes):
        state.fail(f"axes {axes} are out of range for rank {x.rank}")
    axes = sorted({a % x.rank for a in axes}) if axes else list(range(x.rank))
    rank = x.rank - 2
    if axes != list(range(2, x.rank)) or rank not in (1, 2):
        state.fail(f"only a reduction over all the spatial axes (2..{x.rank - 1}) of a 1-D or "
                   f"2-D input is supported, got axes {axes}")
    cls = {(True, 2): L.GlobalAveragePooling2D, (True, 1): L.GlobalAveragePooling1D,
           (False, 2): L.GlobalMaxPooling2D, (False, 1): L.GlobalMaxPooling1D}[average, rank]
    x = state.channels_last(x)
    if keepdims:
        state.set_output(0, state.apply(cls(keepdims=True, name=state.layer_name()), [x], x.perm,
                                        x.shape[:2] + (1,) * rank))
    else:
        state.set_output(0, state.apply(cls(name=state.layer_name()), [x], layout.identity(2),
                                        x.shape[:2]))


# -- elementwise arithmetic -------------------------------------------------------

_NUMPY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
          "Max": np.maximum, "Min": np.minimum}
_OPERATION = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide",
              "Max": "maximum", "Min": "minimum"}
_MERGE = {"Add": L.Add, "Sub": L.Subtract, "Mul": L.Multiply, "Div": L.Divide,
          "Max": L.Maximum, "Min": L.Minimum, "Sum": L.Add, "Mean": L.Average}


def _broadcasts_onto(a, b):
    """Whether shape b broadcasts onto shape a without enlarging it."""
    if len(b) > len(a):
        return None
    b = (1,) * (len(a) - len(b)) + tuple(b)
    return all(y == 1 or x == y for x, y in zip(a, b))


def _broadcast_onnx_shapes(state, *shapes):
    """ONNX's (NumPy's) broadcast of the shapes of computed tensors, each
    with its batch axis first (so of one rank: a lower-rank one would align
    its batch axis with another axis). None: an unknown size."""
    if len({len(s) for s in shapes}) != 1:
        state.fail(f"tensors of shapes {list(shapes)}: broadcasting tensors of different ranks "
                   f"would align a batch axis with another axis")
    from cnnc.layers.merge import broadcast_shape
    try:
        return broadcast_shape(shapes, "tensors")
    except ValueError as error:
        state.fail(str(error))


def _constant_operand(state, op, x, c, reverse):
    """x <op> c (c <op> x with ``reverse``) for a constant c."""
    c = c.astype(np.float32)
    if c.ndim > x.rank or not _broadcasts_onto(x.shape[1:], c.shape[max(
            c.ndim - x.rank + 1, 0):]) or (c.ndim == x.rank and c.shape[0] != 1):
        state.fail(f"a constant of shape {c.shape} must broadcast onto the input of shape "
                   f"{x.shape} without enlarging it")
    held = layout.constant_in_layout(c, x.rank, x.perm)[0]
    while held.ndim > 1 and held.shape[0] == 1:
        held = held[0]  # leading 1s are implied by broadcasting
    layer = L.ConstantArithmetic(_OPERATION[op], constant=held,
                                 reverse=reverse and op in ("Sub", "Div"), name=state.layer_name())
    return _same_perm_layer(state, layer, x)


def _merge_tensors(state, op, tensors):
    """A merge layer over computed tensors of broadcasting shapes, held in
    the order of the first one of the broadcast shape."""
    shape = _broadcast_onnx_shapes(state, *[t.shape for t in tensors])
    lead = next((t for t in tensors if t.shape == shape), tensors[0])
    held = [state.in_perm(t, lead.perm) for t in tensors]
    return state.apply(_MERGE[op](name=state.layer_name()), held, lead.perm, shape)


@converts("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean")
def _arithmetic(state, node, attrs):
    """The binary ops, and the variadic Max / Min / Sum / Mean, with ONNX's
    broadcasting: constants are folded or held by a ConstantArithmetic
    layer, computed tensors are merged by a (broadcasting) merge layer."""
    op = node.op_type
    names = [n for n in node.input if n]
    if op in ("Add", "Sub", "Mul", "Div") and len(names) != 2:
        state.fail(f"{op} takes 2 inputs, got {len(names)}")
    if not names:
        state.fail("no inputs")
    if all(state.is_constant(n) for n in names):
        values = [state.constants[n] for n in names]
        if op == "Div" and all(v.dtype.kind == "i" for v in values):
            value = np.floor_divide(values[0], values[1])  # integer shape arithmetic
        elif op in ("Sum", "Mean"):
            value = np.sum(np.broadcast_arrays(*values), axis=0) / (len(values) if op == "Mean"
                                                                    else 1)
        else:
            value = values[0]
            for v in values[1:]:
                value = _NUMPY[op](value, v)
        kinds = {v.dtype for v in values}
        state.set_output(0, np.asarray(value).astype(kinds.pop() if len(kinds) == 1 and op != "Mean"
                                                     else np.float32))
        return
    if op == "Add" and (node.name or id(node)) in state.fused_adds:
        state.set_output(0, state.tensors[state.fused_adds[node.name or id(node)]])
        return
    tensors = [n for n in names if not state.is_constant(n)]
    constants = [n for n in names if state.is_constant(n)]
    if len(names) == 1:
        state.set_output(0, state.tensor(names[0]))
        return
    if constants and op in ("Sum", "Mean"):
        if op == "Mean":
            state.fail("Mean of computed tensors and constants is not supported")
        op = "Add"
    if constants:
        # x op c (Max / Min / Sum: the constants folded into one first)
        c = state.constants[constants[0]]
        for other in constants[1:]:
            c = _NUMPY[op](c, state.constants[other])
        x = (_merge_tensors(state, op, [state.tensor(n) for n in tensors]) if len(tensors) > 1
             else state.tensor(tensors[0]))
        reverse = names.index(constants[0]) < names.index(tensors[0]) and len(names) == 2
        state.set_output(0, _constant_operand(state, op, x, c, reverse))
        return
    state.set_output(0, _merge_tensors(state, op, [state.tensor(n) for n in names]))


# -- shapes -----------------------------------------------------------------------

@converts("Identity", "Dropout")
def _identity(state, node, attrs):
    attrs.get("ratio")
    attrs.get("seed")
    attrs.get("is_test")
    if node.op_type == "Dropout":
        training = _optional(node, 2)
        if training is not None and _scalar(state, training, "training_mode"):
            state.fail("training_mode = true is not supported")
        if len(node.output) > 1 and node.output[1] and node.output[1] in state.consumers:
            state.fail("the mask output is not supported")
    name = node.input[0]
    state.set_output(0, state.constants[name] if state.is_constant(name)
                     else state.tensor(name))


@converts("Constant")
def _constant(state, node, attrs):
    value = attrs.get("value", None)
    if value is not None:
        state.set_output(0, read_array(state.onnx, value))
        return
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        v = attrs.get(key, None)
        if v is not None:
            state.set_output(0, np.asarray(v, dtype))
            return
    state.fail("only value, value_float(s) and value_int(s) constants are supported")


@converts("Flatten")
def _flatten(state, node, attrs):
    name = node.input[0]
    axis = int(attrs.get("axis", 1))
    if state.is_constant(name):
        a = state.constants[name]
        axis %= max(a.ndim, 1)
        state.set_output(0, a.reshape(int(np.prod(a.shape[:axis])), -1))
        return
    x = state.tensor(name)
    if axis < 0:
        axis += x.rank
    if axis != 1:
        state.fail(f"only axis = 1 (keep the batch axis) is supported, got {axis}")
    sizes = x.shape[1:]
    size = None if None in sizes else int(np.prod(sizes))
    row_order = None
    if not layout.same_order_when_flattened(tuple(1 if d is None else d for d in x.shape),
                                            x.perm) or None in sizes:
        if None not in sizes and _weights_take_rows(state, node.output[0], size):
            # flatten in cnnc's order; the Gemm permutes its weight rows to match
            index = np.arange(size).reshape(x.shape[1:])
            row_order = index.transpose(tuple(a - 1 for a in x.perm[1:])).reshape(-1)
        else:
            x = state.onnx_order(x)
    out = state.apply(L.Flatten(name=state.layer_name()), [x], layout.identity(2), (None, size))
    out.row_order = row_order
    state.set_output(0, out)


def _weights_take_rows(state, name, size):
    """Whether every reader of ``name`` is a Gemm or MatMul multiplying it by
    a constant weight of ``size`` rows (checked before any index array of
    that size is made, so a file cannot make the import allocate what its
    weights do not hold)."""
    readers = state.only_consumers(name, ("Gemm", "MatMul"))
    if readers is None:
        return False
    for reader in readers:
        if reader.input[0] != name or not state.is_constant(reader.input[1]):
            return False
        weight = state.constants[reader.input[1]]
        trans_b = any(a.name == "transB" and a.i for a in reader.attribute)
        if weight.ndim != 2 or weight.shape[1 if trans_b else 0] != size:
            return False
    return True


def _reshape_target(state, x_shape, target, allowzero):
    """The target shape without its batch entry, which must keep the batch
    (0 copying it, -1, or the static batch size)."""
    target = [int(t) for t in target]
    out = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if i >= len(x_shape):
                state.fail(f"target shape {target}: a 0 beyond the input rank")
            out.append(x_shape[i])
        elif t < -1 or t == 0:
            state.fail(f"target shape {target}: sizes must be positive or -1")
        else:
            out.append(t)
    first, rest = out[0] if out else 0, out[1:]
    if not (first is None or first == -1 or (x_shape[0] is not None and first == x_shape[0])):
        state.fail(f"the target shape {target} must keep the batch axis first (0, -1 or the "
                   f"batch size)")
    if None in rest or rest.count(-1) > 1:
        state.fail(f"target shape {target} is ambiguous for inputs of shape {x_shape}")
    return rest


@converts("Reshape")
def _reshape(state, node, attrs):
    name = node.input[0]
    target = state.constant(node.input[1], "shape")
    allowzero = int(attrs.get("allowzero", 0))
    if state.is_constant(name):
        state.set_output(0, np.reshape(state.constants[name], [int(t) for t in target]))
        return
    x = state.tensor(name)
    rest = _reshape_target(state, x.shape, target, allowzero)
    if not layout.same_order_when_flattened(tuple(1 if d is None else d for d in x.shape),
                                            x.perm) or None in x.shape[1:]:
        x = state.onnx_order(x)
    known = None not in x.shape[1:]
    if -1 in rest and known:
        total = int(np.prod(x.shape[1:]))
        other = int(np.prod([d for d in rest if d != -1]))
        if other == 0 or total % other:
            state.fail(f"cannot reshape {x.shape} into {list(target)}")
        rest = [total // other if d == -1 else d for d in rest]
    shape = (None,) + tuple(rest)
    if known and int(np.prod(rest)) != int(np.prod(x.shape[1:])):
        state.fail(f"cannot reshape {x.shape} into {list(target)}")
    state.set_output(0, state.apply(L.Reshape(tuple(rest), name=state.layer_name()), [x],
                                    layout.identity(len(shape)), shape))


@converts("Transpose")
def _transpose(state, node, attrs):
    name = node.input[0]
    if state.is_constant(name):
        a = state.constants[name]
        state.set_output(0, np.transpose(a, attrs.get("perm", None)))
        return
    x = state.tensor(name, batch_anywhere=True)
    perm = tuple(int(p) for p in attrs.get("perm", range(x.rank - 1, -1, -1)))
    if sorted(perm) != list(range(x.rank)):
        state.fail(f"perm {list(perm)} is not a permutation of {x.rank} axes")
    # the cnnc tensor stays; only its relation to the ONNX axes changes (a
    # perm moving the batch axis gives a tensor only Transpose and Gemm read)
    new_perm = layout.compose(layout.inverse(perm), x.perm)
    state.set_output(0, Tensor(x.symbol, new_perm, tuple(x.shape[p] for p in perm),
                               x.row_order))


@converts("Concat")
def _concat(state, node, attrs):
    axis = int(attrs.get("axis"))
    if all(state.is_constant(n) for n in node.input):
        state.set_output(0, np.concatenate([state.constants[n] for n in node.input], axis=axis))
        return
    tensors = [state.tensor(n) for n in node.input]
    first = tensors[0]
    axis %= first.rank
    if axis == 0:
        state.fail("concatenation along the batch axis is not supported")
    tensors = [first] + [state.in_perm(t, first.perm) for t in tensors[1:]]
    sizes = [t.shape[axis] for t in tensors]
    shape = list(first.shape)
    shape[axis] = None if None in sizes else sum(sizes)
    if len(tensors) == 1:
        state.set_output(0, first)
        return
    state.set_output(0, state.apply(L.Concatenate(axis=first.perm.index(axis),
                                                  name=state.layer_name()),
                                    tensors, first.perm, tuple(shape)))


@converts("Pad")
def _pad(state, node, attrs):
    x = state.tensor(node.input[0])
    mode = attrs.get("mode", "constant")
    if state.opset < 11:
        pads = attrs.get("pads")
        value = float(attrs.get("value", 0.0))
        axes = None
    else:
        pads = state.constant(node.input[1], "pads")
        value_name = _optional(node, 2)
        value = 0.0 if value_name is None else _scalar(state, value_name, "constant_value")
        axes_name = _optional(node, 3)
        axes = None if axes_name is None else state.constant(axes_name, "axes")
    if mode not in ("constant", "reflect", "edge"):
        state.fail(f"mode {mode!r} is not supported")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = list(range(x.rank)) if axes is None else [int(a) % x.rank for a in axes]
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        state.fail(f"pads {pads} must be {2 * len(axes)} non-negative ints (negative pads "
                   f"crop, which is not supported)")
    pairs = [(0, 0)] * x.rank
    for i, a in enumerate(axes):
        pairs[a] = (pads[i], pads[i + len(axes)])
    if pairs[0] != (0, 0):
        state.fail("padding the batch axis is not supported")
    held = [pairs[a] for a in x.perm]
    layer = L.Pad(held[1:], mode=mode, constant_value=value, name=state.layer_name())
    shape = tuple(None if n is None else n + b + e for n, (b, e) in zip(x.shape, pairs))
    state.set_output(0, state.apply(layer, [x], x.perm, (None,) + shape[1:]))


# -- shape arithmetic on constants and static shapes ---------------------------------

@converts("Shape")
def _shape(state, node, attrs):
    x = state.tensors.get(node.input[0])
    if x is None:
        a = state.constant(node.input[0])
        shape = np.asarray(a.shape, np.int64)
    else:
        if None in x.shape[1:]:
            state.fail(f"the shape {x.shape} is not static")
        # -1 stands for the batch size; Reshape reads a leading -1 as "keep the batch"
        shape = np.asarray([-1] + list(x.shape[1:]), np.int64)
    start = int(attrs.get("start", 0))
    end = attrs.get("end", None)
    state.set_output(0, shape[start:None if end is None else int(end)])


@converts("Gather")
def _gather(state, node, attrs):
    data = state.constant(node.input[0], "data")
    index = state.constant(node.input[1], "indices")
    state.set_output(0, np.take(data, index.astype(np.int64), axis=int(attrs.get("axis", 0))))


@converts("Unsqueeze", "Squeeze")
def _unsqueeze(state, node, attrs):
    data = state.constant(node.input[0], "data")
    if state.opset >= 13:
        axes_name = _optional(node, 1)
        axes = None if axes_name is None else state.constant(axes_name, "axes")
    else:
        axes = attrs.get("axes", None)
    if node.op_type == "Squeeze":
        out = np.squeeze(data) if axes is None else np.squeeze(
            data, axis=tuple(int(a) for a in np.asarray(axes).reshape(-1)))
    else:
        out = data
        for a in sorted(int(a) % (data.ndim + len(axes)) for a in np.asarray(axes).reshape(-1)):
            out = np.expand_dims(out, a)
    state.set_output(0, out)


@converts("Cast")
def _cast(state, node, attrs):
    data = state.constant(node.input[0], "data")
    to = int(attrs.get("to"))
    kind = state.onnx.helper.tensor_dtype_to_np_dtype(to)
    attrs.get("saturate")
    state.set_output(0, data.astype(np.float32 if np.dtype(kind).kind == "f" else np.int64))


@converts("Slice")
def _slice(state, node, attrs):
    data = state.constant(node.input[0], "data")
    starts = state.constant(node.input[1], "starts")
    ends = state.constant(node.input[2], "ends")
    axes_name, steps_name = _optional(node, 3), _optional(node, 4)
    axes = range(len(starts)) if axes_name is None else state.constant(axes_name, "axes")
    steps = [1] * len(starts) if steps_name is None else state.constant(steps_name, "steps")
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    state.set_output(0, data[tuple(index)])
