"""Fused passes of a graph model's training step (cnnc.models.fusion): batch
normalization and the residual sum apply the ReLU after them in their own
pass, forward and backward. Training with fusion must give the weights,
moving statistics, gradients and losses of training without it to the last
bit, on every ISA path, in deterministic mode and in the default mode at one
thread; where fusion must not apply (the pre-activation read elsewhere, a
ReLU with options, inference calls, masks, subclasses that change the
computation) the results are those of the separate layers, and with
recomputation the fused steps equal the unfused ones without it."""
import numpy as np
import pytest

import cnnc
from cnnc import layers
from cnnc import _kernels as ops
from cnnc.applications import CompactResNet
from cnnc.models import fusion


@pytest.fixture(params=[("deterministic", 2), ("default", 1)], ids=["deterministic", "default-1t"])
def mode(request):
    kind, threads = request.param
    previous = cnnc.get_deterministic(), cnnc.get_num_threads()
    cnnc.set_deterministic(kind == "deterministic")
    cnnc.set_num_threads(threads)
    yield request.param
    cnnc.set_deterministic(previous[0])
    cnnc.set_num_threads(previous[1])


def _random_bn(model, seed):
    """Batch norms with scales and shifts away from 1 and 0, so that the
    ReLUs after them cut real parts of the batch."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mm, mv = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.uniform(-0.5, 0.5, beta.shape).astype(np.float32), mm, mv])
    return model


def _train(build, x, y, fused, steps=3, recompute=False, optimizer=None):
    """Losses, weights, gradients and the fused step names of ``steps``
    training steps of a fresh model."""
    previous = fusion.set_enabled(fused)
    try:
        model = build()
        model.compile(optimizer or cnnc.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                      "sparse_categorical_crossentropy", recompute=recompute)
        losses = [model.train_on_batch(x, y) for _ in range(steps)]
        applied = sorted(model._steps[i].layer.name for i in model._relus_applied)
    finally:
        fusion.set_enabled(previous)
    return (losses, [w.value.copy() for w in model.weights],
            [w.grad.copy() for w in model.trainable_weights], applied, model)


def _assert_same(a, b):
    (l0, w0, g0, *_), (l1, w1, g1, *_) = a, b
    assert l0 == l1
    assert len(w0) == len(w1) and len(g0) == len(g1)
    for u, v in zip(w0 + g0, w1 + g1):
        np.testing.assert_array_equal(u, v)
        assert u.tobytes() == v.tobytes()  # -0 and NaN payloads too


def _compact(seed=0):
    cnnc.utils.set_random_seed(seed)
    return _random_bn(CompactResNet(width=16, blocks=(2, 2)), seed)


def test_compact_resnet_trains_the_same_bits_fused(isa, mode):
    rng = np.random.default_rng(1)
    x = rng.random((8, 28, 28, 1), dtype=np.float32)
    y = np.arange(8) % 10
    fused = _train(_compact, x, y, True)
    plain = _train(_compact, x, y, False)
    _assert_same(fused, plain)
    # the stem, the two downsampling convs and the first conv of each of
    # the four blocks (batch norm + ReLU), and the four residual sums
    assert len(fused[3]) == 11 and plain[3] == []
    assert sum(name.endswith("_add") for name in fused[3]) == 4


def _resnet_like(seed=0):
    """Every pairing the fusion handles, and those it must leave alone."""
    cnnc.utils.set_random_seed(seed)
    inp = layers.Input((9, 9, 3))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization(name="bn_relu")(x)
    x = layers.ReLU(name="relu_1")(x)
    y = layers.Conv2D(8, 3, padding="same")(x)
    y = layers.BatchNormalization(name="bn_act")(y)
    y = layers.Activation("relu", name="act_relu")(y)
    y = layers.Conv2D(8, 1)(y)
    y = layers.BatchNormalization(name="bn_b")(y)
    s = layers.Conv2D(8, 1)(x)
    s = layers.SyncBatchNormalization(name="bn_shortcut")(s)  # read twice: no fusion
    z = layers.ReLU(name="relu_add")(layers.Add(name="add_2")([s, y]))
    w = layers.Conv2D(8, 3, padding="same")(z)
    w = layers.BatchNormalization(name="bn_w")(w)
    z = layers.ReLU(name="relu_add3")(layers.Add(name="add_3")([z, w, s]))
    # batch norm over axis 1 (not the last): the ReLU still fuses
    a = layers.BatchNormalization(axis=1, name="bn_axis1")(layers.Conv2D(8, 1)(z))
    a = layers.ReLU(name="relu_axis1")(a)
    # a ReLU with options, a broadcasting sum and an Average: not fused
    c = layers.BatchNormalization(name="bn_relu6")(layers.Conv2D(8, 1)(a))
    c = layers.ReLU(max_value=6.0, name="relu6")(c)
    g = layers.GlobalAveragePooling2D(keepdims=True)(c)
    c = layers.ReLU(name="relu_bcast")(layers.Add(name="add_bcast")([c, g]))
    c = layers.ReLU(name="relu_avg")(layers.Average(name="avg")([c, a]))
    c = layers.Dropout(0.25)(c)
    c = layers.GlobalAveragePooling2D()(c)
    out = layers.Dense(4, activation="softmax")(c)
    return _random_bn(cnnc.Model(inp, out), seed)


def test_resnet_like_trains_the_same_bits_fused(isa, mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 9, 9, 3)).astype(np.float32)
    y = np.arange(6) % 4
    fused = _train(_resnet_like, x, y, True)
    plain = _train(_resnet_like, x, y, False)
    _assert_same(fused, plain)
    assert fused[3] == ["add_2", "add_3", "bn_act", "bn_axis1", "bn_relu"]
    model = fused[4]
    planned = sorted(s.layer.name for s in model._steps if s.relu_after is not None)
    # planned, yet each forward leaves the ReLU to its own layer: a sum of
    # shapes that broadcast
    assert planned == ["add_2", "add_3", "add_bcast", "bn_act", "bn_axis1", "bn_relu"]


def test_adam_and_sequential_models_fuse_with_the_same_bits():
    def build():
        cnnc.utils.set_random_seed(3)
        return _random_bn(cnnc.Sequential([
            layers.Input((8, 8, 2)), layers.Conv2D(6, 3, padding="same"),
            layers.BatchNormalization(), layers.ReLU(),
            layers.Conv2D(6, 3, padding="same"), layers.BatchNormalization(),
            layers.Activation("relu"), layers.Flatten(), layers.Dense(3, activation="softmax")]), 3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 8, 8, 2)).astype(np.float32)
    y = np.arange(5) % 3
    fused = _train(build, x, y, True, optimizer=cnnc.optimizers.Adam(1e-2))
    plain = _train(build, x, y, False, optimizer=cnnc.optimizers.Adam(1e-2))
    _assert_same(fused, plain)
    assert len(fused[3]) == 2


def test_the_fused_add_hands_one_masked_gradient_to_every_input():
    layer = layers.Add()
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(2))
    layer._fuse_relu = True
    y = layer.forward([a.copy(), b.copy()], training=True)
    layer._fuse_relu = False
    assert layer._relu_applied
    np.testing.assert_array_equal(y, np.maximum(a + b, 0))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    da, db = layer.backward(dy)
    assert da is db
    np.testing.assert_array_equal(da, np.where(a + b > 0, dy, 0))


def test_fusion_is_not_planned_where_the_pre_activation_is_read_elsewhere():
    inp = layers.Input((5, 5, 2))
    bn = layers.BatchNormalization(name="bn_out")(inp)
    r = layers.ReLU(name="r1")(bn)
    shared = layers.BatchNormalization(name="shared_bn")
    u = layers.ReLU(name="r2")(shared(r))
    v = layers.ReLU(name="r3")(shared(u))
    leaky = layers.ReLU(negative_slope=0.1, name="leaky")(layers.BatchNormalization()(v))
    twice = layers.BatchNormalization(name="read_twice")(leaky)
    both = layers.Add()([layers.ReLU()(twice), layers.Conv2D(2, 1)(twice)])
    model = cnnc.Model(inp, [bn, r, both])  # batch norm's output is a model output
    assert all(s.relu_after is None and s.relu_of is None for s in model._steps)

    class MyBN(layers.BatchNormalization):
        def forward(self, x, training=False, mask=None):
            return super().forward(x, training=training, mask=mask) - 1.0

    class MyReLU(layers.ReLU):
        pass

    inp = layers.Input((5, 5, 2))
    out = layers.ReLU()(MyBN()(inp))
    out = MyReLU()(layers.BatchNormalization()(out))
    model = cnnc.Model(inp, out)
    assert all(s.relu_after is None for s in model._steps)


def test_inference_calls_and_frozen_batch_norms_are_not_fused():
    model = _resnet_like(5)
    x = np.random.default_rng(6).standard_normal((4, 9, 9, 3)).astype(np.float32)
    expected = model(x, training=False)
    with fusion.disabled():
        assert np.array_equal(model(x, training=False), expected)
    assert model._relus_applied == set()
    y = np.arange(4) % 4
    fused = _train(lambda: _frozen(_resnet_like(5)), x, y, True)
    plain = _train(lambda: _frozen(_resnet_like(5)), x, y, False)
    _assert_same(fused, plain)
    assert fused[3] == ["add_2", "add_3"]


def test_a_layer_called_with_training_false_in_the_graph_is_not_fused():
    """Keras's ``bn(x, training=False)`` inside a model: moving statistics in
    training too, so its ReLU runs as its own layer; the sum after it fuses."""
    def build():
        cnnc.utils.set_random_seed(9)
        inp = layers.Input((6, 6, 2))
        h = layers.Conv2D(4, 3, padding="same")(inp)
        h = layers.BatchNormalization(name="bn_inference")(h, training=False)
        h = layers.ReLU()(h)
        s = layers.BatchNormalization(name="bn_batch")(layers.Conv2D(4, 1)(h))
        h = layers.ReLU()(layers.Add(name="add")([h, s]))
        h = layers.GlobalAveragePooling2D()(h)
        return _random_bn(cnnc.Model(inp, layers.Dense(3, activation="softmax")(h)), 9)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    y = np.arange(4) % 3
    fused = _train(build, x, y, True)
    plain = _train(build, x, y, False)
    _assert_same(fused, plain)
    assert fused[3] == ["add"]


def _frozen(model):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return model


def test_masked_steps_are_not_fused():
    def build():
        cnnc.utils.set_random_seed(7)
        inp = layers.Input((6,))
        h = layers.Embedding(10, 4, mask_zero=True)(inp)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
        h = layers.GlobalAveragePooling1D()(h)
        return cnnc.Model(inp, layers.Dense(3, activation="softmax")(h))
    x = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0], [6, 7, 8, 9, 1, 0]], np.float32)
    y = np.array([0, 1, 2])
    fused = _train(build, x, y, True)
    plain = _train(build, x, y, False)
    _assert_same(fused, plain)
    assert fused[3] == []


@pytest.mark.parametrize("spec", [True, "bn_relu", "relu_add3"])
def test_recompute_with_fusion_equals_the_plain_steps(spec):
    """Segments cut between a batch norm and its ReLU ("bn_relu") or after
    a fused sum's ReLU ("relu_add3") replay the fused steps."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 9, 9, 3)).astype(np.float32)
    y = np.arange(6) % 4
    plain = _train(_resnet_like, x, y, False)
    fused = _train(_resnet_like, x, y, True, recompute=spec if spec is True else [spec])
    _assert_same(fused, plain)
    assert fused[4]._recompute_plan.ends
    assert fused[3] == ["add_2", "add_3", "bn_act", "bn_axis1", "bn_relu"]


def test_switch_off_from_the_environment(tmp_path):
    import os
    import subprocess
    import sys
    code = "from cnnc.models import fusion; print(fusion.enabled())"
    for value, expected in (("0", "False"), ("1", "True")):
        # Run from tmp_path: from the repository root "python -c" would
        # import the source tree's cnnc, which has no built extensions.
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "CNNC_FUSION": value}, check=True)
        assert out.stdout.strip() == expected
