"""BatchNormalization, Dropout, merge layers, padding, cropping and
upsampling against NumPy references and finite differences."""
import numpy as np
import pytest

import cnnc.layers as L
from cnnc import random as cnnc_random
from layer_checks import (assert_close, check_config_round_trip, check_weights_round_trip,  # noqa: F401
                          numeric_grads, probe_through_layer, run_layer, seeded_weights)


def ref_bn_train(x, gamma, beta, eps=1e-3, axis=-1):
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("shape, axis", [((8, 5), -1), ((3, 4, 4, 3), -1), ((3, 4, 5, 2), 1)])
def test_batch_norm_training(shape, axis, rng):
    layer = L.BatchNormalization(axis=axis, momentum=0.9, gamma_initializer="random_normal",
                                 beta_initializer="random_normal")
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    y, r, dx, (dgamma, dbeta, dmm, dmv) = run_layer(layer, x, rng)
    gamma, beta, mm, mv = layer.get_weights()

    def ref(x, gamma, beta):
        return ref_bn_train(x, gamma, beta, 1e-3, axis)
    assert_close(y, ref(x, gamma, beta), rtol=1e-4, atol=1e-4)
    gx, gg, gb = numeric_grads(ref, [x, gamma, beta], r)
    assert_close(dx, gx, rtol=1e-3, atol=1e-4)
    assert_close(dgamma, gg, rtol=1e-4, atol=1e-4)
    assert_close(dbeta, gb, rtol=1e-4, atol=1e-4)
    assert np.all(dmm == 0) and np.all(dmv == 0)
    # one training step moved the moving statistics by (1 - momentum) toward the batch ones
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    x64 = x.astype(np.float64)
    assert_close(mm, 0.1 * x64.mean(axis=axes), rtol=1e-4, atol=1e-5)
    assert_close(mv, 0.9 + 0.1 * x64.var(axis=axes), rtol=1e-4, atol=1e-5)
    # inference uses the moving statistics
    bshape = [1] * x.ndim
    bshape[axis] = -1
    expected = ((x64 - mm.reshape(bshape)) / np.sqrt(mv.reshape(bshape) + 1e-3)
                * gamma.reshape(bshape) + beta.reshape(bshape))
    assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_batch_norm_frozen_runs_in_inference_mode(rng):
    layer = L.BatchNormalization()
    x = rng.standard_normal((6, 3, 3, 4)).astype(np.float32)
    for _ in range(3):
        layer(x, training=True)
    before = layer.get_weights()
    layer.trainable = False
    y, r, dx, grads = run_layer(layer, x, rng)
    after = layer.get_weights()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # moving statistics untouched
    gamma, beta, mm, mv = after
    scale = gamma / np.sqrt(mv.astype(np.float64) + 1e-3)
    assert_close(y, (x - mm) * scale + beta, rtol=1e-5, atol=1e-5)
    assert_close(dx, r * scale, rtol=1e-5, atol=1e-6)
    assert all(np.all(g == 0) for g in grads)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4


def test_batch_norm_weights_counts_config(rng):
    layer = L.BatchNormalization()
    layer(L.Input((8, 8, 64)))
    assert layer.count_params() == 256  # Keras: 256 (128 non-trainable)
    assert [w.name.split("/")[-1] for w in layer.weights] == \
        ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.trainable for w in layer.weights] == [True, True, False, False]
    assert len(layer.trainable_weights) == 2
    check_weights_round_trip(layer, rng)
    plain = L.BatchNormalization(center=False, scale=False, epsilon=1e-5, momentum=0.5)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y, r, dx, grads = run_layer(plain, x, rng)
    assert len(plain.get_weights()) == 2
    assert_close(y, ref_bn_train(x.astype(np.float64), np.ones(3), np.zeros(3), 1e-5),
                 rtol=1e-4, atol=1e-4)
    (gx,) = numeric_grads(lambda x: ref_bn_train(x, np.ones(3), np.zeros(3), 1e-5), [x], r)
    assert_close(dx, gx, rtol=1e-3, atol=1e-4)
    clone = check_config_round_trip(plain, x)
    assert clone.epsilon == 1e-5 and clone.momentum == 0.5 and not clone.center
    check_config_round_trip(L.BatchNormalization(axis=1, gamma_regularizer="l2"))
    with pytest.raises(ValueError, match="axis"):
        L.BatchNormalization(axis=0)(L.Input((4, 4)))
    with pytest.raises(ValueError, match="axis"):
        L.BatchNormalization(axis=(1, 2))
    with pytest.raises(ValueError, match="epsilon"):
        L.BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="features"):
        layer(np.zeros((2, 8, 8, 3), np.float32))


def test_dropout(rng):
    cnnc_random.set_seed(7)
    layer = L.Dropout(0.4)
    x = rng.uniform(1, 2, size=(50, 40)).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)  # inference: identity
    y, r, dx, _ = run_layer(layer, x, rng)
    kept = y != 0
    assert abs(kept.mean() - 0.6) < 0.05
    assert_close(y[kept], x[kept] / 0.6, rtol=1e-6, atol=0)
    assert_close(dx, np.where(kept, r / 0.6, 0), rtol=1e-6, atol=1e-7)
    y2 = layer(x, training=True)
    assert not np.array_equal(y2 != 0, kept)  # a new mask at each step
    # the same seed gives the same sequence of masks
    cnnc_random.set_seed(7)
    again = L.Dropout(0.4)
    np.testing.assert_array_equal(again(x, training=True), y)
    np.testing.assert_array_equal(again(x, training=True), y2)
    fixed1, fixed2 = L.Dropout(0.5, seed=3), L.Dropout(0.5, seed=3)
    np.testing.assert_array_equal(fixed1(x, training=True), fixed2(x, training=True))
    check_config_round_trip(L.Dropout(0.3, seed=5))


def test_dropout_noise_shape(rng):
    layer = L.Dropout(0.5, noise_shape=(None, 1, 1, 6), seed=1)
    x = rng.uniform(1, 2, size=(4, 3, 3, 6)).astype(np.float32)
    y, r, dx, _ = run_layer(layer, x, rng)
    kept = y != 0
    assert np.all(kept == kept[:, :1, :1, :])  # whole channels dropped
    assert 0 < kept.mean() < 1
    assert_close(dx, np.where(kept, 2 * r, 0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(-0.1)
    with pytest.raises(ValueError, match="noise_shape"):
        L.Dropout(0.5, noise_shape=(None, 2))(np.ones((2, 3), np.float32), training=True)
    assert L.Dropout(0.0)(x, training=True) is not None


@pytest.mark.parametrize("cls, ref", [
    (L.Add, lambda a, b, c: a + b + c),
    (L.Multiply, lambda a, b, c: a * b * c),
    (L.Average, lambda a, b, c: (a + b + c) / 3),
    (L.Maximum, lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    (L.Minimum, lambda a, b, c: np.minimum(np.minimum(a, b), c)),
])
def test_merge_layers(cls, ref, rng):
    layer = cls()
    xs = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    y = layer(xs, training=True)
    assert_close(y, ref(*[x.astype(np.float64) for x in xs]), rtol=1e-6, atol=1e-6)
    r = rng.standard_normal(y.shape).astype(np.float32)
    dxs = layer.backward(r)
    expected = numeric_grads(ref, xs, r)
    assert len(dxs) == 3
    for got, want in zip(dxs, expected):
        assert_close(got, want, rtol=1e-5, atol=1e-5)
    t = layer([L.Input((3, 4)) for _ in range(3)])
    assert t.shape == (None, 3, 4) and len(t.node.inputs) == 3
    check_config_round_trip(layer)


def test_subtract_and_merge_errors(rng):
    a, b = (rng.standard_normal((2, 5)).astype(np.float32) for _ in range(2))
    layer = L.Subtract()
    assert_close(layer([a, b], training=True), a.astype(np.float64) - b)
    da, db = layer.backward(np.ones((2, 5), np.float32))
    np.testing.assert_array_equal(da, 1)
    np.testing.assert_array_equal(db, -1)
    with pytest.raises(ValueError, match="exactly 2"):
        L.Subtract()([a, b, a])
    with pytest.raises(ValueError, match="do not broadcast"):
        L.Add()([L.Input((3,)), L.Input((4,))])
    with pytest.raises(ValueError, match="do not broadcast"):
        L.Add()([a, np.zeros((2, 6), np.float32)])
    with pytest.raises(ValueError, match="list"):
        L.Add()(a)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate(axis, rng):
    shapes = {-1: [(2, 3, 2), (2, 3, 5)], 1: [(2, 1, 4), (2, 3, 4)], 2: [(2, 3, 1), (2, 3, 2)]}
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes[axis]]
    layer = L.Concatenate(axis=axis)
    y = layer(xs, training=True)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    r = rng.standard_normal(y.shape).astype(np.float32)
    dxs = layer.backward(r)
    for got, want in zip(dxs, np.split(r, [xs[0].shape[axis]], axis=axis)):
        np.testing.assert_array_equal(got, want)
    t = layer([L.Input(s[1:]) for s in shapes[axis]])
    assert t.shape == (None,) + y.shape[1:]
    check_config_round_trip(layer)
    with pytest.raises(ValueError, match="match except"):
        L.Concatenate()([L.Input((3, 2)), L.Input((4, 2))])
    with pytest.raises(ValueError, match="axis"):
        L.Concatenate(axis=0)([L.Input((3,)), L.Input((3,))])


@pytest.mark.parametrize("padding, pads", [
    (1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((1, 2), (0, 3)), ((1, 2), (0, 3)))])
def test_zero_padding_and_cropping(padding, pads, rng):
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    layer = L.ZeroPadding2D(padding)
    y, r, dx, _ = run_layer(layer, x, rng)
    expected = np.pad(x, ((0, 0),) + pads + ((0, 0),))
    np.testing.assert_array_equal(y, expected)
    assert y.shape == layer.compute_output_shape(x.shape)
    (t, b), (lft, rgt) = pads
    np.testing.assert_array_equal(dx, r[:, t:t + 4, lft:lft + 5])
    check_config_round_trip(layer, x)
    crop = L.Cropping2D(padding)
    z, r2, dz, _ = run_layer(crop, y, rng)
    np.testing.assert_array_equal(z, x)
    assert z.shape == crop.compute_output_shape(y.shape)
    np.testing.assert_array_equal(dz, np.pad(r2, ((0, 0),) + pads + ((0, 0),)))
    check_config_round_trip(crop, y)
    with pytest.raises(ValueError, match="padding"):
        L.ZeroPadding2D(-1)
    with pytest.raises(ValueError, match="leaves nothing"):
        L.Cropping2D(3)(L.Input((5, 5, 1)))


def test_upsampling_nearest(rng):
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    layer = L.UpSampling2D((2, 3))
    y, r, dx, _ = run_layer(layer, x, rng)
    np.testing.assert_array_equal(y, x.repeat(2, axis=1).repeat(3, axis=2))
    assert y.shape == layer.compute_output_shape(x.shape)
    (expected,) = numeric_grads(lambda x: x.repeat(2, axis=1).repeat(3, axis=2), [x], r)
    assert_close(dx, expected, rtol=1e-5, atol=1e-5)
    check_config_round_trip(layer, x)
    with pytest.raises(ValueError, match="interpolation"):
        L.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="size"):
        L.UpSampling2D(0)


def test_upsampling_bilinear(rng):
    x = rng.standard_normal((1, 3, 4, 2)).astype(np.float32)
    layer = L.UpSampling2D(2, interpolation="bilinear")
    y, r, dx, _ = run_layer(layer, x, rng)

    def ref(x):
        # half-pixel centers: source coordinate (o + 0.5) / 2 - 0.5, clamped to the edges
        out = np.zeros((1, 6, 8, 2))
        for o in range(6):
            for p in range(8):
                sy, sx = max((o + 0.5) / 2 - 0.5, 0), max((p + 0.5) / 2 - 0.5, 0)
                y0, x0 = int(sy), int(sx)
                y1, x1 = min(y0 + 1, 2), min(x0 + 1, 3)
                fy, fx = sy - y0, sx - x0
                out[0, o, p] = ((1 - fy) * ((1 - fx) * x[0, y0, x0] + fx * x[0, y0, x1])
                                + fy * ((1 - fx) * x[0, y1, x0] + fx * x[0, y1, x1]))
        return out
    assert_close(y, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    (expected,) = numeric_grads(ref, [x], r)
    assert_close(dx, expected, rtol=1e-5, atol=1e-5)
    probe_through_layer(layer, x, r, dx, rng)
    torch = pytest.importorskip("torch")
    t = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2,
                                        mode="bilinear", align_corners=False)
    assert_close(y, t.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, shape", [(L.SpatialDropout2D, (4, 3, 3, 8)),
                                        (L.SpatialDropout1D, (4, 5, 8))])
def test_spatial_dropout(cls, shape, rng):
    layer = cls(0.5, seed=2)
    x = rng.uniform(1, 2, size=shape).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)
    y, r, dx, _ = run_layer(layer, x, rng)
    kept = y != 0
    first = kept[(slice(None),) + (slice(0, 1),) * (len(shape) - 2)]
    assert np.all(kept == first) and 0 < kept.mean() < 1
    assert_close(y[kept], 2 * x[kept], rtol=1e-6, atol=0)
    assert_close(dx, np.where(kept, 2 * r, 0), rtol=1e-6, atol=1e-7)
    check_config_round_trip(layer)
    with pytest.raises(ValueError, match="rank"):
        cls(0.5)(np.ones((2, 3), np.float32), training=True)
