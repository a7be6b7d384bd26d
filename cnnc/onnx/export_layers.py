"""One ONNX translation per cnnc layer class.

Each converter takes the graph builder, the layer, its input Values and the
cnnc output shape, and returns the output Value. Convolutions and pooling
run channels-first (ONNX's layout); elementwise layers keep whatever order
their input has, so a chain of convolutions needs no transposes between.
"""
import numpy as np

from cnnc import layers as L
from cnnc.layers import conv_utils
from cnnc.ops import same_padding
from cnnc.onnx import layout
from cnnc.onnx.export_activations import activation
from cnnc.onnx.graph_builder import Value

_CONVERTERS = {}
_BIG = np.iinfo(np.int64).max


def converts(*classes):
    def register(fn):
        for cls in classes:
            _CONVERTERS[cls] = fn
        return fn
    return register


def converter_for(layer):
    for cls in type(layer).__mro__:
        fn = _CONVERTERS.get(cls)
        if fn is not None:
            return fn
    return None


def _spatial_pads(layer, rank, spatial):
    """ONNX pads/auto_pad for a cnnc padding: "same" is SAME_UPPER
    (TensorFlow's rule, the odd pixel after); causal pads the left.
    onnxruntime refuses SAME_* with dilations, so dilated "same" gets its
    pads written out (from the input size where the stride needs it)."""
    padding = layer.padding
    dilation = tuple(getattr(layer, "dilation_rate", (1,) * rank))
    if padding == "same":
        if all(d == 1 for d in dilation):
            return dict(auto_pad="SAME_UPPER")
        pairs = []
        window = layer.pool_size if hasattr(layer, "pool_size") else layer.kernel_size
        for n, k, s, d in zip(spatial, window, layer.strides, dilation):
            if n is None and s != 1:
                raise ValueError(f"layer {layer.name!r}: exporting a dilated, strided 'same' "
                                 f"convolution needs a known input size")
            pairs.append(same_padding(n if n is not None else 1, k, s, d))
        padding = tuple(pairs)
    if padding == "valid":
        return dict(pads=[0] * (2 * rank))
    if padding == "causal":
        span = (layer.kernel_size[0] - 1) * dilation[0]
        return dict(pads=[span, 0])
    return dict(pads=[p[0] for p in padding] + [p[1] for p in padding])


# -- convolutions and dense -------------------------------------------------

@converts(L.Conv1D, L.Conv2D, L.DepthwiseConv2D)
def _conv(g, layer, inputs, shape):
    x = g.channels_first(inputs[0])
    w = layer.kernel.value
    rank = layer.rank
    if isinstance(layer, L.DepthwiseConv2D):
        w = w.reshape(w.shape[:2] + (1, w.shape[2] * w.shape[3]))
        groups = inputs[0].shape[-1]
    else:
        groups = layer.groups
    # (K..., Cin/g, Cout) -> (Cout, Cin/g, K...)
    w = w.transpose((rank + 1, rank) + tuple(range(rank)))
    names = [x.name, g.const(w, f"{layer.name}_kernel")]
    if layer.use_bias:
        names.append(g.const(layer.bias.value, f"{layer.name}_bias"))
    y = g.node("Conv", names, layer.name, kernel_shape=list(layer.kernel_size),
               strides=list(layer.strides), dilations=list(layer.dilation_rate), group=groups,
               **_spatial_pads(layer, rank, inputs[0].shape[1:-1]))
    return activation(g, layer.activation, Value(y, x.perm, shape), f"{layer.name}_act")


@converts(L.Conv2DTranspose)
def _conv_transpose(g, layer, inputs, shape):
    x = g.channels_first(inputs[0])
    # Keras layout (KH, KW, filters / g, Cin) -> ONNX (Cin, filters / g, KH, KW)
    w = layer.kernel.value.transpose(3, 2, 0, 1)
    pads_before, pads_after, output_padding = [], [], []
    size = 16  # the pads and output padding below do not depend on the input size
    modes = layer._axis_paddings()
    for axis in range(2):
        k, s, d = layer.kernel_size[axis], layer.strides[axis], layer.dilation_rate[axis]
        op = None if layer.output_padding is None else layer.output_padding[axis]
        span = (k - 1) * d + 1
        length = conv_utils.deconv_output_length(size, k, modes[axis], op, s, d)
        if isinstance(modes[axis], tuple):
            before, after = modes[axis]
        else:
            before, after = (0, 0) if modes[axis] == "valid" else same_padding(length, k, s, d)
        pads_before.append(before)
        pads_after.append(after)
        output_padding.append(length - ((size - 1) * s + span - before - after))
    names = [x.name, g.const(w, f"{layer.name}_kernel")]
    if layer.use_bias:
        names.append(g.const(layer.bias.value, f"{layer.name}_bias"))
    y = g.node("ConvTranspose", names, layer.name, kernel_shape=list(layer.kernel_size),
               strides=list(layer.strides), dilations=list(layer.dilation_rate),
               group=layer.groups, pads=pads_before + pads_after,
               output_padding=output_padding)
    return activation(g, layer.activation, Value(y, x.perm, shape), f"{layer.name}_act")


@converts(L.Dense)
def _dense(g, layer, inputs, shape):
    x = g.channels_last(inputs[0])
    w = g.const(layer.kernel.value, f"{layer.name}_kernel")
    if x.rank == 2:
        names = [x.name, w] + ([g.const(layer.bias.value, f"{layer.name}_bias")]
                               if layer.use_bias else [])
        y = g.node("Gemm", names, layer.name)
    else:
        y = g.node("MatMul", [x.name, w], layer.name if not layer.use_bias
                   else f"{layer.name}_matmul")
        if layer.use_bias:
            y = g.node("Add", [y, g.const(layer.bias.value, f"{layer.name}_bias")], layer.name)
    return activation(g, layer.activation, Value(y, x.perm, shape), f"{layer.name}_act")


# -- normalization ------------------------------------------------------------

@converts(L.BatchNormalization)
def _batch_norm(g, layer, inputs, shape):
    x = inputs[0]
    rank = x.rank
    axis = layer.axis % rank
    channels = shape[axis]
    gamma = layer.gamma.value if layer.scale else np.ones(channels, np.float32)
    beta = layer.beta.value if layer.center else np.zeros(channels, np.float32)
    mean, var = layer.moving_mean.value, layer.moving_variance.value
    if axis == rank - 1 and (rank == 2 or rank >= 3):
        x = g.channels_first(x) if rank >= 3 else x
        y = g.node("BatchNormalization",
                   [x.name, g.const(gamma, f"{layer.name}_gamma"),
                    g.const(beta, f"{layer.name}_beta"), g.const(mean, f"{layer.name}_mean"),
                    g.const(var, f"{layer.name}_var")], layer.name, epsilon=layer.epsilon)
        return Value(y, x.perm, shape)
    # another axis: the folded affine map on that axis
    scale = (gamma / np.sqrt(var.astype(np.float64) + layer.epsilon)).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    stat_shape = [1] * (rank - 1)
    stat_shape[axis - 1] = channels
    s = layout.constant_in_layout(scale.reshape(stat_shape), rank, x.perm)
    t = layout.constant_in_layout(shift.reshape(stat_shape), rank, x.perm)
    y = g.node("Mul", [x.name, g.const(s, f"{layer.name}_scale")], f"{layer.name}_mul")
    y = g.node("Add", [y, g.const(t, f"{layer.name}_shift")], layer.name)
    return Value(y, x.perm, shape)


# -- pooling ------------------------------------------------------------------

@converts(L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D)
def _pool(g, layer, inputs, shape):
    x = g.channels_first(inputs[0])
    average = isinstance(layer, (L.AveragePooling1D, L.AveragePooling2D))
    attrs = dict(kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                 ceil_mode=int(layer.ceil_mode),
                 **_spatial_pads(layer, layer.rank, inputs[0].shape[1:-1]))
    if average:
        attrs["count_include_pad"] = int(layer.count_include_pad)
    if any(d != 1 for d in layer.dilation_rate):
        if average and g.opset < 19:
            raise ValueError(f"layer {layer.name!r}: a dilated average pooling needs opset 19 "
                             f"or later (AveragePool gained dilations there), got {g.opset}")
        attrs["dilations"] = list(layer.dilation_rate)
    y = g.node("AveragePool" if average else "MaxPool", [x.name], layer.name, **attrs)
    return Value(y, x.perm, shape)


@converts(L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D,
          L.GlobalMaxPooling2D)
def _global_pool(g, layer, inputs, shape):
    x = g.channels_first(inputs[0])
    op = ("GlobalAveragePool" if isinstance(layer, L.GlobalAveragePooling2D)
          else "GlobalMaxPool")
    if layer.keepdims:
        return Value(g.node(op, [x.name], layer.name), x.perm, shape)
    y = g.node(op, [x.name], f"{layer.name}_pool")
    return Value(g.node("Flatten", [y], layer.name, axis=1), layout.identity(2), shape)


# -- shapes -------------------------------------------------------------------

@converts(L.Flatten)
def _flatten(g, layer, inputs, shape):
    x = inputs[0]
    if not layout.same_order_when_flattened(
            tuple(1 if d is None else d for d in layout_shape(x)), x.perm):
        x = g.channels_last(x)
    return Value(g.node("Flatten", [x.name], layer.name, axis=1), layout.identity(2), shape)


def layout_shape(value):
    """The ONNX shape of a Value (None for unknown sizes)."""
    return tuple(value.shape[a] for a in value.perm)


@converts(L.Reshape)
def _reshape(g, layer, inputs, shape):
    x = g.channels_last(inputs[0])
    target = g.ints([0] + list(layer.target_shape), f"{layer.name}_shape")
    return Value(g.node("Reshape", [x.name, target], layer.name), layout.identity(len(shape)),
                 shape)


@converts(L.Permute)
def _permute(g, layer, inputs, shape):
    x = inputs[0]
    # cnnc_out = cnnc_in.T(p): keep the ONNX tensor, relabel it
    p = (0,) + layer.dims
    # onnx = cnnc_in.T(perm) = cnnc_out.T(inverse(p)).T(perm)
    return Value(x.name, layout.compose(layout.inverse(p), x.perm), shape)


@converts(L.ZeroPadding1D, L.ZeroPadding2D, L.Pad)
def _pad(g, layer, inputs, shape):
    x = inputs[0]
    if isinstance(layer, L.Pad):
        pairs, mode, fill = layer.paddings, layer.mode, layer.constant_value
    else:  # spatial zero padding, usually before a convolution: channels-first
        x = g.channels_first(x)
        pairs = (tuple(layer.padding),) if isinstance(layer, L.ZeroPadding1D) else layer.padding
        pairs = tuple(pairs) + ((0, 0),)
        mode, fill = "constant", 0.0
    pairs = ((0, 0),) + tuple(tuple(p) for p in pairs)
    pairs = [pairs[a] for a in x.perm]
    pads = g.ints([p[0] for p in pairs] + [p[1] for p in pairs], f"{layer.name}_pads")
    names = [x.name, pads]
    if mode == "constant":
        names.append(g.const(np.float32(fill), f"{layer.name}_value"))
    return Value(g.node("Pad", names, layer.name, mode=mode), x.perm, shape)


@converts(L.Cropping1D, L.Cropping2D)
def _crop(g, layer, inputs, shape):
    x = inputs[0]
    crops = (tuple(layer.cropping),) if isinstance(layer, L.Cropping1D) else layer.cropping
    axes = [x.perm.index(a) for a in range(1, len(crops) + 1)]
    starts = [c[0] for c in crops]
    ends = [-c[1] if c[1] else _BIG for c in crops]
    y = g.node("Slice", [x.name, g.ints(starts, f"{layer.name}_starts"),
                         g.ints(ends, f"{layer.name}_ends"), g.ints(axes, f"{layer.name}_axes")],
               layer.name)
    return Value(y, x.perm, shape)


@converts(L.UpSampling1D, L.UpSampling2D)
def _upsample(g, layer, inputs, shape):
    x = g.channels_first(inputs[0])
    size = (layer.size,) if isinstance(layer, L.UpSampling1D) else layer.size
    size = tuple(size) if not isinstance(size, int) else (size,)
    scales = g.const(np.array((1.0, 1.0) + tuple(float(s) for s in size), np.float32),
                     f"{layer.name}_scales")
    if getattr(layer, "interpolation", "nearest") == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        attrs = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    return Value(g.node("Resize", [x.name, "", scales], layer.name, **attrs), x.perm, shape)


# -- elementwise ----------------------------------------------------------------

@converts(L.Activation)
def _activation(g, layer, inputs, shape):
    y = activation(g, layer.activation, inputs[0], layer.name)
    if y is inputs[0]:
        return Value(g.node("Identity", [y.name], layer.name), y.perm, shape)
    return y


@converts(L.Softmax)
def _softmax(g, layer, inputs, shape):
    x = inputs[0]
    axis = x.perm.index(layer.axis % x.rank)
    return Value(g.node("Softmax", [x.name], layer.name, axis=axis), x.perm, shape)


@converts(L.ReLU)
def _relu(g, layer, inputs, shape):
    x = inputs[0]
    name = layer.name
    if layer.threshold == 0.0:
        if layer.negative_slope == 0.0:
            y = g.node("Relu", [x.name], name if layer.max_value is None else f"{name}_relu")
        else:
            y = g.node("LeakyRelu", [x.name], name if layer.max_value is None
                       else f"{name}_leaky", alpha=layer.negative_slope)
    else:
        t = g.const(np.float32(layer.threshold), f"{name}_threshold")
        below = g.node("Mul", [g.node("Sub", [x.name, t], f"{name}_shifted"),
                               g.const(np.float32(layer.negative_slope), f"{name}_slope")],
                       f"{name}_below")
        keep = g.node("GreaterOrEqual", [x.name, t], f"{name}_keep")
        y = g.node("Where", [keep, x.name, below], name if layer.max_value is None
                   else f"{name}_where")
    if layer.max_value is not None:
        y = g.node("Min", [y, g.const(np.float32(layer.max_value), f"{name}_max")], name)
    return Value(y, x.perm, shape)


@converts(L.LeakyReLU)
def _leaky_relu(g, layer, inputs, shape):
    x = inputs[0]
    return Value(g.node("LeakyRelu", [x.name], layer.name, alpha=layer.negative_slope),
                 x.perm, shape)


@converts(L.ELU)
def _elu(g, layer, inputs, shape):
    x = inputs[0]
    return Value(g.node("Elu", [x.name], layer.name, alpha=layer.alpha), x.perm, shape)


@converts(L.PReLU)
def _prelu(g, layer, inputs, shape):
    x = inputs[0]
    slope = layout.constant_in_layout(layer.alpha.value, x.rank, x.perm)[0]
    return Value(g.node("PRelu", [x.name, g.const(slope, f"{layer.name}_alpha")], layer.name),
                 x.perm, shape)


@converts(L.HardSigmoid)
def _hard_sigmoid(g, layer, inputs, shape):
    x = inputs[0]
    return Value(g.node("HardSigmoid", [x.name], layer.name, alpha=layer.alpha, beta=layer.beta),
                 x.perm, shape)


@converts(L.Clip)
def _clip(g, layer, inputs, shape):
    x = inputs[0]
    bounds = [g.const(np.float32(v), f"{layer.name}_{k}") if v is not None else ""
              for k, v in (("min", layer.min_value), ("max", layer.max_value))]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return Value(g.node("Clip", [x.name] + bounds, layer.name), x.perm, shape)


def _affine(g, x, scale, offset, name):
    """x * scale + offset with constants in cnnc's layout (broadcast)."""
    y = x.name
    if scale is not None:
        s = layout.constant_in_layout(scale, x.rank, x.perm)
        y = g.node("Mul", [y, g.const(s, f"{name}_scale")], name if offset is None
                   else f"{name}_mul")
    if offset is not None:
        t = layout.constant_in_layout(offset, x.rank, x.perm)
        y = g.node("Add", [y, g.const(t, f"{name}_offset")], name)
    if y == x.name:
        y = g.node("Identity", [y], name)
    return y


@converts(L.ConstantArithmetic)
def _constant_arithmetic(g, layer, inputs, shape):
    x = inputs[0]
    c = g.const(layout.constant_in_layout(layer.constant.value, x.rank, x.perm),
                f"{layer.name}_constant")
    op = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "maximum": "Max",
          "minimum": "Min"}[layer.operation]
    names = [c, x.name] if layer.reverse else [x.name, c]
    return Value(g.node(op, names, layer.name), x.perm, shape)


@converts(L.Rescaling)
def _rescaling(g, layer, inputs, shape):
    x = inputs[0]
    return Value(_affine(g, x, np.float32(layer.scale),
                         np.float32(layer.offset) if layer.offset else None, layer.name),
                 x.perm, shape)


@converts(L.Normalization)
def _normalization(g, layer, inputs, shape):
    x = inputs[0]
    layer._check_ready()
    std = np.maximum(np.sqrt(layer.variance.value), np.float32(1e-7)).astype(np.float32)
    mean = layer.mean.value
    m = g.const(layout.constant_in_layout(mean, x.rank, x.perm), f"{layer.name}_mean")
    s = g.const(layout.constant_in_layout(std, x.rank, x.perm), f"{layer.name}_std")
    if layer.invert:
        y = g.node("Add", [g.node("Mul", [x.name, s], f"{layer.name}_mul"), m], layer.name)
    else:
        y = g.node("Div", [g.node("Sub", [x.name, m], f"{layer.name}_sub"), s], layer.name)
    return Value(y, x.perm, shape)


# -- merging ------------------------------------------------------------------------

_MERGE_OPS = {L.Add: "Sum", L.Average: "Mean", L.Maximum: "Max", L.Minimum: "Min",
              L.Multiply: "Mul", L.Subtract: "Sub", L.Divide: "Div"}


@converts(*_MERGE_OPS)
def _merge(g, layer, inputs, shape):
    """ONNX broadcasts right-aligned over every axis, batch included: an
    input of lower rank first gains its 1s after the batch axis (Reshape),
    then all take the order of the first input of the full rank."""
    rank = max(v.rank for v in inputs)
    inputs = [v if v.rank == rank else _raised_rank(g, v, rank, layer.name) for v in inputs]
    first = next(v for v in inputs if v.rank == rank)
    names = [g.in_perm(v, first.perm).name for v in inputs]
    op = next(_MERGE_OPS[c] for c in type(layer).__mro__ if c in _MERGE_OPS)
    if op == "Sum" and len(names) == 2:
        op = "Add"
    if op == "Mul" and len(names) > 2:
        y = names[0]
        for i, n in enumerate(names[1:]):
            y = g.node("Mul", [y, n], layer.name if i == len(names) - 2 else f"{layer.name}_{i}")
        return Value(y, first.perm, shape)
    return Value(g.node(op, names, layer.name), first.perm, shape)


def _raised_rank(g, value, rank, hint):
    """``value`` reshaped to ``rank`` axes by 1s after its batch axis."""
    value = g.channels_last(value)  # the cnnc order
    target = [0] + [1] * (rank - value.rank) + [-1 if d is None else d for d in value.shape[1:]]
    name = g.node("Reshape", [value.name, g.ints(target, f"{hint}_rank")], f"{hint}_rank")
    return Value(name, layout.identity(rank), (None,) + (1,) * (rank - value.rank) + tuple(
        value.shape[1:]))


@converts(L.Concatenate)
def _concatenate(g, layer, inputs, shape):
    first = inputs[0]
    names = [g.in_perm(v, first.perm).name for v in inputs]
    axis = first.perm.index(layer.axis % first.rank)
    return Value(g.node("Concat", names, layer.name, axis=axis), first.perm, shape)


# -- layers that are the identity at inference -------------------------------------

@converts(L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.RandomFlip, L.RandomRotation,
          L.RandomTranslation, L.RandomZoom, L.RandomContrast, L.RandomBrightness)
def _identity(g, layer, inputs, shape):
    x = inputs[0]
    return Value(g.node("Identity", [x.name], layer.name), x.perm, shape)


def _resize_matrix(n_in, n_out, offset, crop):
    """(n_out, n_in) bilinear weights of Keras's smart resize along one axis:
    output pixel o samples ``offset + (o + 0.5) * crop / n_out - 0.5``,
    clamped to the image (cnnc's affine warp with nearest fill)."""
    step = crop / n_out
    src = offset + step * np.arange(n_out) + 0.5 * step - 0.5
    lo = np.floor(src)
    frac = src - lo
    m = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, np.clip(lo, 0, n_in - 1).astype(int)), 1.0 - frac)
    np.add.at(m, (rows, np.clip(lo + 1, 0, n_in - 1).astype(int)), frac)
    return m.astype(np.float32)


@converts(L.RandomCrop)
def _random_crop(g, layer, inputs, shape):
    """At inference: Keras's smart resize, as two constant matrix products."""
    x = g.channels_first(inputs[0])
    _, h, w, _ = x.shape
    if (h, w) == (layer.height, layer.width):
        return Value(g.node("Identity", [x.name], layer.name), x.perm, shape)
    if h is None or w is None:
        raise ValueError(f"RandomCrop {layer.name!r}: exporting its inference resize needs a "
                         f"known input height and width")
    crop_h = min(h, max(1, int(round(w * layer.height / layer.width))))
    crop_w = min(w, max(1, int(round(h * layer.width / layer.height))))
    mh = _resize_matrix(h, layer.height, (h - crop_h) // 2, crop_h)
    mw = _resize_matrix(w, layer.width, (w - crop_w) // 2, crop_w)
    y = g.node("MatMul", [x.name, g.const(mw.T, f"{layer.name}_cols")], f"{layer.name}_w")
    y = g.node("MatMul", [g.const(mh, f"{layer.name}_rows"), y], layer.name)
    return Value(y, x.perm, shape)
