"""ONNX backend-style tests of cnnc.onnx.load_model: one small graph per op
and attribute combination, built with onnx.helper, run by onnxruntime and by
the imported cnnc model on random inputs."""
import numpy as np
import pytest

from onnx_cases import compare, make_model, rand

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402


def _single(tmp_path, op, x_shape, params=None, attrs=None, extra_inputs=(), opset=17,
            atol=1e-4, input_layout="NCHW", seed=0):
    """``op`` on a random input X (and constant ``params``) -> Y."""
    params = params or {}
    names = ["X"] + list(params) + list(extra_inputs)
    node = helper.make_node(op, names, ["Y"], name=f"the_{op.lower()}", **(attrs or {}))
    model = make_model([node], {"X": (None,) + tuple(x_shape[1:])}, ["Y"], params, opset)
    return compare(tmp_path, model, {"X": rand(*x_shape, seed=seed)}, atol, input_layout)


CONV_CASES = [
    dict(),
    dict(strides=[2, 2]),
    dict(pads=[1, 0, 2, 1]),
    dict(pads=[1, 1, 1, 1], strides=[2, 1], dilations=[2, 1]),
    dict(auto_pad="SAME_UPPER", strides=[2, 2]),
    dict(auto_pad="SAME_LOWER", strides=[2, 2]),
    dict(auto_pad="VALID"),
    dict(dilations=[2, 2], pads=[2, 2, 2, 2]),
]


@pytest.mark.parametrize("attrs", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(tmp_path, attrs, bias):
    params = {"W": rand(6, 4, 3, 3, seed=1)}
    if bias:
        params["B"] = rand(6, seed=2)
    _single(tmp_path, "Conv", (2, 4, 9, 8), params, dict(kernel_shape=[3, 3], **attrs))


@pytest.mark.parametrize("group,cout", [(2, 6), (4, 4), (4, 8)])  # grouped, depthwise, x2
def test_conv2d_groups(tmp_path, group, cout):
    params = {"W": rand(cout, 4 // group, 3, 3, seed=1), "B": rand(cout, seed=2)}
    _single(tmp_path, "Conv", (2, 4, 7, 7), params, dict(group=group, pads=[1, 1, 1, 1],
                                                         strides=[2, 2]))


@pytest.mark.parametrize("attrs", [dict(), dict(pads=[2, 1], strides=[2]), dict(group=4),
                                   dict(auto_pad="SAME_UPPER", strides=[2]), dict(dilations=[2])])
def test_conv1d(tmp_path, attrs):
    cin = 4 // attrs.get("group", 1)
    _single(tmp_path, "Conv", (2, 4, 11), {"W": rand(4, cin, 3, seed=1), "B": rand(4, seed=2)},
            attrs)


def test_conv_nhwc_input_layout(tmp_path):
    _single(tmp_path, "Conv", (2, 3, 8, 8), {"W": rand(5, 3, 3, 3, seed=1)}, dict(pads=[1] * 4),
            input_layout="NHWC")


CONV_TRANSPOSE_CASES = [
    dict(strides=[2, 2]),
    dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
    dict(strides=[3, 2], pads=[0, 1, 2, 0]),
    dict(strides=[2, 2], output_shape=[15, 16]),
    dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(strides=[2, 2], auto_pad="SAME_LOWER"),
    dict(dilations=[2, 2], strides=[1, 1]),
    dict(strides=[2, 2], group=2),
]


@pytest.mark.parametrize("attrs", CONV_TRANSPOSE_CASES)
def test_conv_transpose(tmp_path, attrs):
    group = attrs.get("group", 1)
    params = {"W": rand(4, 6 // group, 3, 3, seed=1), "B": rand(6, seed=2)}
    _single(tmp_path, "ConvTranspose", (2, 4, 7, 8), params, attrs)


@pytest.mark.parametrize("attrs,c_shape", [
    (dict(), (5,)), (dict(transB=1), (1, 5)), (dict(alpha=0.5, beta=2.0), ()),
    (dict(transB=1, alpha=-1.5), None)])
def test_gemm(tmp_path, attrs, c_shape):
    b = rand(5, 6, seed=1) if attrs.get("transB") else rand(6, 5, seed=1)
    params = {"B": b}
    if c_shape is not None:
        params["C"] = rand(*c_shape, seed=2) if c_shape else np.float32(0.7)
    _single(tmp_path, "Gemm", (3, 6), params, attrs)


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (5,), (1, 5), (1, 1)])
@pytest.mark.parametrize("opset", [11, 13])
def test_gemm_every_attribute(tmp_path, trans_a, trans_b, c_shape, opset):
    """Y = alpha op(A) op(B) + beta C; with transA the computed A arrives
    transposed (its batch on axis 1), as exporters write x^T for it."""
    nodes, a = [], "X"
    if trans_a:
        nodes.append(helper.make_node("Transpose", ["X"], ["XT"], name="t", perm=[1, 0]))
        a = "XT"
    params = {"B": rand(*((5, 6) if trans_b else (6, 5)), seed=1)}
    inputs = [a, "B"]
    if c_shape is not None:
        params["C"] = rand(*c_shape, seed=2)
        inputs.append("C")
    nodes.append(helper.make_node("Gemm", inputs, ["Y"], name="gemm", alpha=0.75, beta=-1.25,
                                  transA=trans_a, transB=trans_b))
    compare(tmp_path, make_model(nodes, {"X": (None, 6)}, ["Y"], params, opset),
            {"X": rand(3, 6)})


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (4, 1)])
def test_gemm_constant_a(tmp_path, trans_a, trans_b, c_shape):
    """A constant, B computed: Y = op(A) op(B) holds the batch on axis 1, and
    a Transpose (or a further Gemm with transA) brings it back first."""
    nodes, b = [helper.make_node("Relu", ["X"], ["R"], name="relu")], "R"
    if not trans_b:
        nodes.append(helper.make_node("Transpose", ["R"], ["RT"], name="t", perm=[1, 0]))
        b = "RT"
    params = {"A": rand(*((6, 4) if trans_a else (4, 6)), seed=1)}
    inputs = ["A", b]
    if c_shape is not None:
        params["C"] = rand(*c_shape, seed=2)
        inputs.append("C")
    nodes += [helper.make_node("Gemm", inputs, ["YT"], name="gemm", alpha=1.5, transA=trans_a,
                               transB=trans_b),
              helper.make_node("Sigmoid", ["YT"], ["S"], name="gate"),
              helper.make_node("Transpose", ["S"], ["Y"], name="back", perm=[1, 0])]
    compare(tmp_path, make_model(nodes, {"X": (None, 6)}, ["Y"], params), {"X": rand(3, 6)})


def test_gemm_chain_through_transposed_result(tmp_path):
    # Y1 = W1 x^T (batch on axis 1), then Y = Y1^T W2 via transA
    nodes = [helper.make_node("Gemm", ["W1", "X"], ["H"], name="g1", transB=1),
             helper.make_node("Gemm", ["H", "W2", "C"], ["Y"], name="g2", transA=1)]
    params = {"W1": rand(4, 6, seed=1), "W2": rand(4, 3, seed=2), "C": rand(3, seed=3)}
    compare(tmp_path, make_model(nodes, {"X": (None, 6)}, ["Y"], params), {"X": rand(5, 6)})


def test_gemm_constant_operands_fold(tmp_path):
    nodes = [helper.make_node("Gemm", ["A", "B", "C"], ["G"], name="folded", transA=1,
                              transB=1, alpha=2.0, beta=0.5),
             helper.make_node("Add", ["X", "G"], ["Y"], name="add")]
    params = {"A": rand(3, 2, seed=1), "B": rand(5, 3, seed=2), "C": rand(1, 5, seed=3)}
    compare(tmp_path, make_model(nodes, {"X": (None, 2, 5)}, ["Y"], params), {"X": rand(4, 2, 5)})


def test_gemm_computed_c(tmp_path):
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"),
             helper.make_node("Gemm", ["X", "B", "R"], ["Y"], name="gemm", beta=0.5)]
    compare(tmp_path, make_model(nodes, {"X": (None, 4)}, ["Y"], {"B": rand(4, 4, seed=1)}),
            {"X": rand(3, 4)})


def test_gemm_refuses_what_mixes_samples(tmp_path):
    node = helper.make_node("Gemm", ["X", "B"], ["Y"], name="over_batch", transA=1)
    with pytest.raises(ValueError, match=r"Gemm.*over_batch.*batch"):
        _load(tmp_path, make_model([node], {"X": (None, 6)}, ["Y"], {"B": rand(4, 3)}))
    node = helper.make_node("Gemm", ["X", "X"], ["Y"], name="x_x", transB=1)
    with pytest.raises(ValueError, match=r"Gemm.*x_x.*mixes"):
        _load(tmp_path, make_model([node], {"X": (None, 6)}, ["Y"]))
    node = helper.make_node("Gemm", ["X", "B", "C"], ["Y"], name="per_sample_c")
    with pytest.raises(ValueError, match=r"Gemm.*per_sample_c.*same for every sample"):
        _load(tmp_path, make_model([node], {"X": (3, 6)}, ["Y"], {"B": rand(6, 4),
                                                                   "C": rand(3, 4)}))
    # a tensor whose batch a Transpose moved reaches only Transpose and Gemm
    nodes = [helper.make_node("Transpose", ["X"], ["T"], name="t", perm=[1, 0]),
             helper.make_node("Softmax", ["T"], ["Y"], name="softmax_of_t")]
    with pytest.raises(ValueError, match=r"Softmax.*softmax_of_t.*batch on axis 1"):
        _load(tmp_path, make_model(nodes, {"X": (None, 6)}, ["Y"]))


def test_matmul_and_bias(tmp_path):
    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"], name="mm"),
             helper.make_node("Add", ["H", "B"], ["Y"], name="bias")]
    model = make_model(nodes, {"X": (None, 6)}, ["Y"], {"W": rand(6, 4, seed=1),
                                                        "B": rand(4, seed=2)})
    cm = compare(tmp_path, model, {"X": rand(3, 6)})
    assert [type(layer).__name__ for layer in cm.layers[1:]] == ["Dense"]


@pytest.mark.parametrize("x_shape,w_shape", [
    ((3, 5, 4), (6, 5)),            # W @ x over a sequence's feature axis
    ((2, 3, 5, 4), (2, 5)),         # over an image's height: a Permute puts it last
    ((2, 3, 5, 4), (1, 1, 7, 5)),   # leading axes of size 1 broadcast
])
def test_matmul_constant_first(tmp_path, x_shape, w_shape):
    nodes = [helper.make_node("MatMul", ["W", "X"], ["Y"], name="w_x")]
    model = make_model(nodes, {"X": (None,) + x_shape[1:]}, ["Y"], {"W": rand(*w_shape, seed=1)})
    compare(tmp_path, model, {"X": rand(*x_shape)})


@pytest.mark.parametrize("x_shape,w_shape", [((2, 3, 5, 4), (4, 6)), ((2, 3, 5, 4), (1, 1, 4, 6)),
                                             ((3, 5, 4), (1, 4, 2))])
def test_matmul_constant_second_nd(tmp_path, x_shape, w_shape):
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"], name="x_w")]
    model = make_model(nodes, {"X": (None,) + x_shape[1:]}, ["Y"], {"W": rand(*w_shape, seed=1)})
    compare(tmp_path, model, {"X": rand(*x_shape)})


def test_matmul_on_a_transposed_batch_and_folded(tmp_path):
    """W @ x^T keeps the batch on axis 1 (a Dense on x's features, held
    transposed) and a Transpose brings it back; a product of constants is
    folded."""
    nodes = [helper.make_node("Transpose", ["X"], ["XT"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["W", "XT"], ["YT"], name="w_xt"),
             helper.make_node("Transpose", ["YT"], ["Y0"], name="back", perm=[1, 0]),
             helper.make_node("MatMul", ["P", "Q"], ["PQ"], name="folded"),
             helper.make_node("Add", ["Y0", "PQ"], ["Y"], name="plus")]
    model = make_model(nodes, {"X": (None, 6)}, ["Y"], {"W": rand(4, 6, seed=1), "P": rand(1, 3, seed=2),
                                                        "Q": rand(3, 4, seed=3)})
    compare(tmp_path, model, {"X": rand(5, 6)})


@pytest.mark.parametrize("inputs,x_shape,params,message", [
    (["X", "X"], (None, 4, 4), {}, r"MatMul.*mm.*two computed"),
    (["W", "X"], (None, 6), {"W": rand(4, 6)}, r"MatMul.*mm.*mix the samples"),
    (["X", "W"], (None, 3, 4), {"W": rand(3, 4, 5)}, r"MatMul.*mm.*stacks several"),
    (["X", "W"], (None, 4), {"W": rand(4)}, r"MatMul.*mm.*1-D"),
    (["W", "X"], (None, 3, 4), {"W": rand(2, 5)}, r"MatMul.*mm.*does not fit"),
])
def test_matmul_refusals_name_the_node(tmp_path, inputs, x_shape, params, message):
    node = helper.make_node("MatMul", inputs, ["Y"], name="mm")
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, make_model([node], {"X": x_shape}, ["Y"], params))


@pytest.mark.parametrize("shape", [(2, 5, 4, 3), (3, 5)])
def test_batch_normalization(tmp_path, shape):
    c = shape[1]
    params = {"scale": rand(c, seed=1, low=0.5, high=1.5), "bias": rand(c, seed=2),
              "mean": rand(c, seed=3), "var": rand(c, seed=4, low=0.5, high=2.0)}
    _single(tmp_path, "BatchNormalization", shape, params, dict(epsilon=1e-3))


@pytest.mark.parametrize("op,attrs", [
    ("Relu", {}), ("LeakyRelu", {}), ("LeakyRelu", dict(alpha=0.3)), ("Sigmoid", {}),
    ("Tanh", {}), ("HardSigmoid", {}), ("HardSigmoid", dict(alpha=0.3, beta=0.4)),
    ("HardSwish", {}), ("Elu", {}), ("Elu", dict(alpha=0.5)), ("Selu", {}),
    ("Softplus", {}), ("Softmax", {}), ("Softmax", dict(axis=1)), ("LogSoftmax", {}),
    ("LogSoftmax", dict(axis=1)), ("Identity", {}), ("Dropout", {})])
def test_activations(tmp_path, op, attrs):
    x = (2, 3, 4, 5)
    _single(tmp_path, op, x, attrs=attrs)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(tmp_path, approximate):
    _single(tmp_path, "Gelu", (2, 3, 4), attrs=dict(approximate=approximate), opset=20)


@pytest.mark.parametrize("bounds", [(-0.5, 0.25), (0.0, None), (None, 0.3), (0.0, 6.0)])
def test_clip(tmp_path, bounds):
    params, extra = {}, []
    names = ["lo", "hi"]
    for name, v in zip(names, bounds):
        if v is None:
            extra.append("")
        else:
            params[name] = np.float32(v)
            extra.append(name)
    while extra and extra[-1] == "":
        extra.pop()
    node = helper.make_node("Clip", ["X"] + extra, ["Y"], name="clip")
    model = make_model([node], {"X": (None, 3, 4, 4)}, ["Y"], params)
    compare(tmp_path, model, {"X": rand(2, 3, 4, 4, low=-8, high=8)})


def test_clip_opset6_attributes(tmp_path):
    _single(tmp_path, "Clip", (2, 3, 4), attrs=dict(min=-0.2, max=0.5), opset=10)


@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (1,), (3, 4, 1)])
def test_prelu(tmp_path, slope_shape):
    _single(tmp_path, "PRelu", (2, 3, 4, 5), {"slope": rand(*slope_shape, seed=1)})


POOL_CASES = [
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1]),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
    dict(kernel_shape=[3, 3], auto_pad="VALID"),
]


@pytest.mark.parametrize("attrs", POOL_CASES)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool0", "AveragePool1"])
def test_pool2d(tmp_path, op, attrs):
    attrs = dict(attrs)
    if op.startswith("AveragePool"):
        attrs["count_include_pad"] = int(op[-1])
        op = "AveragePool"
    _single(tmp_path, op, (2, 3, 9, 10), attrs=attrs)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool1d(tmp_path, op):
    _single(tmp_path, op, (2, 3, 11), attrs=dict(kernel_shape=[3], strides=[2], pads=[1, 1]))


DILATED_POOL_CASES = [
    dict(kernel_shape=[3, 2], dilations=[2, 3]),
    dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], pads=[1, 2, 2, 1]),
    dict(kernel_shape=[2, 3], strides=[2, 1], dilations=[3, 2], ceil_mode=1),
    dict(kernel_shape=[3, 2], strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 0], ceil_mode=1),
    dict(kernel_shape=[2, 2], strides=[1, 2], dilations=[1, 2], auto_pad="VALID"),
]


@pytest.mark.parametrize("attrs", DILATED_POOL_CASES)
@pytest.mark.parametrize("op,opset", [("MaxPool", 10), ("MaxPool", 12), ("MaxPool", 18),
                                      ("AveragePool0", 19), ("AveragePool1", 19)])
def test_pool2d_dilations(tmp_path, op, opset, attrs):
    attrs = dict(attrs)
    if op.startswith("AveragePool"):
        attrs["count_include_pad"] = int(op[-1])
        op = "AveragePool"
    _single(tmp_path, op, (2, 3, 11, 10), attrs=attrs, opset=opset)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [dict(pads=[2, 1]), dict(strides=[2], ceil_mode=1)])
def test_pool1d_dilations(tmp_path, op, attrs):
    _single(tmp_path, op, (2, 3, 13), attrs=dict(kernel_shape=[3], dilations=[2], **attrs),
            opset=19)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool2d_dilations_same(tmp_path, op, auto_pad):
    """auto_pad SAME with dilations as the ONNX spec defines it (output
    ceil(in / stride), padding from the dilated extent): onnxruntime pads by
    the undilated kernel there, so the reference is a NumPy loop."""
    from cnnc.onnx import load_model
    attrs = dict(kernel_shape=[3, 2], strides=[2, 1], dilations=[2, 3], auto_pad=auto_pad)
    node = helper.make_node(op, ["X"], ["Y"], name="pool", **attrs)
    path = str(tmp_path / "same.onnx")
    onnx.save(make_model([node], {"X": (None, 3, 11, 10)}, ["Y"], opset=19), path)
    x = rand(2, 3, 11, 10)
    got = load_model(path).predict(x, verbose=0)
    expected = np.empty((2, 3, 6, 10), np.float32)
    pads = []
    for n, k, s, d in zip((11, 10), (3, 2), (2, 1), (2, 3)):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        pads.append(total - small if auto_pad == "SAME_LOWER" else small)
    for i in range(6):
        for j in range(10):
            rows = [i * 2 - pads[0] + 2 * a for a in range(3)]
            cols = [j - pads[1] + 3 * b for b in range(2)]
            taps = x[:, :, [r for r in rows if 0 <= r < 11]][:, :, :, [c for c in cols
                                                                       if 0 <= c < 10]]
            expected[:, :, i, j] = (taps.max(axis=(2, 3)) if op == "MaxPool"
                                    else taps.mean(axis=(2, 3)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (2, 3, 7)])
def test_global_pool(tmp_path, op, shape):
    _single(tmp_path, op, shape)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset,shape", [(13, (2, 3, 5, 4)), (18, (2, 3, 5, 4)), (18, (2, 3, 7))])
def test_reduce_over_spatial_axes(tmp_path, op, keepdims, opset, shape):
    axes = list(range(2, len(shape)))
    if opset >= 18:
        _single(tmp_path, op, shape, {"A": np.asarray(axes, np.int64)},
                dict(keepdims=keepdims), opset=opset)
    else:
        _single(tmp_path, op, shape, attrs=dict(axes=axes, keepdims=keepdims), opset=opset)


def test_reduce_over_other_axes_is_refused(tmp_path):
    node = helper.make_node("ReduceMean", ["X"], ["Y"], name="channel_mean", axes=[1])
    with pytest.raises(ValueError, match=r"ReduceMean.*channel_mean.*spatial axes"):
        _load(tmp_path, make_model([node], {"X": (None, 3, 4, 4)}, ["Y"], opset=13))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("c_shape", [(), (3, 1, 1), (1, 3, 1, 1), (5,), (4, 5)])
@pytest.mark.parametrize("constant_first", [False, True])
def test_arithmetic_with_constants(tmp_path, op, c_shape, constant_first):
    c = rand(*c_shape, seed=1, low=0.5, high=2.0) if c_shape else np.float32(1.5)
    names = ["C", "X"] if constant_first else ["X", "C"]
    node = helper.make_node(op, names, ["Y"], name="arith")
    model = make_model([node], {"X": (None, 3, 4, 5)}, ["Y"], {"C": c})
    x = rand(2, 3, 4, 5, low=0.5, high=2.0)
    compare(tmp_path, model, {"X": x})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arithmetic_two_tensors(tmp_path, op):
    # the second operand comes through a convolution, the first straight from the input
    nodes = [helper.make_node("Conv", ["X", "W"], ["H"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["H"], ["S"], name="gate"),
             helper.make_node(op, ["X", "S"], ["Y"], name="arith")]
    model = make_model(nodes, {"X": (None, 3, 5, 5)}, ["Y"], {"W": rand(3, 3, 3, 3, seed=1)})
    compare(tmp_path, model, {"X": rand(2, 3, 5, 5)})


def _shaped(name, source, shape, tag):
    """Nodes computing from ``source`` (N, 3, 5, 6) a tensor ``name`` of
    ``shape`` (its sizes 1 or those of the source): a 1-channel conv for a
    channel axis of 1, average pools over the spatial axes of 1."""
    nodes, current = [], source
    if shape[1] == 1:
        nodes.append(helper.make_node("Conv", [current, "W1"], [f"{tag}_c"], name=f"{tag}_conv"))
        current = f"{tag}_c"
    kernel = [5 if shape[2] == 1 else 1, 6 if shape[3] == 1 else 1]
    if kernel != [1, 1]:
        nodes.append(helper.make_node("AveragePool", [current], [f"{tag}_p"], name=f"{tag}_pool",
                                      kernel_shape=kernel))
        current = f"{tag}_p"
    nodes.append(helper.make_node("Sigmoid", [current], [name], name=f"{tag}_gate"))
    return nodes


BROADCAST_SHAPES = [((3, 5, 6), (3, 1, 1)), ((3, 1, 1), (3, 5, 6)), ((3, 5, 6), (1, 5, 6)),
                    ((3, 5, 6), (3, 1, 6)), ((3, 1, 6), (1, 5, 1)), ((1, 1, 1), (3, 5, 6))]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES)
def test_arithmetic_broadcast_tensors(tmp_path, op, shapes):
    """Two computed tensors of different shapes broadcast as NumPy does (the
    squeeze-and-excitation product is (N, C, H, W) * (N, C, 1, 1))."""
    nodes = _shaped("A", "X", (None,) + shapes[0], "a") + _shaped("B", "X", (None,) + shapes[1],
                                                                    "b")
    nodes.append(helper.make_node(op, ["A", "B"], ["Y"], name="arith"))
    model = make_model(nodes, {"X": (None, 3, 5, 6)}, ["Y"], {"W1": rand(1, 3, 1, 1, seed=1)})
    compare(tmp_path, model, {"X": rand(2, 3, 5, 6)}, atol=2e-5)


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("opset", [8, 13])
def test_variadic_broadcast(tmp_path, op, opset):
    nodes = (_shaped("A", "X", (None, 3, 5, 6), "a") + _shaped("B", "X", (None, 3, 1, 1), "b")
             + _shaped("C", "X", (None, 1, 5, 1), "c"))
    nodes.append(helper.make_node(op, ["A", "B", "C"], ["Y"], name="variadic"))
    model = make_model(nodes, {"X": (None, 3, 5, 6)}, ["Y"], {"W1": rand(1, 3, 1, 1, seed=1)},
                       opset)
    compare(tmp_path, model, {"X": rand(2, 3, 5, 6)}, atol=2e-5)


@pytest.mark.parametrize("op", ["Max", "Min", "Sum"])
def test_variadic_with_constants(tmp_path, op):
    node = helper.make_node(op, ["X", "C", "D"], ["Y"], name="variadic")
    model = make_model([node], {"X": (None, 3, 4)}, ["Y"],
                       {"C": rand(3, 1, seed=1), "D": rand(4, seed=2)})
    compare(tmp_path, model, {"X": rand(2, 3, 4)})


def test_arithmetic_refuses_different_ranks(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["X"], ["G"], name="gap"),
             helper.make_node("Flatten", ["G"], ["F"], name="flat"),
             helper.make_node("Mul", ["X", "F"], ["Y"], name="rank_mix")]
    with pytest.raises(ValueError, match=r"Mul.*rank_mix.*different ranks"):
        _load(tmp_path, make_model(nodes, {"X": (None, 3, 4, 4)}, ["Y"]))


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_concat(tmp_path, axis):
    nodes = [helper.make_node("Conv", ["X", "W"], ["H"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["X", "H"], ["Y"], name="cat", axis=axis)]
    model = make_model(nodes, {"X": (None, 3, 4, 4)}, ["Y"], {"W": rand(3, 3, 3, 3, seed=1)})
    compare(tmp_path, model, {"X": rand(2, 3, 4, 4)})


@pytest.mark.parametrize("to_gemm", [True, False])
def test_flatten_after_conv(tmp_path, to_gemm):
    nodes = [helper.make_node("Conv", ["X", "W"], ["H"], name="conv"),
             helper.make_node("Flatten", ["H"], ["F"], name="flat")]
    params = {"W": rand(4, 3, 2, 2, seed=1)}
    if to_gemm:
        nodes.append(helper.make_node("Gemm", ["F", "B"], ["Y"], name="fc", transB=1))
        params["B"] = rand(5, 4 * 3 * 3, seed=2)
    else:
        nodes.append(helper.make_node("Relu", ["F"], ["Y"], name="relu"))
    model = make_model(nodes, {"X": (None, 3, 4, 4)}, ["Y"], params)
    cm = compare(tmp_path, model, {"X": rand(2, 3, 4, 4)})
    # before a Gemm, the Gemm's weight rows are permuted instead of the data
    permutes = sum(type(layer).__name__ == "Permute" for layer in cm.layers)
    assert permutes == (1 if to_gemm else 2)


@pytest.mark.parametrize("target", [[0, -1], [-1, 12, 5], [0, 3, 20]])
def test_reshape(tmp_path, target):
    _single(tmp_path, "Reshape", (2, 3, 4, 5), {"shape": np.array(target, np.int64)})


def test_reshape_static_batch(tmp_path):
    node = helper.make_node("Reshape", ["X", "shape"], ["Y"], name="reshape")
    model = make_model([node], {"X": (2, 3, 4, 5)}, ["Y"],
                       {"shape": np.array([2, 6, 10], np.int64)})
    compare(tmp_path, model, {"X": rand(2, 3, 4, 5)})


def test_reshape_from_shape_arithmetic(tmp_path):
    # x.view(x.size(0), -1) as the TorchScript exporter writes it
    nodes = [helper.make_node("Conv", ["X", "W"], ["H"], name="conv"),
             helper.make_node("Shape", ["H"], ["S"], name="shape"),
             helper.make_node("Gather", ["S", "zero"], ["N"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["N", "axes"], ["N1"], name="unsqueeze"),
             helper.make_node("Concat", ["N1", "minus_one"], ["T"], name="target", axis=0),
             helper.make_node("Reshape", ["H", "T"], ["Y"], name="reshape")]
    params = {"W": rand(4, 3, 2, 2, seed=1), "zero": np.array(0, np.int64),
              "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64)}
    model = make_model(nodes, {"X": (None, 3, 4, 4)}, ["Y"], params)
    compare(tmp_path, model, {"X": rand(2, 3, 4, 4)})


def test_transpose_round_trip(tmp_path):
    nodes = [helper.make_node("Transpose", ["X"], ["T"], name="to_nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Relu", ["T"], ["R"], name="relu"),
             helper.make_node("Transpose", ["R"], ["U"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["U", "W"], ["Y"], name="conv")]
    model = make_model(nodes, {"X": (None, 3, 5, 4)}, ["Y"], {"W": rand(2, 3, 3, 3, seed=1)})
    cm = compare(tmp_path, model, {"X": rand(2, 3, 5, 4)})
    # the transposes cost no layer: two Permutes, NCHW -> NHWC for the conv and back
    assert sum(type(layer).__name__ == "Permute" for layer in cm.layers) == 2


def test_transpose_output(tmp_path):
    _single(tmp_path, "Transpose", (2, 3, 4, 5), attrs=dict(perm=[0, 3, 1, 2]))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(tmp_path, mode):
    pads = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)
    params = {"pads": pads}
    extra = []
    if mode == "constant":
        params["value"] = np.float32(0.5)
    node_inputs = ["X", "pads"] + (["value"] if mode == "constant" else [])
    node = helper.make_node("Pad", node_inputs, ["Y"], name="pad", mode=mode)
    model = make_model([node], {"X": (None, 3, 4, 5)}, ["Y"], params)
    compare(tmp_path, model, {"X": rand(2, 3, 4, 5)})
    del extra


def test_constant_node(tmp_path):
    c = helper.make_tensor("c", onnx.TensorProto.FLOAT, [3, 1, 1], [1.0, -2.0, 0.5])
    nodes = [helper.make_node("Constant", [], ["C"], name="const", value=c),
             helper.make_node("Mul", ["X", "C"], ["Y"], name="mul")]
    model = make_model(nodes, {"X": (None, 3, 2, 2)}, ["Y"])
    compare(tmp_path, model, {"X": rand(2, 3, 2, 2)})


def test_two_inputs_two_outputs(tmp_path):
    nodes = [helper.make_node("Add", ["A", "B"], ["S"], name="add"),
             helper.make_node("Relu", ["S"], ["Y"], name="relu"),
             helper.make_node("Sigmoid", ["B"], ["Z"], name="sig")]
    model = make_model(nodes, {"A": (None, 4), "B": (None, 4)}, ["Y", "Z"])
    compare(tmp_path, model, {"A": rand(3, 4), "B": rand(3, 4, seed=1)})


# -- failures ------------------------------------------------------------------

def _load(tmp_path, model):
    from cnnc.onnx import load_model
    path = str(tmp_path / "bad.onnx")
    onnx.save(model, path)
    return load_model(path)


def test_unsupported_op_names_type_and_node(tmp_path):
    node = helper.make_node("Erf", ["X"], ["Y"], name="my_erf_node")
    with pytest.raises(ValueError, match=r"Erf.*my_erf_node"):
        _load(tmp_path, make_model([node], {"X": (None, 4)}, ["Y"]))


def test_unsupported_attribute_names_it(tmp_path):
    node = helper.make_node("MaxPool", ["X"], ["Y"], name="column_major_pool",
                            kernel_shape=[2, 2], storage_order=1)
    with pytest.raises(ValueError, match=r"MaxPool.*column_major_pool.*storage_order"):
        _load(tmp_path, make_model([node], {"X": (None, 3, 8, 8)}, ["Y"]))
    node = helper.make_node("Relu", ["X"], ["Y"], name="odd_relu", foo=3)
    with pytest.raises(ValueError, match=r"Relu.*odd_relu.*foo"):
        _load(tmp_path, make_model([node], {"X": (None, 3)}, ["Y"]))


def test_non_constant_weight_is_refused(tmp_path):
    node = helper.make_node("Conv", ["X", "W"], ["Y"], name="dyn_conv")
    model = make_model([node], {"X": (None, 3, 5, 5), "W": (2, 3, 3, 3)}, ["Y"])
    with pytest.raises(ValueError, match=r"Conv.*dyn_conv.*constant"):
        _load(tmp_path, model)


def test_corrupt_files(tmp_path):
    from cnnc.onnx import load_model
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ValueError):
        load_model(str(path))
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "missing.onnx"))
    node = helper.make_node("Relu", ["X"], ["Y"], name="r")
    good = make_model([node], {"X": (None, 3)}, ["Y"]).SerializeToString()
    rng = np.random.default_rng(0)
    for i in range(20):  # truncated and bit-flipped copies: a clean error or a working model
        data = bytearray(good[:rng.integers(1, len(good))] if i % 2 else good)
        if i % 2 == 0:
            for _ in range(3):
                data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        try:
            load_model(str(path))
        except (ValueError, FileNotFoundError):
            pass


def test_imported_model_saves_and_loads(tmp_path):
    """Every layer the importer creates survives cnnc's own model file."""
    from cnnc.models import load_model as load_cnnc
    nodes = [helper.make_node("Pad", ["X", "pads"], ["P"], name="pad", mode="reflect"),
             helper.make_node("Conv", ["P", "W"], ["H"], name="conv", group=3),
             helper.make_node("PRelu", ["H", "slope"], ["R"], name="prelu"),
             helper.make_node("HardSigmoid", ["R"], ["S"], name="hs", alpha=0.3),
             helper.make_node("Clip", ["S", "lo", "hi"], ["C"], name="clip"),
             helper.make_node("Sub", ["mean", "C"], ["D"], name="sub"),
             helper.make_node("AveragePool", ["D"], ["A"], name="pool", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1,
                              strides=[2, 2]),
             helper.make_node("Div", ["A", "A2"], ["Y"], name="div"),
             helper.make_node("Sigmoid", ["A"], ["A2"], name="sig")]
    nodes = nodes[:-2] + [nodes[-1], nodes[-2]]
    params = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
              "W": rand(6, 1, 3, 3, seed=1), "slope": rand(6, 1, 1, seed=2),
              "lo": np.float32(0.1), "hi": np.float32(0.8), "mean": rand(6, 1, 1, seed=3)}
    model = make_model(nodes, {"X": (None, 3, 7, 6)}, ["Y"], params)
    cm = compare(tmp_path, model, {"X": rand(2, 3, 7, 6)})
    x = rand(2, 3, 7, 6, seed=5)
    path = str(tmp_path / "imported.cnnc")
    cm.save(path)
    np.testing.assert_array_equal(load_cnnc(path).predict(x, verbose=0),
                                  cm.predict(x, verbose=0))


def test_dynamic_sizes_need_input_shape(tmp_path):
    node = helper.make_node("Conv", ["X", "W"], ["Y"], name="conv", pads=[1, 1, 1, 1])
    graph_input = helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT,
                                                ["N", 3, "H", "W"])
    graph = helper.make_graph([node], "dyn", [graph_input],
                              [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
                              [onnx.numpy_helper.from_array(rand(2, 3, 3, 3), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = str(tmp_path / "dyn.onnx")
    onnx.save(model, path)
    from cnnc.onnx import load_model
    with pytest.raises(ValueError, match="input_shape"):
        load_model(path)
    with pytest.raises(ValueError, match="does not fit"):
        load_model(path, input_shape=(4, 5, 6))
    from onnx_cases import ort_run
    cm = load_model(path, input_shape=(3, 5, 6))
    x = rand(2, 3, 5, 6)
    np.testing.assert_allclose(cm.predict(x, verbose=0), ort_run(path, {"X": x})[0], atol=1e-5)
