"""The C model runtime (src/include/cnnc/model.h) against the Python layers:
every inference layer and every zoo model, files from model.save, the
predict cache, and corrupt files."""
import json

import numpy as np
import pytest

import cnnc
from cnnc import applications, layers
from cnnc._model import LoadedModel
from cnnc.models import Model, Sequential, inference


def _python_forward(model, xs):
    return model._run_forward(list(xs), training=False)


def _inputs(model, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch,) + tuple(t.shape[1:])).astype(np.float32)
            for t in model._input_tensors]


def _check(model, tol=2e-5, batch=3, tmp_path=None):
    xs = _inputs(model, batch)
    assert inference.loaded_model(model) is not None, "the C runtime refused the model"
    ref = _python_forward(model, xs)
    got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    got = got if isinstance(got, list) else [got]
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=0, atol=tol * scale)
    if tmp_path is not None:
        path = tmp_path / "m.cnnc"
        model.save(path)
        from_file = LoadedModel.from_file(path).predict(xs)
        for g, f in zip(got, from_file):
            np.testing.assert_array_equal(g, f)  # same code, same bits
    return got


def _functional(shape, make, n_inputs=1):
    ins = [layers.Input(shape) for _ in range(n_inputs)]
    out = make(ins if n_inputs > 1 else ins[0])
    return Model(ins if n_inputs > 1 else ins[0], out)


def _randomize(model, seed=1):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            if w.name.endswith("moving_variance") or w.name.endswith("variance"):
                w.value[...] = rng.uniform(0.5, 2.0, w.value.shape)
            else:
                w.value[...] = rng.standard_normal(w.value.shape) * 0.3


SINGLE = [
    ("conv2d_same_relu", (9, 8, 3), lambda x: layers.Conv2D(5, 3, padding="same", activation="relu")(x)),
    ("conv2d_strided_dilated", (11, 10, 4), lambda x: layers.Conv2D(6, 3, strides=2, dilation_rate=1)(x)),
    ("conv2d_dilation", (11, 10, 4), lambda x: layers.Conv2D(6, 3, dilation_rate=2, use_bias=False)(x)),
    ("conv2d_groups", (8, 8, 4), lambda x: layers.Conv2D(6, 3, groups=2, activation="tanh")(x)),
    ("conv1d_causal", (12, 3), lambda x: layers.Conv1D(4, 3, padding="causal", dilation_rate=2)(x)),
    ("conv1d_same_strided", (12, 3), lambda x: layers.Conv1D(4, 3, strides=2, padding="same")(x)),
    ("depthwise", (9, 9, 3), lambda x: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                                               activation="relu6")(x)),
    ("conv_transpose", (5, 6, 3), lambda x: layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x)),
    ("conv_transpose_valid_op", (5, 6, 3), lambda x: layers.Conv2DTranspose(
        4, 3, strides=2, padding="valid", output_padding=1)(x)),
    ("conv2d_explicit_pads", (9, 8, 3), lambda x: layers.Conv2D(4, 3, strides=2, padding=((1, 2), (0, 1)))(x)),
    ("conv1d_explicit_pads", (9, 3), lambda x: layers.Conv1D(4, 3, padding=((2, 1),), dilation_rate=2)(x)),
    ("depthwise_explicit_pads", (9, 8, 3), lambda x: layers.DepthwiseConv2D(3, strides=2, padding=1)(x)),
    ("conv_transpose_explicit", (5, 6, 3), lambda x: layers.Conv2DTranspose(
        4, 3, strides=2, padding=((1, 1), (1, 0)))(x)),
    ("conv_transpose_explicit_op", (5, 6, 3), lambda x: layers.Conv2DTranspose(
        4, 3, strides=2, padding=1, output_padding=1)(x)),
    ("dense_rank3", (4, 5), lambda x: layers.Dense(7, activation="gelu")(x)),
    ("bn_alone", (6, 6, 3), lambda x: layers.BatchNormalization()(x)),
    ("conv_bn_relu", (8, 8, 3), lambda x: layers.ReLU()(layers.BatchNormalization()(
        layers.Conv2D(6, 3, use_bias=False)(x)))),
    ("dense_bn", (6,), lambda x: layers.BatchNormalization(center=False)(layers.Dense(5)(x))),
    ("maxpool_same", (9, 7, 2), lambda x: layers.MaxPooling2D(3, strides=2, padding="same")(x)),
    ("avgpool", (9, 7, 2), lambda x: layers.AveragePooling2D(2)(x)),
    ("pool1d", (10, 3), lambda x: layers.AveragePooling1D(3, padding="same")(
        layers.MaxPooling1D(2)(x))),
    ("global_avg", (5, 6, 3), lambda x: layers.GlobalAveragePooling2D()(x)),
    ("global_max_keep", (5, 6, 3), lambda x: layers.GlobalMaxPooling2D(keepdims=True)(x)),
    ("global_1d", (7, 3), lambda x: layers.GlobalAveragePooling1D()(x)),
    ("global_max_1d", (7, 3), lambda x: layers.GlobalMaxPooling1D()(x)),
    ("flatten_reshape", (4, 3, 2), lambda x: layers.Reshape((-1, 4))(layers.Flatten()(x))),
    ("permute", (4, 3, 2), lambda x: layers.Permute((3, 1, 2))(x)),
    ("dropouts", (6, 6, 2), lambda x: layers.SpatialDropout2D(0.3)(layers.Dropout(0.5)(x))),
    ("spatial_dropout_1d", (6, 2), lambda x: layers.SpatialDropout1D(0.3)(x)),
    ("softmax_last", (4, 5), lambda x: layers.Softmax()(x)),
    ("softmax_axis1", (4, 5), lambda x: layers.Softmax(axis=1)(x)),
    ("relu_general", (20,), lambda x: layers.ReLU(max_value=0.5, negative_slope=0.1, threshold=0.2)(x)),
    ("relu6_layer", (20,), lambda x: layers.ReLU(max_value=6.0)(layers.Rescaling(8.0)(x))),
    ("leaky_elu", (20,), lambda x: layers.ELU(0.7)(layers.LeakyReLU(0.1)(x))),
    ("zero_pad_crop", (6, 5, 2), lambda x: layers.Cropping2D(((1, 0), (2, 1)))(
        layers.ZeroPadding2D(((1, 2), (0, 3)))(x))),
    ("seq_pad_crop_up", (6, 2), lambda x: layers.UpSampling1D(3)(layers.Cropping1D((1, 2))(
        layers.ZeroPadding1D((2, 1))(x)))),
    ("upsample_nearest", (3, 4, 2), lambda x: layers.UpSampling2D((2, 3))(x)),
    ("upsample_bilinear", (3, 4, 2), lambda x: layers.UpSampling2D(2, interpolation="bilinear")(x)),
    ("rescaling", (5, 5, 3), lambda x: layers.Rescaling(1 / 127.5, offset=-1)(x)),
    ("normalization", (5, 3), lambda x: layers.Normalization(mean=[0.5, -1, 2], variance=[4, 1, 0.25])(x)),
    ("normalization_invert", (5, 3), lambda x: layers.Normalization(
        axis=None, mean=1.5, variance=2.0, invert=True)(x)),
    ("augmentation_identity", (8, 8, 3), lambda x: layers.RandomContrast(0.2)(layers.RandomBrightness(0.2)(
        layers.RandomZoom(0.1)(layers.RandomTranslation(0.1, 0.1)(layers.RandomRotation(0.1)(
            layers.RandomFlip()(x))))))),
    ("random_crop_resize", (10, 8, 3), lambda x: layers.RandomCrop(6, 6)(x)),
    ("separable2d_same_relu", (9, 8, 3), lambda x: layers.SeparableConv2D(
        5, 3, padding="same", depth_multiplier=2, activation="relu")(x)),
    ("separable2d_strided_dilated", (11, 10, 4), lambda x: layers.SeparableConvolution2D(
        6, (3, 2), strides=(2, 1), dilation_rate=1, use_bias=False)(x)),
    ("separable2d_dilated_bn", (11, 10, 4), lambda x: layers.BatchNormalization()(layers.SeparableConv2D(
        6, 3, dilation_rate=2)(x))),
    ("separable1d_causal", (12, 3), lambda x: layers.SeparableConv1D(
        4, 3, padding="causal", dilation_rate=2, depth_multiplier=3, activation="tanh")(x)),
    ("separable1d_same_strided", (12, 3), lambda x: layers.SeparableConvolution1D(4, 3, strides=2, padding="same")(x)),
    ("layer_norm_last", (4, 5), lambda x: layers.LayerNormalization()(x)),
    ("layer_norm_image", (5, 4, 6), lambda x: layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5)(x)),
    ("layer_norm_inner_axes", (5, 4, 6), lambda x: layers.LayerNormalization(axis=[1, 2], center=False)(x)),
    ("layer_norm_middle_axis", (5, 4, 6), lambda x: layers.LayerNormalization(axis=2, scale=False)(x)),
    ("group_norm", (4, 4, 6), lambda x: layers.GroupNormalization(groups=2)(x)),
    ("group_norm_instance", (5, 3, 4), lambda x: layers.GroupNormalization(groups=4, epsilon=1e-5)(x)),
    ("group_norm_one_group_1d", (7, 6), lambda x: layers.GroupNormalization(groups=1, center=False)(x)),
    ("group_norm_inner_axis", (4, 6, 3), lambda x: layers.GroupNormalization(groups=3, axis=2, scale=False)(x)),
]

ACTIVATIONS = ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid",
               "tanh", "softmax", "log_softmax", "swish", "silu", "softplus", "softsign", "exponential"]


@pytest.mark.parametrize("name,shape,make", SINGLE, ids=[s[0] for s in SINGLE])
def test_every_layer_matches_python(name, shape, make, tmp_path):
    model = _functional(shape, make)
    _randomize(model)
    _check(model, tmp_path=tmp_path)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(activation):
    model = _functional((6,), lambda x: layers.Activation(activation)(layers.Dense(8, activation=activation)(x)))
    _randomize(model)
    _check(model)


@pytest.mark.parametrize("merge", ["Add", "Subtract", "Multiply", "Divide", "Average", "Maximum", "Minimum",
                                   "Concatenate"])
def test_merges_with_several_inputs(merge, tmp_path):
    n = 2 if merge in ("Subtract", "Divide") else 3
    model = _functional((4, 3), lambda xs: getattr(layers, merge)()(list(xs)), n_inputs=n)
    _check(model, tmp_path=tmp_path)


def test_concatenate_inner_axis_and_multi_output(tmp_path):
    a, b = layers.Input((4, 3)), layers.Input((2, 3))
    c = layers.Concatenate(axis=1)([a, b])
    model = Model([a, b], [layers.Dense(2)(c), layers.Flatten()(c)])
    got = _check(model, tmp_path=tmp_path)
    assert len(got) == 2


@pytest.mark.parametrize("ctor,shape", [
    (applications.LeNet5, (32, 32, 1)), (applications.MnistCNN, (28, 28, 1)),
    (applications.AlexNet, (67, 67, 3)), (applications.VGG16, (32, 32, 3)),
    (applications.VGG19, (32, 32, 3)), (applications.ResNet18, (32, 32, 3)),
    (applications.ResNet34, (32, 32, 3)), (applications.ResNet50, (32, 32, 3))],
    ids=lambda v: getattr(v, "__name__", str(v)))
def test_zoo_models(ctor, shape, tmp_path):
    try:
        model = ctor(input_shape=shape, classes=10)
    except TypeError:
        model = ctor(input_shape=shape)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            layer.moving_mean.value[...] = rng.standard_normal(layer.moving_mean.value.shape) * 0.1
            layer.moving_variance.value[...] = rng.uniform(0.5, 1.5, layer.moving_variance.value.shape)
    _check(model, batch=2, tmp_path=tmp_path)


def test_sequential_and_nested_models(tmp_path):
    inner = Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3, padding="same"),
                        layers.BatchNormalization(), layers.ReLU()], name="inner")
    x = layers.Input((6, 6, 2))
    y = layers.GlobalAveragePooling2D()(inner(x))
    model = Sequential([layers.Input((6, 6, 2)), Model(x, y, name="mid"), layers.Dense(3)])
    _randomize(inner)
    _check(model, tmp_path=tmp_path)


def test_cache_follows_weight_changes():
    model = Sequential([layers.Input((4,)), layers.Dense(3)])
    x = np.ones((2, 4), np.float32)
    first = model.predict(x, verbose=0)
    model.layers[0].kernel.value[0, 0] += 1.0
    second = model.predict(x, verbose=0)
    np.testing.assert_allclose(second - first, np.ones((2, 1)) * np.eye(3)[0], atol=1e-6)
    np.testing.assert_allclose(second, _python_forward(model, [x])[0], atol=1e-6)


def test_custom_layer_falls_back_to_python():
    @layers.register
    class TimesThree(layers.Layer):
        def forward(self, x, training=False):
            return x * np.float32(3)

    model = Sequential([layers.Input((4,)), TimesThree(), layers.Dense(2)])
    assert inference.loaded_model(model) is None
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), _python_forward(model, [x])[0])


def test_wrong_input_shape_still_raises():
    model = Sequential([layers.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError):
        model.predict(np.ones((2, 5), np.float32), verbose=0)


# ---- files: checksums (format version 2) and corrupt files ------------------------------------

def _small_file():
    from cnnc.saving import inference_file_bytes
    model = Sequential([layers.Input((5, 5, 2)), layers.Conv2D(3, 3), layers.Flatten(), layers.Dense(2)])
    return model, inference_file_bytes(model)


def _rewrite_metadata(data, change):
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    change(header["__metadata__"])
    blob = json.dumps(header).encode()
    return len(blob).to_bytes(8, "little") + blob + data[8 + n:]


def test_checksums_verified():
    model, data = _small_file()
    x = _inputs(model)
    np.testing.assert_array_equal(LoadedModel.from_bytes(data).predict(x)[0], model.predict(x[0], verbose=0))
    corrupt = bytearray(data)
    corrupt[-3] ^= 0x40
    with pytest.raises(ValueError, match="CRC-32"):
        LoadedModel.from_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="checksums"):
        LoadedModel.from_bytes(_rewrite_metadata(data, lambda m: m.pop("checksums")))
    with pytest.raises(ValueError, match="metadata_checksum"):
        LoadedModel.from_bytes(_rewrite_metadata(data, lambda m: m.update(cnnc_version="0.0.0-edited")))

    def version_1(meta):
        for key in ("checksums", "metadata_checksum"):
            meta.pop(key)
        meta["format_version"] = "1"
    np.testing.assert_array_equal(LoadedModel.from_bytes(_rewrite_metadata(data, version_1)).predict(x)[0],
                                  model.predict(x[0], verbose=0))


def test_corrupt_files_give_clear_errors():
    _, data = _small_file()
    n = int.from_bytes(data[:8], "little")
    cases = [data[:5], data[:-1], data + b"\0\0\0\0", (2 ** 40).to_bytes(8, "little") + data[8:],
             (n + 4).to_bytes(8, "little") + data[8:], data[:8] + b"[" + data[9:]]
    for bad in cases:
        with pytest.raises(ValueError):
            LoadedModel.from_bytes(bad)
    with pytest.raises(OSError):
        LoadedModel.from_file("/nonexistent/model.cnnc")


# ---- every exported layer class through the C runtime, bit for bit ---------------------------

def _const(op, shape, reverse=False, seed=3):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 2.0, shape).astype(np.float32) * rng.choice([-1, 1], shape).astype(np.float32)
    return lambda x: layers.ConstantArithmetic(op, constant=c, reverse=reverse)(x)


# Layers whose inference maths the C runtime reproduces exactly (no folding
# or fusion that rounds differently): the file's model, loaded by C, gives
# the bits of the Python layers' forward.
EXACT = [
    ("clip_both", (6, 5), lambda x: layers.Clip(-0.5, 0.7)(x)),
    ("clip_max_only", (6, 5), lambda x: layers.Clip(None, 0.3)(x)),
    ("clip_min_only", (6, 5), lambda x: layers.Clip(-0.2, None)(x)),
    ("clip_relu6", (6, 5), lambda x: layers.Clip(0.0, 6.0)(layers.Rescaling(8.0)(x))),
    ("clip_relu_cap", (6, 5), lambda x: layers.Clip(0.0, 0.4)(x)),
    ("hard_sigmoid_keras", (6, 5), lambda x: layers.HardSigmoid()(layers.Rescaling(5.0)(x))),
    ("hard_sigmoid_onnx", (6, 5), lambda x: layers.HardSigmoid(0.2, 0.5)(layers.Rescaling(5.0)(x))),
    ("prelu_per_channel", (5, 6, 3), lambda x: layers.PReLU(shared_axes=[1, 2])(x)),
    ("prelu_full", (4, 5), lambda x: layers.PReLU()(x)),
    ("prelu_shared_inner", (4, 5, 3), lambda x: layers.PReLU(shared_axes=2)(x)),
    ("pad_constant", (4, 5, 3), lambda x: layers.Pad(((1, 2), (0, 3), (1, 0)), constant_value=1.5)(x)),
    ("pad_reflect", (4, 5, 3), lambda x: layers.Pad(((3, 2), (4, 1), (0, 0)), mode="reflect")(x)),
    ("pad_edge_1d", (6, 2), lambda x: layers.Pad(((2, 5), (1, 1)), mode="edge")(x)),
    ("maxpool_explicit_ceil", (9, 8, 2), lambda x: layers.MaxPooling2D(
        3, 2, padding=((1, 1), (1, 1)), ceil_mode=True)(x)),
    ("avgpool_ceil_include_pad", (9, 8, 2), lambda x: layers.AveragePooling2D(
        3, 2, padding=1, ceil_mode=True, count_include_pad=True)(x)),
    ("avgpool_include_pad", (7, 7, 2), lambda x: layers.AveragePooling2D(
        3, 2, padding=((1, 0), (0, 1)), count_include_pad=True)(x)),
    ("avgpool_explicit_exclude_pad", (7, 7, 2), lambda x: layers.AvgPool2D(
        3, 2, padding=((1, 2), (2, 1)))(x)),
    ("avgpool_same_ceil", (7, 8, 2), lambda x: layers.AveragePooling2D(2, 3, padding="same", ceil_mode=True)(x)),
    ("maxpool_dilated", (9, 8, 3), lambda x: layers.MaxPooling2D(2, strides=1, dilation_rate=2)(x)),
    ("maxpool_dilated_pad_ceil", (9, 8, 3), lambda x: layers.MaxPool2D(
        3, 2, padding=((1, 1), (2, 2)), dilation_rate=(2, 3), ceil_mode=True)(x)),
    ("avgpool_dilated_include_pad", (9, 8, 3), lambda x: layers.AveragePooling2D(
        2, 2, padding=1, dilation_rate=2, ceil_mode=True, count_include_pad=True)(x)),
    ("avgpool_dilated_same", (9, 8, 3), lambda x: layers.AveragePooling2D(
        3, 1, padding="same", dilation_rate=(1, 2))(x)),
    ("pool1d_ceil_dilated", (11, 3), lambda x: layers.AveragePooling1D(3, 2, padding=((1, 1),), ceil_mode=True,
                                                                    dilation_rate=2)(
        layers.MaxPooling1D(2, 1, ceil_mode=True, padding=((1, 0),))(x))),
    ("sync_bn", (5, 4), lambda x: layers.SyncBatchNormalization()(x)),
    ("random_erasing", (6, 6, 3), lambda x: layers.RandomErasing()(x)),
    ("convolution_aliases", (6, 6, 3), lambda x: layers.Convolution2DTranspose(2, 2)(
        layers.Convolution2D(3, 2)(x))),
    ("conv1d_alias", (6, 3), lambda x: layers.Convolution1D(2, 2)(x)),
    ("affine_grid_flat", (6,), lambda x: layers.AffineGridGenerator(4, 5)(x)),
    ("affine_grid_matrix", (2, 3), lambda x: layers.AffineGridGenerator(3, 7)(x)),
] + [(f"const_{op}{'_rev' if rev else ''}_{'x'.join(map(str, cs)) or 'scalar'}", (5, 4, 3), _const(op, cs, rev))
     for op in ("add", "subtract", "multiply", "divide", "maximum", "minimum")
     for rev in (False, True) for cs in ((), (3,), (1, 4, 1), (5, 1, 3))]


@pytest.mark.parametrize("name,shape,make", EXACT, ids=[s[0] for s in EXACT])
def test_layers_bit_equal_through_c(name, shape, make, tmp_path):
    model = _functional(shape, make)
    _randomize(model)
    xs = _inputs(model, batch=3)
    xs[0][0, 0] = np.float32(np.nan) if "const" in name or "clip" in name else xs[0][0, 0]
    ref = _python_forward(model, xs)[0]
    path = tmp_path / "m.cnnc"
    model.save(path)
    got = LoadedModel.from_file(path).predict(xs)[0]  # the C API's loader and predict
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(model.predict(xs[0], verbose=0), ref)
    assert inference.loaded_model(model) is not None, "predict ran the Python layers"


# Exported classes that are not layers a saved model runs (bases and
# containers), and those the C runtime cannot run, with the reason.
NOT_LAYERS = {
    "Layer": "the abstract base",
    "InputLayer": "the model's input, not a computation",
    "Lambda": "runs arbitrary Python code (not serializable to a file C can read)",
    "OpLayer": "a traced Python operation: models holding it are Python-only",
    "Masking": "its masks change later layers' maths; the C runtime knows no masks (predict falls back)",
}
# Layer classes with an inference meaning that the C runtime does not run,
# with the reason (predict then runs the Python layers).
C_RUNTIME_GAPS = {}


def _covered_classes():
    import inspect
    seen = set()
    for _, shape, make in SINGLE + EXACT:
        model = _functional(shape, make)
        seen.update(type(layer).__name__ for layer in model.layers)
    seen.update(["Activation", "Add", "Subtract", "Multiply", "Divide", "Average", "Maximum", "Minimum", "Concatenate",
                 "Dense",  # test_merges_with_several_inputs, test_every_activation
                 "BilinearSampler", "Embedding"])  # test_spatial_transformer, test_embedding_*
    exported = {n: v for n, v in vars(layers).items() if inspect.isclass(v) and issubclass(v, layers.Layer)}
    # aliases (AvgPool2D, GlobalMaxPool1D, Convolution2D...) count through the class they name
    classes = {n for n, v in exported.items() if v.__name__ in seen}
    return exported, classes


def test_every_exported_layer_class_is_accounted_for():
    exported, covered = _covered_classes()
    missing = set(exported) - covered - set(NOT_LAYERS) - set(C_RUNTIME_GAPS)
    assert not missing, f"layer classes with no C-runtime parity case: {sorted(missing)}"
    assert not covered & set(C_RUNTIME_GAPS), "a listed gap is now covered: drop it from C_RUNTIME_GAPS"


def test_layer_norm_over_separate_axes_falls_back_to_python():
    """Axes that are not adjacent are refused by the loader with the reason,
    and predict still gives the Python layer's result."""
    model = _functional((3, 4, 5), lambda x: layers.LayerNormalization(axis=[1, 3])(x))
    _randomize(model)
    from cnnc.saving import inference_file_bytes
    with pytest.raises(RuntimeError, match="not adjacent"):
        LoadedModel.from_bytes(inference_file_bytes(model))
    x = _inputs(model)[0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), _python_forward(model, [x])[0])


def _spatial_transformer():
    images = layers.Input((9, 8, 3))
    theta = layers.Dense(6)(layers.Flatten()(images))
    grid = layers.AffineGridGenerator(6, 7)(theta)
    return Model(images, layers.Conv2D(2, 3)(layers.BilinearSampler()([images, grid])))


def test_spatial_transformer(tmp_path):
    model = _spatial_transformer()
    _randomize(model)
    xs = _inputs(model)
    ref = _python_forward(model, xs)[0]
    got = _check(model, tmp_path=tmp_path)[0]
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * max(1.0, float(np.abs(ref).max())))
    # the sampler alone on two model inputs: the bits of the Python layer (the same C kernel)
    images, grid = layers.Input((5, 6, 2)), layers.Input((4, 3, 2))
    sampler = Model([images, grid], layers.BilinearSampler()([images, grid]))
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((3, 5, 6, 2)).astype(np.float32), rng.uniform(-1.3, 1.3, (3, 4, 3, 2)).astype(np.float32)]
    path = tmp_path / "s.cnnc"
    sampler.save(path)
    np.testing.assert_array_equal(LoadedModel.from_file(path).predict(xs)[0], _python_forward(sampler, xs)[0])
    assert inference.loaded_model(sampler) is not None


def _embedding_model(mask_zero=False):
    tokens = layers.Input((6,))
    x = layers.Embedding(11, 4, mask_zero=mask_zero)(tokens)
    return Model(tokens, layers.Dense(3)(layers.Flatten()(x)))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_embedding_through_c(dtype, tmp_path):
    model = _embedding_model()
    tokens = (np.arange(18).reshape(3, 6) * 7 % 11).astype(dtype)
    assert inference.loaded_model(model) is not None
    ref = _python_forward(model, [tokens])[0]
    got = model.predict(tokens, verbose=0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * max(1.0, float(np.abs(ref).max())))
    path = tmp_path / "e.cnnc"
    model.save(path)
    np.testing.assert_array_equal(LoadedModel.from_file(path).predict([tokens])[0], got)
    # the lookup alone is exact
    alone = _functional((2, 3), lambda x: layers.Embedding(11, 5)(x))
    t = tokens[:, :6].reshape(3, 2, 3)
    np.testing.assert_array_equal(LoadedModel.from_bytes(_file_bytes(alone)).predict([t])[0],
                                  _python_forward(alone, [t])[0])


def _file_bytes(model):
    from cnnc.saving import inference_file_bytes
    return inference_file_bytes(model)


@pytest.mark.parametrize("bad,message", [(11, "index 11 is out of range \\[0, 11\\)"), (-1, "index -1 is out"),
                                         (2.5, "whole numbers"), (np.nan, "whole numbers"),
                                         (np.inf, "whole numbers"), (2.0 ** 30, "out of range")])
def test_embedding_indices_checked_by_c(bad, message):
    """The C API takes float32 inputs: an index must hold a whole number in
    range, else predict fails with CNNC_ERR_INVALID_ARGUMENT naming it."""
    loaded = LoadedModel.from_bytes(_file_bytes(_embedding_model()))
    tokens = np.zeros((2, 6), np.float32)
    tokens[1, 3] = bad
    with pytest.raises(ValueError, match=message):
        loaded.predict([tokens])
    with pytest.raises(ValueError, match="Embedding"):
        loaded.predict([tokens])


def test_embedding_mask_zero_consumed_runs_python():
    """A mask that a later layer consumes keeps predict on the Python layers;
    one that nothing consumes changes nothing and the C runtime runs it."""
    tokens = np.array([[1, 2, 0, 0, 0, 0], [3, 4, 5, 0, 0, 0]])
    unused = _functional((6,), lambda x: layers.Embedding(11, 4, mask_zero=True)(x))
    assert inference.loaded_model(unused) is not None
    np.testing.assert_array_equal(unused.predict(tokens, verbose=0), _python_forward(unused, [tokens])[0])
    inp = layers.Input((6,))
    pooled = Model(inp, layers.GlobalAveragePooling1D()(layers.Embedding(11, 4, mask_zero=True)(inp)))
    np.testing.assert_array_equal(pooled.predict(tokens, verbose=0), _python_forward(pooled, [tokens])[0])


def _with_layer_config(model, change):
    """The model's file with the last layer's config edited (checksums
    dropped: format 1, so that the loader reaches the config)."""
    from cnnc.saving import inference_file_bytes

    def edit(meta):
        config = json.loads(meta["model_config"])
        change(config["config"]["layers"][-1]["config"])
        meta["model_config"] = json.dumps(config)
        for key in ("checksums", "metadata_checksum"):
            meta.pop(key)
        meta["format_version"] = "1"
    return _rewrite_metadata(inference_file_bytes(model), edit)


HOSTILE = [
    (layers.Clip(0.0, 1.0), (4,), {"min_value": 2.0, "max_value": 1.0}, "min_value must not exceed"),
    (layers.Clip(0.0, 1.0), (4,), {"min_value": "low"}, "must be a number"),
    (layers.HardSigmoid(), (4,), {"alpha": [1]}, "must be a number"),
    (layers.PReLU(shared_axes=[1, 2]), (3, 4, 2), {"shared_axes": [4]}, "shared_axes"),
    (layers.PReLU(shared_axes=[1, 2]), (3, 4, 2), {"shared_axes": None}, "wrong shape"),
    (layers.PReLU(), (3, 4, 2), {"shared_axes": [[1]]}, "shared_axes"),
    (layers.ConstantArithmetic("add", constant=np.ones(2, np.float32)), (3, 2), {"operation": "power"},
     "unknown operation"),
    (layers.ConstantArithmetic("add", constant=np.ones(2, np.float32)), (3, 2), {"constant_shape": [7]},
     "wrong shape"),
    (layers.ConstantArithmetic("add", constant=np.ones(2, np.float32)), (3, 2), {"constant_shape": [1, 1, 2]},
     "at most"),
    (layers.ConstantArithmetic("add", constant=np.ones(2, np.float32)), (3, 2), {"constant_shape": [0]},
     "positive"),
    (layers.ConstantArithmetic("add", constant=np.ones(2, np.float32)), (3, 2), {"reverse": "yes"},
     "true or false"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"paddings": [[1, 1]]}, "pair per"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"paddings": [[1, -1], [0, 0]]}, "out of range"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"paddings": [[2 ** 40, 0], [0, 0]]}, "out of range"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"paddings": [[3, 0], [0, 0]], "mode": "reflect"}, "reflect"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"mode": "wrap"}, "mode"),
    (layers.Pad(((1, 1), (0, 0))), (3, 2), {"paddings": [[2 ** 24, 2 ** 24], [2 ** 24, 0]]}, "2\\^36"),
    (layers.MaxPooling2D(3), (6, 6, 1), {"padding": [[3, 0], [0, 0]]}, "extent"),
    (layers.MaxPooling2D(3), (6, 6, 1), {"padding": [[1, 0]]}, "pairs"),
    (layers.MaxPooling2D(3), (6, 6, 1), {"dilation_rate": [0, 1]}, "out of range"),
    (layers.MaxPooling2D(3), (6, 6, 1), {"dilation_rate": [2 ** 30, 1]}, "out of range"),
    (layers.MaxPooling2D(3), (6, 6, 1), {"dilation_rate": [3, 1]}, "smaller than the pool"),
    (layers.AveragePooling2D(3), (6, 6, 1), {"ceil_mode": "yes"}, "true or false"),
    (layers.AveragePooling2D(3), (6, 6, 1), {"count_include_pad": 1}, "true or false"),
    (layers.Conv2D(2, 3), (6, 6, 1), {"padding": [[-1, 0], [0, 0]]}, "out of range"),
    (layers.Conv2D(2, 3), (6, 6, 1), {"padding": [[1, 1]]}, "pairs"),
    (layers.Conv2D(2, 3), (6, 6, 1), {"padding": [[1, 1], [1, "a"]]}, "integers"),
    (layers.Conv2DTranspose(2, 3), (6, 6, 1), {"padding": [[9, 9], [0, 0]]}, "no output"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"depth_multiplier": 0}, "out of range"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"depth_multiplier": 2}, "wrong shape"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"depth_multiplier": 2 ** 24}, "too large"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"filters": 2 ** 40}, "out of range"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"filters": 3}, "wrong shape"),
    (layers.SeparableConv2D(2, 3), (6, 6, 2), {"kernel_size": [7, 3]}, "too small"),
    (layers.SeparableConv1D(2, 3), (6, 2), {"padding": "causal", "kernel_size": [4]}, "wrong shape"),
    (layers.LayerNormalization(), (3, 4), {"axis": [0]}, "non-batch"),
    (layers.LayerNormalization(), (3, 4), {"axis": [5]}, "out of range"),
    (layers.LayerNormalization(), (3, 4), {"axis": [2, -1]}, "distinct"),
    (layers.LayerNormalization(), (3, 4), {"axis": []}, "at least one"),
    (layers.LayerNormalization(), (3, 4), {"axis": 1}, "wrong shape"),
    (layers.LayerNormalization(), (3, 4), {"epsilon": -1.0}, "epsilon"),
    (layers.LayerNormalization(), (3, 4), {"center": "no"}, "true or false"),
    (layers.GroupNormalization(groups=2), (3, 4), {"groups": 3}, "cannot be split"),
    (layers.GroupNormalization(groups=2), (3, 4), {"groups": 0}, "out of range"),
    (layers.GroupNormalization(groups=2), (3, 4), {"axis": [1, 2]}, "one integer"),
    (layers.GroupNormalization(groups=2), (3, 4), {"axis": 1}, "cannot be split"),
    (layers.AffineGridGenerator(3, 4), (6,), {"height": 0}, "out of range"),
    (layers.AffineGridGenerator(3, 4), (6,), {"width": 2 ** 30}, "out of range"),
    (layers.AffineGridGenerator(3, 4), (6,), {"height": 2 ** 24, "width": 2 ** 24}, "2\\^36"),
    (layers.Embedding(5, 3), (4,), {"input_dim": 2 ** 25}, "out of range"),
    (layers.Embedding(5, 3), (4,), {"input_dim": 6}, "wrong shape"),
    (layers.Embedding(5, 3), (4,), {"output_dim": 0}, "out of range"),
    (layers.Embedding(5, 3), (4,), {"output_dim": 2 ** 40}, "out of range"),
]


@pytest.mark.parametrize("layer,shape,change,message", HOSTILE, ids=[f"{type(h[0]).__name__}-{i}"
                                                                      for i, h in enumerate(HOSTILE)])
def test_hostile_layer_configs_refused(layer, shape, change, message):
    model = Sequential([layers.Input(shape), layer])
    data = _with_layer_config(model, lambda config: config.update(change))
    with pytest.raises(ValueError, match=message):
        LoadedModel.from_bytes(data)


def test_profile_times_each_node_and_keeps_the_outputs():
    """LoadedModel.profile (cnnc_model_predict_profile): one entry per layer
    call in order, batch norm and the fused activation folded into the
    convolution, a residual add into the second convolution's stage; the
    outputs are predict's, bit for bit."""
    inputs = layers.Input((6, 6, 4))
    a = layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    a = layers.BatchNormalization(name="bn")(a)
    a = layers.ReLU(max_value=6.0, name="relu6")(a)
    b = layers.DepthwiseConv2D(3, padding="same", name="dw")(a)
    b = layers.Conv2D(8, 1, name="conv_b")(b)
    c = layers.Add(name="add")([a, b])
    c = layers.GlobalAveragePooling2D(name="gap")(c)
    model = Model(inputs, layers.Dense(3, activation="softmax", name="head")(c))
    loaded = inference.loaded_model(model)
    assert loaded.nodes() == [("conv_a", "conv"), ("bn", "folded"), ("relu6", "folded"), ("dw", "depthwise_conv"),
                              ("conv_b", "conv"), ("add", "folded"), ("gap", "global_avg_pool"),
                              ("head", "dense")]
    x = _inputs(model, batch=4)
    outputs, wall, cpu = loaded.profile(x)
    np.testing.assert_array_equal(outputs[0], loaded.predict(x)[0])
    np.testing.assert_allclose(outputs[0], _python_forward(model, x)[0], rtol=0, atol=2e-5)
    folded = np.array([kind == "folded" for _, kind in loaded.nodes()])
    assert wall.shape == cpu.shape == (8,)
    assert np.all(wall[folded] == 0) and np.all(cpu[folded] == 0)
    assert np.all(wall[~folded] >= 0) and np.all(cpu[~folded] >= 0) and wall.sum() < 60
    with pytest.raises(ValueError):
        loaded.profile([x[0][:, :3]])


@pytest.mark.parametrize("config", [dict(threshold=0.5), dict(max_value=6.0, threshold=-1.0),
                                    dict(max_value=6.0), dict(negative_slope=0.2, threshold=0.5)])
def test_general_relu_keeps_special_values(config, tmp_path):
    """The runtime's thresholded / capped ReLU gives the ReLU layer's bits on
    -inf, inf, NaN, -0 and values below the threshold (+0 there without a
    slope, not the -0 or NaN of 0 * (x - threshold))."""
    inputs = layers.Input((12,))
    model = Model(inputs, layers.ReLU(**config)(inputs))
    x = np.array([[-np.inf, np.inf, np.nan, -0.0, 0.0, -3.0, -0.75, 0.25, 0.5, 0.75, 7.0, -1.0]],
                 dtype=np.float32)
    ref = model.layers[-1].forward(x.copy())
    path = tmp_path / "relu.cnnc"
    model.save(path)
    for got in (LoadedModel.from_file(path).predict([x])[0], model.predict(x, verbose=0)):
        assert inference.loaded_model(model) is not None
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
