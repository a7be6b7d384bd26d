"""cnnc -> ONNX -> onnxruntime: every zoo model (small inputs) and every
layer with an inference meaning gives cnnc's predictions; zoo models also
come back through cnnc.onnx.load_model."""
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from cnnc import applications, layers as L  # noqa: E402
from cnnc.models import Model, Sequential  # noqa: E402
from cnnc.onnx import export, load_model  # noqa: E402


def _ort(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    xs = x if isinstance(x, list) else [x]
    return session.run(None, dict(zip(names, xs)))


def _check(model, x, tmp_path, atol=1e-4, expected=None, **kwargs):
    path = str(tmp_path / "model.onnx")
    export(model, path, **kwargs)
    if expected is None:
        expected = model.predict(x, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    got = _ort(path, x)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=atol, rtol=1e-4)
    return path


# (name, input shape, extra arguments, whether to also check NCHW export and re-import)
ZOO = [("LeNet5", (32, 32, 1), {}, True), ("MnistCNN", (28, 28, 1), {}, True),
       ("AlexNet", (67, 67, 3), dict(include_top=False, pooling="max"), False),
       ("VGG16", (32, 32, 3), dict(dense_units=32), True),
       ("VGG19", (32, 32, 3), dict(dense_units=32), False),
       ("ResNet18", (32, 32, 3), {}, True), ("ResNet34", (32, 32, 3), {}, False),
       ("ResNet50", (32, 32, 3), {}, False)]


@pytest.mark.parametrize("name,shape,kwargs,thorough", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_round_trips(tmp_path, name, shape, kwargs, thorough):
    if kwargs.get("include_top", True):
        kwargs = dict(kwargs, classes=7, classifier_activation=None)
    model = getattr(applications, name)(input_shape=shape, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # inference statistics that matter
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.value[...] = rng.uniform(-0.5, 0.5, layer.moving_mean.shape)
            layer.moving_variance.value[...] = rng.uniform(0.5, 1.5, layer.moving_variance.shape)
    x = rng.random((2,) + shape, dtype=np.float32)
    y = model.predict(x, verbose=0)
    path = _check(model, x, tmp_path, expected=y)
    if not thorough:
        return
    back = load_model(path)  # the file takes NHWC inputs: the model takes them as they are
    np.testing.assert_allclose(back.predict(x, verbose=0), y, atol=1e-4, rtol=1e-4)
    nchw = str(tmp_path / "nchw.onnx")
    export(model, nchw, input_layout="NCHW")
    np.testing.assert_allclose(_ort(nchw, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))[0],
                               y, atol=1e-4, rtol=1e-4)


def _normalization():
    layer = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[1.5, 0.5, 2.0])
    return layer


# (id, input shape without batch, layer or a function of the input tensor)
LAYERS = [
    ("dense", (6,), lambda: L.Dense(4, activation="relu")),
    ("dense_rank3", (5, 6), lambda: L.Dense(3, use_bias=False)),
    ("conv1d_valid", (12, 3), lambda: L.Conv1D(4, 3, activation="tanh")),
    ("conv1d_same_stride", (12, 3), lambda: L.Conv1D(4, 3, strides=2, padding="same")),
    ("conv1d_causal_dilated", (12, 4), lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2,
                                                        groups=2)),
    ("conv1d_explicit", (12, 3), lambda: L.Conv1D(4, 3, padding=(2, 0))),
    ("conv2d_same_stride", (9, 8, 3), lambda: L.Conv2D(5, 3, strides=2, padding="same")),
    ("conv2d_explicit", (9, 8, 3), lambda: L.Conv2D(5, (3, 2), padding=((1, 2), (0, 1)))),
    ("conv2d_dilated_same", (9, 8, 4), lambda: L.Conv2D(4, 3, padding="same", dilation_rate=2,
                                                        groups=2, activation="sigmoid")),
    ("conv2d_dilated_same_strided", (9, 8, 3), lambda: L.Conv2D(4, 3, strides=2,
                                                                padding="same",
                                                                dilation_rate=(2, 1))),
    ("depthwise", (8, 8, 3), lambda: L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)),
    ("conv_transpose_valid", (5, 6, 3), lambda: L.Conv2DTranspose(4, 3, strides=2)),
    ("conv_transpose_same", (5, 6, 3), lambda: L.Conv2DTranspose(4, 4, strides=2, padding="same")),
    ("conv_transpose_output_padding", (5, 6, 3), lambda: L.Conv2DTranspose(
        4, 3, strides=2, padding="same", output_padding=1)),
    ("conv_transpose_explicit_groups", (5, 6, 4), lambda: L.Conv2DTranspose(
        6, 3, strides=2, padding=((1, 0), (0, 2)), groups=2, dilation_rate=1)),
    ("conv_transpose_same_groups", (5, 6, 4), lambda: L.Conv2DTranspose(6, 3, strides=2,
                                                                         padding="same",
                                                                         groups=2)),
    ("conv_transpose_dilated", (5, 6, 3), lambda: L.Conv2DTranspose(4, 3, dilation_rate=2)),
    ("max_pool2d_same", (9, 8, 3), lambda: L.MaxPooling2D(3, 2, padding="same")),
    ("avg_pool2d_same", (9, 8, 3), lambda: L.AveragePooling2D(3, 2, padding="same")),
    ("avg_pool2d_ceil_include", (9, 8, 3), lambda: L.AveragePooling2D(
        3, 2, padding=((1, 1), (1, 0)), ceil_mode=True, count_include_pad=True)),
    ("max_pool2d_ceil", (9, 8, 3), lambda: L.MaxPooling2D(3, 2, ceil_mode=True)),
    ("max_pool1d", (11, 3), lambda: L.MaxPooling1D(3, 2, padding="same")),
    ("avg_pool1d", (11, 3), lambda: L.AveragePooling1D(2)),
    ("global_avg2d", (5, 4, 3), lambda: L.GlobalAveragePooling2D()),
    ("global_max2d_keepdims", (5, 4, 3), lambda: L.GlobalMaxPooling2D(keepdims=True)),
    ("global_avg1d", (7, 3), lambda: L.GlobalAveragePooling1D()),
    ("global_max1d", (7, 3), lambda: L.GlobalMaxPooling1D()),
    ("flatten", (4, 3, 2), lambda: L.Flatten()),
    ("reshape", (4, 3, 2), lambda: L.Reshape((6, -1))),
    ("dropout", (4, 3), lambda: L.Dropout(0.5)),
    ("spatial_dropout1d", (4, 3), lambda: L.SpatialDropout1D(0.5)),
    ("spatial_dropout2d", (4, 4, 3), lambda: L.SpatialDropout2D(0.5)),
    ("batch_norm", (4, 4, 3), lambda: L.BatchNormalization()),
    ("batch_norm_axis1", (4, 5, 3), lambda: L.BatchNormalization(axis=1)),
    ("batch_norm_dense", (6,), lambda: L.BatchNormalization(center=False)),
    ("relu", (4, 4, 3), lambda: L.ReLU()),
    ("relu6", (4, 4, 3), lambda: L.ReLU(max_value=6.0)),
    ("relu_threshold", (4, 4, 3), lambda: L.ReLU(max_value=1.0, negative_slope=0.1,
                                                 threshold=0.2)),
    ("relu_slope_max", (4, 4, 3), lambda: L.ReLU(max_value=2.0, negative_slope=0.1)),
    ("leaky_relu", (4, 4, 3), lambda: L.LeakyReLU(0.3)),
    ("elu", (4, 4, 3), lambda: L.ELU(0.7)),
    ("prelu", (4, 4, 3), lambda: L.PReLU(alpha_initializer="random_uniform", shared_axes=[1, 2])),
    ("prelu_full", (4, 3), lambda: L.PReLU(alpha_initializer="random_uniform")),
    ("clip", (4, 4, 3), lambda: L.Clip(-0.3, 0.5)),
    ("clip_low_only", (4, 3), lambda: L.Clip(min_value=0.1)),
    ("hard_sigmoid", (4, 4, 3), lambda: L.HardSigmoid(0.2, 0.4)),
    ("softmax_last", (4, 4, 3), lambda: L.Softmax()),
    ("softmax_axis1", (4, 4, 3), lambda: L.Softmax(axis=1)),
    ("zero_padding2d", (4, 4, 3), lambda: L.ZeroPadding2D(((1, 2), (0, 1)))),
    ("zero_padding1d", (4, 3), lambda: L.ZeroPadding1D((2, 1))),
    ("cropping2d", (6, 6, 3), lambda: L.Cropping2D(((1, 0), (2, 1)))),
    ("cropping1d", (6, 3), lambda: L.Cropping1D((1, 2))),
    ("upsampling2d", (3, 4, 2), lambda: L.UpSampling2D((2, 3))),
    ("upsampling2d_bilinear", (3, 4, 2), lambda: L.UpSampling2D(2, interpolation="bilinear")),
    ("upsampling1d", (4, 3), lambda: L.UpSampling1D(3)),
    ("permute", (4, 5, 3), lambda: L.Permute((3, 1, 2))),
    ("pad_reflect", (4, 5, 3), lambda: L.Pad([(1, 2), (2, 1), (0, 0)], mode="reflect")),
    ("pad_constant", (4, 5, 3), lambda: L.Pad([(1, 0), (0, 1), (1, 1)], constant_value=0.5)),
    ("pad_edge", (4, 5), lambda: L.Pad([(0, 2), (1, 0)], mode="edge")),
    ("constant_divide_reverse", (4, 5, 3), lambda: L.ConstantArithmetic(
        "divide", constant=np.array([1.0, 2.0, -0.5], np.float32), reverse=True)),
    ("constant_subtract", (4, 5, 3), lambda: L.ConstantArithmetic(
        "subtract", constant=np.arange(15, dtype=np.float32).reshape(5, 3))),
    ("rescaling", (4, 4, 3), lambda: L.Rescaling(1 / 255.0, offset=-0.5)),
    ("normalization", (4, 4, 3), _normalization),
    ("random_flip", (4, 4, 3), lambda: L.RandomFlip()),
    ("random_rotation", (4, 4, 3), lambda: L.RandomRotation(0.2)),
    ("random_zoom", (4, 4, 3), lambda: L.RandomZoom(0.2)),
    ("random_translation", (4, 4, 3), lambda: L.RandomTranslation(0.1, 0.1)),
    ("random_contrast", (4, 4, 3), lambda: L.RandomContrast(0.2)),
    ("random_brightness", (4, 4, 3), lambda: L.RandomBrightness(0.2)),
    ("random_crop_resize", (9, 7, 3), lambda: L.RandomCrop(5, 6)),
    ("random_crop_upscale", (6, 9, 2), lambda: L.RandomCrop(8, 7)),
]

ACTIVATIONS = ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh",
               "sigmoid", "hard_sigmoid", "hard_silu", "tanh", "softmax", "log_softmax",
               "swish", "softplus", "softsign", "exponential"]


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_exports(tmp_path, case):
    _, shape, make = case
    inputs = L.Input(shape=shape)
    model = Model(inputs, make()(inputs))
    x = np.random.default_rng(1).uniform(-2, 2, (3,) + shape).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.value[...] = 0.3
            layer.moving_variance.value[...] = 2.0
    _check(model, x, tmp_path)
    if len(shape) >= 2:
        nchw = str(tmp_path / "nchw.onnx")
        export(model, nchw, input_layout="NCHW")
        y = model.predict(x, verbose=0)
        got = _ort(nchw, np.ascontiguousarray(np.moveaxis(x, -1, 1)))[0]
        np.testing.assert_allclose(got, np.moveaxis(y, -1, 1) if y.ndim >= 3 else y, atol=1e-4,
                                   rtol=1e-4)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("opset", [13, 20])
def test_activation_exports(tmp_path, name, opset):
    inputs = L.Input(shape=(4, 3))
    model = Model(inputs, L.Conv1D(3, 2, activation=name)(inputs))
    x = np.random.default_rng(2).uniform(-4, 4, (2, 4, 3)).astype(np.float32)
    _check(model, x, tmp_path, opset=opset)


def test_merges_and_nested_models(tmp_path):
    a, b = L.Input(shape=(6, 6, 3), name="a"), L.Input(shape=(6, 6, 3), name="b")
    ca = L.Conv2D(4, 3, padding="same")(a)
    cb = L.Conv2D(4, 1)(b)
    inner_in = L.Input(shape=(6, 6, 4))
    inner = Model(inner_in, L.Conv2D(4, 3, padding="same", activation="relu")(inner_in),
                  name="inner")
    merged = [L.Add()([ca, cb]), L.Subtract()([ca, cb]), L.Multiply()([ca, cb, ca]),
              L.Average()([ca, cb]), L.Maximum()([ca, cb]), L.Minimum()([ca, cb, ca]),
              L.Divide()([ca, L.Activation("sigmoid")(cb)]), inner(ca)]
    joined = L.Concatenate()(merged)
    flat = L.Flatten()(L.Concatenate(axis=1)([joined, joined]))
    model = Model([a, b], [L.Dense(3)(flat), joined])
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 6, 6, 3)).astype(np.float32) for _ in range(2)]
    _check(model, xs, tmp_path)


def test_sequential_and_fixed_batch(tmp_path):
    model = Sequential([L.Input(shape=(8, 8, 1)), L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    x = np.random.default_rng(4).standard_normal((5, 8, 8, 1)).astype(np.float32)
    path = _check(model, x, tmp_path, batch_size=5)
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [5, 8, 8, 1]


def test_export_errors(tmp_path):
    inputs = L.Input(shape=(4,))
    model = Model(inputs, L.Dense(2)(inputs))
    with pytest.raises(ValueError, match="opset"):
        export(model, str(tmp_path / "m.onnx"), opset=7)
    with pytest.raises(ValueError, match="input_layout"):
        export(model, str(tmp_path / "m.onnx"), input_layout="NCWH")
    with pytest.raises(TypeError):
        export(L.Dense(2), str(tmp_path / "m.onnx"))

    class Custom(L.Layer):
        def forward(self, x, training=False):
            return x

    custom = Model(inputs, Custom()(inputs))
    with pytest.raises(ValueError, match="Custom"):
        export(custom, str(tmp_path / "c.onnx"))
    assert not (tmp_path / "c.onnx").exists()


def test_missing_onnx_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    inputs = L.Input(shape=(4,))
    model = Model(inputs, L.Dense(2)(inputs))
    with pytest.raises(ImportError, match=r"cnnc\[onnx\]"):
        export(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ImportError, match=r"cnnc\[onnx\]"):
        load_model(str(tmp_path / "m.onnx"))


def test_shared_layer_exports(tmp_path):
    inputs = L.Input(shape=(6, 6, 3))
    conv = L.Conv2D(3, 3, padding="same", activation="tanh")
    model = Model(inputs, conv(conv(inputs)))
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 3)).astype(np.float32)
    _check(model, x, tmp_path)
