"""The C model runtime's fused inference path: weights packed once at load
(dense layers, pointwise, implicit-GEMM and Winograd convolutions), and each
convolution's or dense layer's output stage (bias, a following residual
add, a ReLU-family activation) applied to its output tiles. The results
must equal the unfused layers run one by one (Python's forward) to float
rounding, for every algorithm the convolutions select, every activation,
blocks of K and partial tiles, both thread counts and every ISA path."""
import numpy as np
import pytest

import cnnc
from cnnc import layers as L
from cnnc.models import Model
from cnnc.models import inference
from team_runs import on_one_and_two_threads

ACTIVATIONS = ["relu", "relu6", "leaky", "sigmoid", None]


def _act(x, kind):
    if kind == "relu6":
        return L.ReLU(max_value=6.0)(x)
    if kind == "leaky":
        return L.LeakyReLU(negative_slope=0.2)(x)
    if kind in ("relu", "sigmoid"):
        return L.Activation(kind)(x)
    return x


def _residual_model(act, cin, cout, kernel, strides=1, groups=1, bn=True, shortcut_first=True):
    """x -> conv (+BN) and a shortcut of the conv's output shape, added, then
    the activation; the shortcut computed before or after the branch."""
    inputs = L.Input((9, 10, cin))
    def shortcut():
        return L.Conv2D(cout, 1, strides=strides, name="shortcut")(inputs)
    first = shortcut() if shortcut_first else None
    y = L.Conv2D(cout, kernel, strides=strides, padding="same", groups=groups, name="branch")(inputs)
    if bn:
        y = L.BatchNormalization(name="bn")(y)
    s = first if shortcut_first else shortcut()
    y = _act(L.Add()([y, s]), act)
    y = _act(L.Conv2D(cout, kernel, padding="same", use_bias=False)(y), act)  # no residual
    return Model(inputs, y)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if i in (0, 3)
                               else rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                               for i, w in enumerate(layer.get_weights())])
        elif layer.weights:
            layer.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def _check(model, x, rtol=1e-5):
    assert inference.loaded_model(model) is not None  # runs on the C runtime
    expected = model._run_forward([x], training=False)[0]
    got = model.predict(x, verbose=0)
    scale = np.abs(expected).max() + 1e-6
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)
    return got


CASES = {
    "pointwise": dict(cin=8, cout=37, kernel=1),           # 37: a partial NR panel
    "pointwise_long_k": dict(cin=600, cout=24, kernel=1),  # K past one KC block
    "small_3x3": dict(cin=16, cout=16, kernel=3),
    # 40: a partial NR panel; Winograd at batch 3 (75 tiles), with its kernel
    # transformed at load and the stage applied per pixel
    "winograd_3x3": dict(cin=32, cout=40, kernel=3),
    "implicit_3x3_stride2": dict(cin=12, cout=20, kernel=3, strides=2),
    "implicit_5x5": dict(cin=3, cout=8, kernel=5),
    "grouped_1x1": dict(cin=8, cout=8, kernel=1, groups=2),
    "depthwise_3x3": dict(cin=8, cout=8, kernel=3, groups=8),   # the stage per band of rows
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fused_stage_equals_layers(case, act):
    model = _randomize(_residual_model(act, **CASES[case]), seed=1)
    x = np.random.default_rng(2).standard_normal((3, 9, 10, CASES[case]["cin"])).astype(np.float32)
    _check(model, x)


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("groups", [1, 32])
def test_winograd_and_depthwise_stage_is_exact(batch, isa, groups):
    """A 3x3 convolution takes the implicit GEMM at batch 1 (25 tiles) and
    Winograd from batch 2 on, so the model packs both at load; a depthwise
    one (groups 32) applies the stage per band of output rows. The graph
    runs the shortcut after the branch, so the add goes into the shortcut's
    pointwise stage and the 3x3 convolutions' stages get the activation
    alone (the residual with a bias: the test below). Without batch norm to
    fold, the fused result equals the layers run one by one (the same
    convolution, then the add and the activation over its output) to the
    last bit on each ISA path."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        cout = 40 if groups == 1 else 32
        model = _randomize(_residual_model("relu6", 32, cout, 3, groups=groups, bn=False), seed=11)
        x = np.random.default_rng(12).standard_normal((batch, 9, 10, 32)).astype(np.float32)
        expected = model._run_forward([x], training=False)[0]
        assert inference.loaded_model(model) is not None
        got = model.predict(x, verbose=0)
        np.testing.assert_array_equal(got, expected)
        assert got.min() == 0.0 and got.max() == 6.0  # the activation's both bounds are reached
    finally:
        cnnc.set_isa(original)


# One convolution of each algorithm and edge the runtime's output stage
# meets: odd sizes, channel counts that are no multiple of any vector width,
# valid and same padding, strides, dilations, groups, depth multipliers.
# "env" steers the algorithm where the sizes alone would not reach it.
STAGE_LAYERS = {
    # Winograd from batch 3 (the implicit GEMM at batch 1), edge tiles
    "winograd_same_odd": ((13, 11, 17), lambda: L.Conv2D(19, 3, padding="same"), {}),
    "winograd_valid": ((12, 9, 16), lambda: L.Conv2D(33, 3), {"CNNC_WINOGRAD": "1"}),
    "winograd4_same_odd": ((13, 11, 17), lambda: L.Conv2D(19, 3, padding="same"), {"CNNC_WINOGRAD": "4"}),
    "implicit_bands": ((6, 31, 24), lambda: L.Conv2D(40, 3, padding="same"), {"CNNC_WINOGRAD": "0"}),
    "implicit_packed": ((7, 7, 64), lambda: L.Conv2D(37, 3, padding="same"),
                        {"CNNC_WINOGRAD": "0", "CNNC_CONV_PACKED": "1"}),
    "implicit_narrow_rows": ((5, 3, 8), lambda: L.Conv2D(12, 3, padding="same"), {}),
    "implicit_stride2": ((13, 11, 12), lambda: L.Conv2D(20, 3, strides=2, padding="same"), {}),
    "implicit_5x5_valid": ((11, 9, 3), lambda: L.Conv2D(8, 5), {}),
    "implicit_dilated": ((11, 10, 6), lambda: L.Conv2D(7, 3, dilation_rate=2, padding="same"), {}),
    "grouped": ((9, 10, 8), lambda: L.Conv2D(12, 3, groups=4, padding="same"), {}),
    "pointwise": ((9, 7, 21), lambda: L.Conv2D(37, 1), {}),
    "pointwise_stride2": ((9, 7, 21), lambda: L.Conv2D(37, 1, strides=2), {}),
    "depthwise_multiplier2": ((9, 9, 3), lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), {}),
    "depthwise_37_channels": ((11, 13, 37), lambda: L.DepthwiseConv2D(3, padding="same"), {}),
    "depthwise_stride2_valid": ((12, 13, 24), lambda: L.DepthwiseConv2D(3, strides=2), {}),
    "depthwise_5x5_stride2": ((13, 11, 20), lambda: L.DepthwiseConv2D(5, strides=2, padding="same"), {}),
    "depthwise_dilated": ((10, 9, 16), lambda: L.DepthwiseConv2D(3, dilation_rate=2, padding="same"), {}),
    "depthwise_multiplier3_stride2": ((8, 9, 5), lambda: L.DepthwiseConv2D(
        3, depth_multiplier=3, strides=2, padding="same"), {}),
}
# (residual add, activation) after the convolution
STAGES = [(False, "relu6"), (True, None), (True, "leaky"), (True, "relu")]


def _stage_model(shape, make_layer, residual, act):
    """conv(x) [+ r] then the activation; r (a second input, ready before the
    convolution runs) has the convolution's output shape."""
    x = L.Input(shape)
    y = make_layer()(x)
    inputs = [x]
    if residual:
        r = L.Input(tuple(y.shape[1:]))
        inputs.append(r)
        y = L.Add()([y, r])
    return Model(inputs if residual else x, _act(y, act))


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("case", sorted(STAGE_LAYERS))
def test_output_stage_is_exact_for_every_layer_shape(case, isa, monkeypatch):
    """Each convolution's bias (random, nonzero), residual and activation in
    the runtime's output stage equal the layers run one by one to the last
    bit, at batch 1 and 3, on each ISA path."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    shape, make_layer, env = STAGE_LAYERS[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        for k, (residual, act) in enumerate(STAGES):
            model = _randomize(_stage_model(shape, make_layer, residual, act), seed=20 + k)
            assert inference.loaded_model(model) is not None
            for batch in (1, 3):
                rng = np.random.default_rng(batch)
                xs = [rng.standard_normal((batch,) + tuple(t.shape[1:])).astype(np.float32)
                      for t in model._input_tensors]
                expected = model._run_forward(xs, training=False)[0]
                got = model.predict(xs if residual else xs[0], verbose=0)
                np.testing.assert_array_equal(got, expected, err_msg=f"{case} {isa} batch {batch} "
                                              f"residual {residual} activation {act}")
    finally:
        cnnc.set_isa(original)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("act", [a for _, a in STAGES])
def test_output_stage_keeps_special_values(act, isa):
    """NaN, infinities and -0 (in x and in the residual) come out of the
    runtime's output stage with the layers' bits, sign of zero included, on
    each ISA path, for 37 channels (full vectors and a partial one): the
    stage's ReLU is max(0, v) as the layer's, so -inf gives 0 (0 * v gave
    NaN) and a negative v +0."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        model = _randomize(_stage_model((5, 3, 21), lambda: L.Conv2D(37, 1, use_bias=False), True, act), seed=3)
        assert inference.loaded_model(model) is not None
        rng = np.random.default_rng(4)
        x = rng.standard_normal((2, 5, 3, 21)).astype(np.float32)
        r = rng.standard_normal((2, 5, 3, 37)).astype(np.float32)
        x[0, 0, 0, :] = 0.0  # conv output exactly +0, the residual then decides
        x[0, 1, 0, 3], x[0, 2, 1, 5], x[1, 0, 2, 0] = np.nan, np.inf, -np.inf
        r[0, 0, 0, :5] = [-0.0, 0.0, np.nan, -np.inf, np.inf]
        r[1, 4, 2, 36] = np.nan
        expected = model._run_forward([x, r], training=False)[0]
        got = model.predict([x, r], verbose=0)
        assert np.isnan(expected).any() and (np.isinf(expected).any() or act == "relu6")
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    finally:
        cnnc.set_isa(original)


def test_winograd_variant_other_than_the_packed_one():
    """A 16x16 3x3 convolution takes Winograd F(2x2) from batch 1 on, so the
    loaded model keeps F(2x2)'s transformed kernel, and F(4x4) from batch 9
    on: those batches transform the kernel per call, with the same output
    stage. Both equal the layers run one by one to the last bit, and the two
    variants differ (so both were run)."""
    model = _randomize(_stage_model((16, 16, 32), lambda: L.Conv2D(24, 3, padding="same"), True, "relu"), seed=5)
    assert inference.loaded_model(model) is not None
    outputs = {}
    for batch in (1, 12):
        rng = np.random.default_rng(batch)
        xs = [rng.standard_normal((batch,) + tuple(t.shape[1:])).astype(np.float32) for t in model._input_tensors]
        expected = model._run_forward(xs, training=False)[0]
        got = model.predict(xs, verbose=0)
        np.testing.assert_array_equal(got, expected, err_msg=f"batch {batch}")
        outputs[batch] = (xs, got)
    xs, big = outputs[12]
    first = model.predict([x[:1] for x in xs], verbose=0)
    assert not np.array_equal(first, big[:1])
    np.testing.assert_allclose(first, big[:1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shortcut_first", [True, False])
def test_residual_computed_after_the_branch(shortcut_first):
    # the add moves into the branch's stage only when the shortcut is ready first
    model = _randomize(_residual_model("relu", 8, 16, 1, shortcut_first=shortcut_first), seed=3)
    x = np.random.default_rng(4).standard_normal((2, 9, 10, 8)).astype(np.float32)
    _check(model, x)


def test_identity_shortcut_and_dense_residual():
    inputs = L.Input((6, 6, 16))
    y = L.Conv2D(16, 1)(L.Activation("relu")(L.Conv2D(16, 3, padding="same")(inputs)))
    y = L.Activation("relu")(L.Add()([inputs, y]))         # the block input as residual
    flat = L.Flatten()(y)
    h = L.Dense(40)(flat)
    h = L.ReLU(max_value=6.0)(L.Add()([L.Dense(40)(flat), h]))
    model = _randomize(Model(inputs, L.Dense(5)(h)), seed=5)
    x = np.random.default_rng(6).standard_normal((4, 6, 6, 16)).astype(np.float32)
    _check(model, x)


def test_thread_counts_agree():
    model = _randomize(_residual_model("relu", 8, 40, 1), seed=7)
    x = np.random.default_rng(8).standard_normal((5, 9, 10, 8)).astype(np.float32)
    before = cnnc.get_num_threads()
    try:
        cnnc.set_num_threads(1)
        one = model.predict(x, verbose=0)
        cnnc.set_num_threads(2)
        two = model.predict(x, verbose=0)
    finally:
        cnnc.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_few_pixels_and_dense_rows_split_on_two_threads(isa):
    """At batch 1 a pointwise convolution on a 7 x 7 image (49 pixels, with
    a residual and ReLU in its output stage) and a wide dense layer run one
    GEMM each whose threads may split the output channels rather than the
    pixels or rows: the results equal one thread's to the last bit and the
    layers run one by one to rounding (the running team held at 2 so that
    the split really runs; 300 outputs: a partial panel)."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    inputs = L.Input((7, 7, 512))
    y = L.Conv2D(300, 1)(inputs)
    y = L.Activation("relu")(L.Add()([y, L.Conv2D(300, 1, use_bias=False)(inputs)]))
    y = L.Dense(1000)(L.Flatten()(L.Conv2D(24, 1)(y)))
    model = _randomize(Model(inputs, y), seed=13)
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        for batch in (1, 2):
            x = np.random.default_rng(14).standard_normal((batch, 7, 7, 512)).astype(np.float32)
            results = on_one_and_two_threads(lambda: _check(model, x))
            np.testing.assert_array_equal(results[0], results[1])
    finally:
        cnnc.set_isa(original)


def _relu6_on_one_and_two_threads(model, x, isa):
    """model (ending in ReLU6) checked against its layers on `isa` at 1 and
    2 threads, the running team held whole so that the split really runs:
    the two results equal to the last bit and reaching both bounds."""
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        results = on_one_and_two_threads(lambda: _check(model, x))
        np.testing.assert_array_equal(results[0], results[1])
        assert results[0].min() == 0.0 and results[0].max() == 6.0
    finally:
        cnnc.set_isa(original)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_residual_stage_over_many_panels_and_blocks(isa):
    """With a residual the GEMM applies the output stage to its blocks of
    rows a run of columns at a time, after their products: 600 channels
    are several runs and a partial panel on every ISA, 1,200 pixels several
    blocks of rows and pointwise chunks. Equal to the layers to rounding,
    and on 2 threads to 1 thread's bits."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    inputs = L.Input((20, 30, 24))
    y = L.Add()([L.Conv2D(600, 1)(inputs), L.Conv2D(600, 1, use_bias=False)(inputs)])
    model = _randomize(Model(inputs, L.ReLU(max_value=6.0)(y)), seed=15)
    x = np.random.default_rng(16).standard_normal((2, 20, 30, 24)).astype(np.float32)
    _relu6_on_one_and_two_threads(model, x, isa)


# Depthwise layers with few output rows (a thread would get one row more
# than the other) and enough channels for two threads: the forward pass
# also splits the channels, and each group's output stage starts at its
# own column (the residual's and the activation's). (input shape, layer,
# stride of a 1x1 shortcut added before the activation or 0)
FEW_ROWS = {
    "7x7_bn_relu6": ((7, 7, 1200), lambda: L.DepthwiseConv2D(3, padding="same", use_bias=False), 0),
    "stride2_residual": ((14, 13, 1250), lambda: L.DepthwiseConv2D(3, strides=2, padding="same"), 2),
    "multiplier2": ((7, 9, 620), lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), 0),
}


@pytest.mark.parametrize("case", sorted(FEW_ROWS))
@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_depthwise_few_rows_split_over_channels(case, isa):
    """Batch norm folded and ReLU6 (or a residual add and ReLU6) fused into
    the depthwise stage: equal to the layers run one by one to rounding,
    and on 2 threads to 1 thread's bits."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    shape, make_layer, residual = FEW_ROWS[case]
    inputs = L.Input(shape)
    y = L.BatchNormalization()(make_layer()(inputs))
    if residual:  # the shortcut runs first, so the add goes into the depthwise stage
        y = L.Add()([L.Conv2D(shape[-1], 1, strides=residual, use_bias=False)(inputs), y])
    model = _randomize(Model(inputs, L.ReLU(max_value=6.0)(y)), seed=17)
    x = 4 * np.random.default_rng(18).standard_normal((1,) + shape).astype(np.float32)
    _relu6_on_one_and_two_threads(model, x, isa)


def test_isa_changed_after_packing():
    """Weights packed for one ISA's panels are not read by another's kernels:
    after cnnc.set_isa the runtime packs per call, with the same results."""
    model = _randomize(_residual_model("relu6", 8, 37, 1), seed=9)
    x = np.random.default_rng(10).standard_normal((2, 9, 10, 8)).astype(np.float32)
    first = model.predict(x, verbose=0)
    loaded = inference.loaded_model(model)
    original = cnnc.isa()
    ran = 0
    try:
        for name in ("scalar", "avx2", "avx512"):
            if name == original:
                continue
            try:
                cnnc.set_isa(name)
            except (ValueError, RuntimeError):
                continue  # a path this CPU or build lacks
            ran += 1
            assert inference.loaded_model(model) is loaded  # the same packed model
            np.testing.assert_allclose(model.predict(x, verbose=0), first, rtol=1e-5, atol=1e-5)
    finally:
        cnnc.set_isa(original)
    if not ran:
        pytest.skip(f"no ISA path other than {original} to switch to")


# 1x1 convolutions over few input channels (K) and many pixels (M), as in
# a MobileNet's pointwise layers, each path of the runtime's GEMM: the
# skinny in-place strips (N up to 4 panels), the in-place strips with a
# KC block of B of up to 256 KiB in L2 (N past 4 panels), packed A blocks
# (B past that), and K past one KC block; M with a partial last strip of rows, and
# past one 1,024-pixel chunk. (image side, batch, K, N)
POINTWISE_SHAPES = [
    ((5, 7), 3, 1, 5),
    ((5, 7), 3, 3, 37),
    ((5, 7), 3, 16, 64),
    ((32, 40), 2, 32, 64),
    ((32, 40), 2, 64, 200),
    ((11, 13), 3, 128, 256),
    ((32, 40), 1, 300, 300),
    ((5, 7), 3, 600, 24),
]


def _pointwise_bn_relu6(side, k, n, seed):
    inputs = L.Input(side + (k,))
    y = L.ReLU(max_value=6.0)(L.BatchNormalization()(L.Conv2D(n, 1, use_bias=False)(inputs)))
    return _randomize(Model(inputs, y), seed)


def _pointwise_reference(model, x):
    """float64 NumPy: x w, batch norm, ReLU6; and the bound on float32
    rounding of each element: the sums run over K products, in any order
    and with the batch norm folded into w."""
    conv, bn = [layer for layer in model.layers if layer.weights]
    w = conv.get_weights()[0].astype(np.float64)[0, 0]
    gamma, beta, mean, var = (a.astype(np.float64) for a in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    x64 = x.astype(np.float64).reshape(-1, w.shape[0])
    y = (x64 @ w - mean) * scale + beta
    magnitude = np.abs(x64) @ np.abs(w * scale) + np.abs(mean * scale) + np.abs(beta)
    bound = (w.shape[0] + 4) * 2.0 ** -23 * magnitude + 1e-30
    return np.clip(y, 0.0, 6.0).reshape(x.shape[:-1] + (w.shape[1],)), bound.reshape(x.shape[:-1] + (w.shape[1],))


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("side,batch,k,n", POINTWISE_SHAPES)
def test_pointwise_bn_relu6_against_float64(side, batch, k, n, isa):
    """The runtime's fused 1x1 convolution + batch norm + ReLU6 (batch
    norm folded, the stage applied to the tiles in registers) equals
    float64 NumPy within float32 rounding of its sums, on each ISA path,
    hits both bounds of ReLU6, and gives 1 thread's bits on 2 threads."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        model = _pointwise_bn_relu6(side, k, n, seed=30 + k)
        x = (np.random.default_rng(k).standard_normal((batch,) + side + (k,)) * 20.0 / np.sqrt(k)).astype(np.float32)
        expected, bound = _pointwise_reference(model, x)
        assert inference.loaded_model(model) is not None
        results = on_one_and_two_threads(lambda: model.predict(x, verbose=0))
        np.testing.assert_array_equal(results[0], results[1])
        got = results[0]
        assert np.all(np.abs(got - expected) <= bound), np.abs(got - expected).max()
        assert got.min() == 0.0 and got.max() == 6.0
    finally:
        cnnc.set_isa(original)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("stage", ["bias_relu6", "residual_relu", "bias_residual_leaky", "bias"])
@pytest.mark.parametrize("side,batch,k,n", [s for s in POINTWISE_SHAPES if s[2] <= 256])
def test_pointwise_stage_in_registers_is_exact(side, batch, k, n, stage, isa):
    """Each stage the micro-kernels apply to a tile in registers (bias,
    residual, ReLU6, ReLU, leaky ReLU, on whole and partial tiles) gives the
    bits of the layers run one by one (the convolution with its bias, then
    the add, then the activation) where K fits one KC block, on each ISA
    path."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        x_in = L.Input(side + (k,))
        y = L.Conv2D(n, 1, use_bias=stage != "residual_relu")(x_in)
        inputs = [x_in]
        if "residual" in stage:
            r_in = L.Input(side + (n,))
            inputs.append(r_in)
            y = L.Add()([y, r_in])
        act = {"bias_relu6": "relu6", "residual_relu": "relu", "bias_residual_leaky": "leaky"}.get(stage)
        model = _randomize(Model(inputs if len(inputs) > 1 else x_in, _act(y, act)), seed=40 + k)
        rng = np.random.default_rng(n)
        xs = [rng.standard_normal((batch,) + tuple(t.shape[1:])).astype(np.float32) for t in model._input_tensors]
        expected = model._run_forward(xs, training=False)[0]
        assert inference.loaded_model(model) is not None
        got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        np.testing.assert_array_equal(got, expected)
    finally:
        cnnc.set_isa(original)
