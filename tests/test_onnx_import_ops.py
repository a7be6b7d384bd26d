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


def test_matmul_and_bias(tmp_path):
    nodes = [helper.make_node("MatMul", ["X", "W"], ["H"], name="mm"),
             helper.make_node("Add", ["H", "B"], ["Y"], name="bias")]
    model = make_model(nodes, {"X": (None, 6)}, ["Y"], {"W": rand(6, 4, seed=1),
                                                        "B": rand(4, seed=2)})
    cm = compare(tmp_path, model, {"X": rand(3, 6)})
    assert [type(layer).__name__ for layer in cm.layers[1:]] == ["Dense"]


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


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (2, 3, 7)])
def test_global_pool(tmp_path, op, shape):
    _single(tmp_path, op, shape)


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
    node = helper.make_node("MaxPool", ["X"], ["Y"], name="dilated_pool", kernel_shape=[2, 2],
                            dilations=[2, 2])
    with pytest.raises(ValueError, match=r"MaxPool.*dilated_pool.*dilations"):
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
