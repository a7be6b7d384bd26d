"""SeparableConv1D/2D, Embedding, LayerNormalization, GroupNormalization and
RandomErasing: forward and every gradient against PyTorch, configs, weight
layouts, save/load of models using them."""
import numpy as np
import pytest

import cnnc.layers as L
from cnnc import ops
from cnnc.models import Model, Sequential, load_model
from layer_checks import check_config_round_trip, check_weights_round_trip, run_layer, seeded_weights  # noqa: F401

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a, grad=True):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def _close(actual, expected, rtol=2e-4, atol=2e-4):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected.detach().numpy(),
                               rtol=rtol, atol=atol)


# -- separable convolutions ------------------------------------------------------
def _torch_same_pad(size, k, s, d):
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("kwargs", [
    dict(filters=5, kernel_size=3),
    dict(filters=4, kernel_size=(3, 2), strides=2, padding="same", depth_multiplier=2,
         activation="relu"),
    dict(filters=3, kernel_size=3, dilation_rate=2, padding="same", use_bias=False),
])
def test_separable_conv2d_matches_torch(rng, kwargs):
    layer = L.SeparableConv2D(**kwargs)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    layer.build((None, 9, 8, 3))
    if layer.use_bias:
        layer.bias.value[...] = rng.standard_normal(layer.bias.shape)
    y, r, dx, grads = run_layer(layer, x, rng)
    assert [w.name.split("/")[-1] for w in layer.weights] == (
        ["depthwise_kernel", "pointwise_kernel", "bias"] if layer.use_bias else
        ["depthwise_kernel", "pointwise_kernel"])
    kh, kw, c, m = layer.depthwise_kernel.shape
    assert layer.pointwise_kernel.shape == (1, 1, c * m, layer.filters)

    tx = _t(x.transpose(0, 3, 1, 2))
    tdw = _t(layer.depthwise_kernel.value)
    tpw = _t(layer.pointwise_kernel.value)
    tb = _t(layer.bias.value) if layer.use_bias else None
    s, d = layer.strides, layer.dilation_rate
    xin = tx
    if layer.padding == "same":
        ph = _torch_same_pad(9, kh, s[0], d[0])
        pw = _torch_same_pad(8, kw, s[1], d[1])
        xin = F.pad(tx, (pw[0], pw[1], ph[0], ph[1]))
    mid = F.conv2d(xin, tdw.reshape(kh, kw, 1, c * m).permute(3, 2, 0, 1), stride=s, dilation=d,
                   groups=c)
    z = F.conv2d(mid, tpw.permute(3, 2, 0, 1), tb)
    if kwargs.get("activation") == "relu":
        z = torch.relu(z)
    _close(y, z.permute(0, 2, 3, 1), 1e-4, 1e-4)
    z.backward(torch.tensor(r.transpose(0, 3, 1, 2), dtype=torch.float64))
    _close(dx, tx.grad.permute(0, 2, 3, 1))
    _close(grads[0], tdw.grad)
    _close(grads[1], tpw.grad)
    if layer.use_bias:
        _close(grads[2], tb.grad)
    check_config_round_trip(layer, x)
    check_weights_round_trip(layer, rng)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_separable_conv1d_matches_torch(rng, padding):
    layer = L.SeparableConv1D(6, 3, padding=padding, depth_multiplier=2, dilation_rate=2)
    x = rng.standard_normal((3, 11, 4)).astype(np.float32)
    y, r, dx, grads = run_layer(layer, x, rng)
    k, c, m = layer.depthwise_kernel.shape
    assert (k, c, m) == (3, 4, 2) and layer.pointwise_kernel.shape == (1, 8, 6)
    tx = _t(x.transpose(0, 2, 1))
    tdw, tpw, tb = (_t(w) for w in layer.get_weights())
    pads = {"valid": (0, 0), "same": (2, 2), "causal": (4, 0)}[padding]
    mid = F.conv1d(F.pad(tx, pads), tdw.reshape(k, 1, c * m).permute(2, 1, 0), dilation=2, groups=c)
    z = F.conv1d(mid, tpw.permute(2, 1, 0), tb)
    _close(y, z.permute(0, 2, 1))
    z.backward(torch.tensor(r.transpose(0, 2, 1), dtype=torch.float64))
    _close(dx, tx.grad.permute(0, 2, 1))
    for g, t in zip(grads, (tdw, tpw, tb)):
        _close(g, t.grad)
    check_config_round_trip(layer, x)


def test_separable_conv_bad_arguments():
    with pytest.raises(ValueError, match="depth_multiplier"):
        L.SeparableConv2D(4, 3, depth_multiplier=0)
    with pytest.raises(ValueError, match="padding"):
        L.SeparableConv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="rank 4"):
        L.SeparableConv2D(4, 3)(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        L.SeparableConv2D(4, 5)(np.zeros((1, 3, 3, 2), np.float32))


# -- normalizations --------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((2, 5, 6, 3), -1), ((2, 5, 6, 3), [1, 2, 3]),
                                        ((3, 4, 5), [1])])
def test_layer_normalization_matches_torch(rng, shape, axis):
    layer = L.LayerNormalization(axis=axis, epsilon=1e-3)
    x = (3 + 2 * rng.standard_normal(shape)).astype(np.float32)
    layer.build((None,) + shape[1:])
    for w in layer.weights:
        w.value[...] = rng.standard_normal(w.shape)
    y, r, dx, (dgamma, dbeta) = run_layer(layer, x, rng)
    axes = [a % len(shape) for a in (axis if isinstance(axis, list) else [axis])]
    tx, tg, tb = _t(x), _t(layer.gamma.value), _t(layer.beta.value)
    # torch normalizes trailing axes: move the normalized axes to the end
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = rest + axes
    z = F.layer_norm(tx.permute(perm), [shape[a] for a in axes], tg, tb, eps=1e-3)
    inverse = np.argsort(perm)
    z = z.permute(*inverse)
    _close(y, z, 1e-4, 1e-4)
    z.backward(torch.tensor(r, dtype=torch.float64))
    _close(dx, tx.grad, 1e-3, 1e-3)
    _close(dgamma, tg.grad, 1e-3, 1e-3)
    _close(dbeta, tb.grad, 1e-3, 1e-3)
    check_config_round_trip(layer, x)


@pytest.mark.parametrize("center,scale", [(False, True), (True, False), (False, False)])
def test_layer_normalization_without_affine(rng, center, scale):
    layer = L.LayerNormalization(center=center, scale=scale)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    y, r, dx, grads = run_layer(layer, x, rng)
    assert len(layer.weights) == center + scale
    tx = _t(x)
    z = F.layer_norm(tx, [8], eps=1e-3)
    if scale:
        z = z * _t(layer.gamma.value, False)
    if center:
        z = z + _t(layer.beta.value, False)
    _close(y, z, 1e-4, 1e-4)
    z.backward(torch.tensor(r, dtype=torch.float64))
    _close(dx, tx.grad, 1e-3, 1e-3)


@pytest.mark.parametrize("shape,groups,axis", [((2, 5, 6, 8), 4, -1), ((3, 7, 6), 6, -1),
                                               ((2, 6, 4, 5), 1, -1), ((2, 6, 4, 5), 3, 1)])
def test_group_normalization_matches_torch(rng, shape, groups, axis):
    layer = L.GroupNormalization(groups=groups, axis=axis, epsilon=1e-3)
    x = (1 + 2 * rng.standard_normal(shape)).astype(np.float32)
    layer.build((None,) + shape[1:])
    for w in layer.weights:
        w.value[...] = rng.standard_normal(w.shape)
    y, r, dx, (dgamma, dbeta) = run_layer(layer, x, rng)
    ax = axis % len(shape)
    perm = [0, ax] + [i for i in range(1, len(shape)) if i != ax]
    tx, tg, tb = _t(x), _t(layer.gamma.value), _t(layer.beta.value)
    z = F.group_norm(tx.permute(perm), groups, tg, tb, eps=1e-3).permute(*np.argsort(perm))
    _close(y, z, 1e-4, 1e-4)
    z.backward(torch.tensor(r, dtype=torch.float64))
    _close(dx, tx.grad, 1e-3, 1e-3)
    _close(dgamma, tg.grad, 1e-3, 1e-3)
    _close(dbeta, tb.grad, 1e-3, 1e-3)
    check_config_round_trip(layer, x)
    check_weights_round_trip(layer, rng)


def test_normalization_bad_arguments():
    with pytest.raises(ValueError, match="groups"):
        L.GroupNormalization(groups=3)(np.zeros((2, 4, 4, 8), np.float32))
    with pytest.raises(ValueError, match="groups must be"):
        L.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="axis"):
        L.LayerNormalization(axis=0)(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="epsilon"):
        L.LayerNormalization(epsilon=0)
    layer = L.LayerNormalization()
    layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="built for"):
        layer(np.zeros((2, 5), np.float32))


# -- embedding -------------------------------------------------------------------
def test_embedding_matches_torch(rng):
    layer = L.Embedding(10, 4, mask_zero=True)
    idx = rng.integers(0, 10, (3, 7))
    idx[0, :3] = 0
    y, r, dx, (dw,) = run_layer(layer, idx, rng)
    assert layer.embeddings.shape == (10, 4) and layer.weights[0].name.endswith("embeddings")
    tw = _t(layer.embeddings.value)
    z = F.embedding(torch.tensor(idx), tw)
    _close(y, z, 0, 0)
    z.backward(torch.tensor(r, dtype=torch.float64))
    _close(dw, tw.grad, 1e-5, 1e-5)
    assert not dx.any() and dx.shape == idx.shape
    np.testing.assert_array_equal(layer.compute_mask(idx), idx != 0)
    assert L.Embedding(10, 4).compute_mask(idx) is None
    # float batches of whole numbers (as fit feeds them) give the same rows
    np.testing.assert_array_equal(layer(idx.astype(np.float32)), y)
    check_config_round_trip(layer, idx)


def test_embedding_bad_indices():
    layer = L.Embedding(5, 3)
    with pytest.raises(ValueError, match="index 5 is out of range"):
        layer(np.array([[1, 5]]))
    with pytest.raises(ValueError, match="index -1 is out of range"):
        layer(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="whole numbers"):
        layer(np.array([[1.5, 2]], np.float32))
    with pytest.raises(ValueError, match="whole numbers"):
        layer(np.array([[np.nan, 2]], np.float32))
    with pytest.raises(ValueError, match="input_dim"):
        L.Embedding(0, 3)
    with pytest.raises(ValueError, match="2\\*\\*24"):
        L.Embedding(2**24 + 1, 3)


# -- random erasing ----------------------------------------------------------------
def test_random_erasing_layer(rng):
    layer = L.RandomErasing(factor=(1.0, 1.0), scale=(0.1, 0.3), fill_value=-2.0,
                            value_range=(-2.0, 1.0), seed=3)
    x = rng.uniform(0, 1, (6, 10, 12, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x), x)          # identity at inference
    y = layer(x, training=True)
    erased = (y == -2.0).all(axis=-1)
    assert all(erased[i].any() for i in range(6))        # factor 1: every image erased
    np.testing.assert_array_equal(y[~erased], x[~erased])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx[erased], 0)
    np.testing.assert_array_equal(dx[~erased], dy[~erased])
    assert not (L.RandomErasing(factor=0.0, seed=1)(x, training=True) != x).any()
    check_config_round_trip(layer)
    with pytest.raises(ValueError, match="fill_value"):
        L.RandomErasing(fill_value="noise")
    with pytest.raises(ValueError, match="fill_value"):
        L.RandomErasing(fill_value=[0.0, float("nan")])
    with pytest.raises(ValueError, match="factor"):
        L.RandomErasing(factor=1.5)


def _erased(y, x):
    """Which pixels a RandomErasing call changed (any channel)."""
    return (y != x).any(axis=-1)


@pytest.mark.parametrize("factor, rate", [(1.0, 0.5), (0.6, 0.3), ((1.0, 1.0), 1.0),
                                          ((0.2, 0.6), 0.4)])
def test_random_erasing_factor_follows_keras(factor, rate):
    """Keras 3: one number f draws each image's probability in [0, f]; a
    pair draws it in the pair's range."""
    x = np.full((4000, 6, 6, 1), 0.5, np.float32)
    layer = L.RandomErasing(factor=factor, scale=(0.3, 0.5), fill_value=0.0, value_range=(0, 1),
                            seed=11)
    erased = _erased(layer(x, training=True), x).any(axis=(1, 2)).mean()
    assert abs(erased - rate) < 4 * np.sqrt(rate * (1 - rate) / 4000) + 1e-9


def test_random_erasing_noise_fill(rng):
    """fill_value=None (Keras's default): standard normal noise times the
    range's high end, clipped to value_range; a sequence fills per channel;
    constants are clipped too."""
    x = rng.uniform(0.2, 0.8, (64, 12, 12, 3)).astype(np.float32)
    layer = L.RandomErasing(factor=(1.0, 1.0), scale=(0.2, 0.4), value_range=(0, 1), seed=5)
    y = layer(x, training=True)
    again = L.RandomErasing(factor=(1.0, 1.0), scale=(0.2, 0.4), value_range=(0, 1), seed=5)
    np.testing.assert_array_equal(again(x, training=True), y)   # the seed decides all
    erased = _erased(y, x)
    assert all(erased[i].any() for i in range(64))
    np.testing.assert_array_equal(y[~erased], x[~erased])
    fill = y[erased]
    assert fill.min() >= 0.0 and fill.max() <= 1.0
    # N(0, 1) clipped to [0, 1]: half the values are 0, 15.9 % are 1, the
    # rest spread between (the mean of the clipped normal is 0.3222).
    assert abs((fill == 0).mean() - 0.5) < 0.03
    assert abs((fill == 1).mean() - 0.1587) < 0.03
    assert abs(fill.mean() - 0.3222) < 0.02
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx[erased], 0)
    np.testing.assert_array_equal(dx[~erased], dy[~erased])
    check_config_round_trip(layer)

    per_channel = L.RandomErasing(factor=(1.0, 1.0), fill_value=[0.1, 5.0, -3.0],
                                  value_range=(0, 1), seed=2)
    y = per_channel(x, training=True)
    erased = _erased(y, x)
    np.testing.assert_array_equal(y[erased], np.broadcast_to(np.float32([0.1, 1.0, 0.0]), y[erased].shape))
    check_config_round_trip(per_channel)
    with pytest.raises(ValueError, match="channels"):
        per_channel(x[..., :2], training=True)
    clipped = L.RandomErasing(factor=(1.0, 1.0), fill_value=300.0, seed=2)
    y = clipped(x * 255, training=True)
    assert (y[_erased(y, x * 255)] == 255.0).all()


# -- models using the new layers: fit, save, load ------------------------------------
def test_models_with_new_layers_save_and_load(tmp_path, rng):
    images = L.Input((12, 12, 3))
    h = L.RandomErasing(factor=0.5, seed=1)(images)
    h = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, activation="relu")(h)
    h = L.GroupNormalization(groups=4)(h)
    h = L.LayerNormalization()(L.GlobalAveragePooling2D()(h))
    model = Model(images, L.Dense(3, activation="softmax")(h))
    x = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.cnnc"
    model.save(path)
    np.testing.assert_array_equal(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))

    seq = Sequential([L.Input((9,)), L.Embedding(20, 6), L.SeparableConv1D(4, 3, padding="causal"),
                      L.GlobalAveragePooling1D(), L.Dense(2)])
    tokens = rng.integers(0, 20, (10, 9)).astype(np.float32)
    seq.compile("sgd", "mse")
    seq.fit(tokens, rng.standard_normal((10, 2)).astype(np.float32), epochs=1, verbose=0)
    path = tmp_path / "s.cnnc"
    seq.save(path)
    np.testing.assert_array_equal(load_model(path).predict(tokens, verbose=0),
                                  seq.predict(tokens, verbose=0))
