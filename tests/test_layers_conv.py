"""Conv1D, Conv2D, DepthwiseConv2D and Conv2DTranspose against NumPy
references (float64) and finite differences."""
import numpy as np
import pytest

import cnnc.layers as L
from layer_checks import (assert_close, check_config_round_trip, check_weights_round_trip,  # noqa: F401
                          numeric_grads, probe_through_layer, ref_conv2d, ref_conv2d_transpose,
                          run_layer, same_pads, seeded_weights)

ACT = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
       "softsign": lambda z: z / (1 + np.abs(z))}


def _check_layer(layer, x, ref, rng, probe=True):
    """forward vs ref(x, *weights), backward vs float64 finite differences
    of ref, and a few finite differences through the layer itself."""
    y, r, dx, grads = run_layer(layer, x, rng)
    weights = layer.get_weights()
    assert y.shape[1:] == layer.compute_output_shape((None,) + x.shape[1:])[1:]
    assert_close(y, ref(x, *weights), rtol=1e-4, atol=1e-5)
    expected = numeric_grads(ref, [x] + weights, r)
    assert_close(dx, expected[0], rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, expected[1:]):
        assert_close(got, want, rtol=1e-4, atol=1e-4)
    if probe:
        probe_through_layer(layer, x, r, dx, rng)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=(3, 2), padding="same", activation="relu"),
    dict(kernel_size=3, strides=2, padding="same"),
    dict(kernel_size=(2, 3), strides=(2, 1), use_bias=False, activation="softsign"),
    dict(kernel_size=3, dilation_rate=2, padding="same"),
    dict(kernel_size=(3, 1), dilation_rate=(2, 1)),
    dict(kernel_size=3, groups=2, padding="same", activation="relu"),
    dict(kernel_size=4, strides=3, padding="same"),
    dict(kernel_size=3, strides=2, dilation_rate=2, padding="same"),  # allowed, as PyTorch
])
def test_conv2d(kw, rng):
    layer = L.Conv2D(4, bias_initializer="random_normal", **kw)
    x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
    act = ACT[kw.get("activation", "linear")]
    strides = (kw.get("strides", 1),) * 2 if np.isscalar(kw.get("strides", 1)) else kw["strides"]
    d = kw.get("dilation_rate", 1)
    dilation = (d, d) if np.isscalar(d) else d

    def ref(x, w, b=None):
        return act(ref_conv2d(x, w, b, strides, kw.get("padding", "valid"), dilation,
                              kw.get("groups", 1)))
    _check_layer(layer, x, ref, rng, probe=kw.get("activation") != "relu")


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=3, padding="same", strides=2),
    dict(kernel_size=3, padding="causal", dilation_rate=2, activation="relu"),
    dict(kernel_size=2, groups=3, use_bias=False),
])
def test_conv1d(kw, rng):
    layer = L.Conv1D(6, bias_initializer="random_normal", **kw)
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    k, s, d = kw["kernel_size"], kw.get("strides", 1), kw.get("dilation_rate", 1)
    padding = kw.get("padding", "valid")
    pads = {"valid": (0, 0), "same": same_pads(9, k, s, d), "causal": ((k - 1) * d, 0)}[padding]
    act = ACT[kw.get("activation", "linear")]

    def ref(x, w, b=None):
        y = ref_conv2d(x[:, None], w[None], b, (1, s), ((0, 0), pads), (1, d), kw.get("groups", 1))
        return act(y[:, 0])
    _check_layer(layer, x, ref, rng, probe=kw.get("activation") != "relu")
    if padding == "causal":
        # output step t does not depend on inputs after t
        x2 = x.copy()
        x2[:, 5:] += 1.0
        np.testing.assert_array_equal(layer(x2)[:, :5], layer(x)[:, :5])


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=3, depth_multiplier=2, padding="same", strides=2),
    dict(kernel_size=(2, 3), dilation_rate=2, activation="relu"),
])
def test_depthwise_conv2d(kw, rng):
    layer = L.DepthwiseConv2D(bias_initializer="random_normal", **kw)
    x = rng.standard_normal((2, 7, 7, 3)).astype(np.float32)
    ks = kw["kernel_size"]
    kh, kwid = (ks, ks) if np.isscalar(ks) else ks
    s, d = kw.get("strides", 1), kw.get("dilation_rate", 1)
    act = ACT[kw.get("activation", "linear")]

    def ref(x, w, b):
        # each channel c convolved alone with w[:, :, c, m] -> output channel c * M + m
        m = w.shape[3]
        outs = []
        for c in range(x.shape[3]):
            for j in range(m):
                outs.append(ref_conv2d(x[..., c:c + 1], w[:, :, c:c + 1, j:j + 1], None, (s, s),
                                       kw.get("padding", "valid"), (d, d)))
        return act(np.concatenate(outs, axis=-1) + b)
    _check_layer(layer, x, ref, rng, probe=kw.get("activation") != "relu")
    assert layer.get_weights()[0].shape == (kh, kwid, 3, kw.get("depth_multiplier", 1))


def _keras_transpose_geometry(n, k, s, d, padding, output_padding):
    """Keras's output length and the offset of the kept window."""
    eff = (k - 1) * d + 1
    if output_padding is None:
        out = n * s + max(eff - s, 0) if padding == "valid" else n * s
    else:
        out = (n - 1) * s + eff - 2 * (eff // 2 if padding == "same" else 0) + output_padding
    before = 0 if padding == "valid" else max((n - 1) * s + eff - out, 0) // 2
    return out, before


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=3, strides=2, padding="same"),
    dict(kernel_size=2, strides=3),  # stride > kernel: zero rows between
    dict(kernel_size=3, strides=2, padding="same", output_padding=1, activation="relu"),
    dict(kernel_size=(3, 2), strides=(2, 1), padding="valid", output_padding=(1, 0)),
    dict(kernel_size=3, dilation_rate=2, padding="same", use_bias=False),
    dict(kernel_size=2, strides=2, dilation_rate=2),
])
def test_conv2d_transpose(kw, rng):
    layer = L.Conv2DTranspose(5, bias_initializer="random_normal", **kw)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    ks = kw["kernel_size"]
    ks = (ks, ks) if np.isscalar(ks) else ks
    s = kw.get("strides", 1)
    s = (s, s) if np.isscalar(s) else s
    d = kw.get("dilation_rate", 1)
    d = (d, d) if np.isscalar(d) else d
    op = kw.get("output_padding")
    op = (op, op) if np.isscalar(op) else (op or (None, None))
    geo = [_keras_transpose_geometry(n, k, si, di, kw.get("padding", "valid"), o)
           for n, k, si, di, o in zip(x.shape[1:3], ks, s, d, op)]
    act = ACT[kw.get("activation", "linear")]

    def ref(x, w, b=None):
        return act(ref_conv2d_transpose(x, w, b, s, [g[0] for g in geo], [g[1] for g in geo], d))
    _check_layer(layer, x, ref, rng, probe=kw.get("activation") != "relu")
    assert layer.get_weights()[0].shape == ks + (5, 3)


def test_conv2d_transpose_matches_torch(rng):
    torch = pytest.importorskip("torch")
    layer = L.Conv2DTranspose(4, 3, strides=2, padding="valid", bias_initializer="random_normal")
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    y = layer(x)
    w, b = layer.get_weights()
    t = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w).permute(3, 2, 0, 1),
        torch.from_numpy(b), stride=2)
    assert_close(y, t.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_conv_parameter_counts_and_shapes():
    # Keras's numbers (model.summary()): the MNIST CNN and a few others
    x = L.Input((28, 28, 1))
    c1 = L.Conv2D(32, (3, 3), activation="relu")
    h = c1(x)
    c2 = L.Conv2D(64, (3, 3), activation="relu")
    h2 = c2(L.MaxPooling2D((2, 2))(h))
    assert (h.shape, h2.shape) == ((None, 26, 26, 32), (None, 11, 11, 64))
    assert c1.count_params() == 320 and c2.count_params() == 18496
    cases = [
        (L.Conv1D(16, 5), (None, 20, 4), (None, 16, 16), 336),
        (L.Conv1D(16, 5, padding="causal", strides=2), (None, 20, 4), (None, 10, 16), 336),
        (L.DepthwiseConv2D(3, depth_multiplier=2), (None, 10, 10, 8), (None, 8, 8, 16), 160),
        (L.Conv2DTranspose(16, 3), (None, 7, 7, 8), (None, 9, 9, 16), 1168),
        (L.Conv2DTranspose(16, 3, strides=2, padding="same"), (None, 7, 7, 8),
         (None, 14, 14, 16), 1168),
        (L.Conv2DTranspose(16, 3, strides=2, padding="same", output_padding=1),
         (None, 7, 7, 8), (None, 14, 14, 16), 1168),
        (L.Conv2D(8, 3, groups=2, use_bias=False), (None, 6, 6, 4), (None, 4, 4, 8), 144),
        (L.Conv2D(8, 5, strides=2, padding="same"), (None, 15, 15, 3), (None, 8, 8, 8), 608),
        (L.Conv2D(8, 3, dilation_rate=2), (None, 15, 15, 3), (None, 11, 11, 8), 224),
    ]
    for layer, in_shape, out_shape, params in cases:
        assert layer(L.Input(in_shape[1:])).shape == out_shape, layer.get_config()
        assert layer.count_params() == params, layer.get_config()


def test_conv_weights_config_round_trips(rng):
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    for layer in (L.Conv2D(3, (3, 2), strides=(1, 2), padding="same", activation="relu",
                           kernel_initializer="he_normal", kernel_regularizer="l2", groups=1),
                  L.Conv2D(4, 3, groups=2, use_bias=False, name="grouped"),
                  L.DepthwiseConv2D(3, depth_multiplier=2, depthwise_regularizer="l1"),
                  L.Conv2DTranspose(3, 2, strides=2, output_padding=1)):
        clone = check_config_round_trip(layer, x)
        check_weights_round_trip(layer, rng)
        assert clone.get_config() == layer.get_config()
    c1 = L.Conv1D(3, 3, padding="causal", dilation_rate=2)
    check_config_round_trip(c1, rng.standard_normal((2, 8, 2)).astype(np.float32))
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, depthwise_regularizer="l1")
    dw.build((None, 5, 5, 2))
    config = dw.get_config()
    assert config["depth_multiplier"] == 2 and "filters" not in config
    assert config["depthwise_regularizer"]["class_name"] == "L1"


def test_conv_frozen_and_no_input_gradient(rng):
    layer = L.Conv2D(3, 3, padding="same")
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    _, r, dx_ref, _ = run_layer(layer, x, rng)
    layer.trainable = False
    y, r2, dx, grads = run_layer(layer, x, rng)
    assert all(np.all(g == 0) for g in grads)
    w = layer.get_weights()[0]
    (expected,) = numeric_grads(lambda x: ref_conv2d(x, w, None, (1, 1), "same"), [x], r2)
    assert_close(dx, expected)
    layer.trainable = True
    layer.need_input_gradient = False
    _, _, dx, grads = run_layer(layer, x, rng)
    assert dx is None and np.any(grads[0] != 0)


def test_conv_bad_arguments():
    with pytest.raises(ValueError, match="filters"):
        L.Conv2D(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        L.Conv2D(4, (3, 0))
    with pytest.raises(ValueError, match="kernel_size"):
        L.Conv2D(4, (3, 3, 3))
    with pytest.raises(ValueError, match="strides"):
        L.Conv2D(4, 3, strides=-1)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="dilation_rate"):
        L.Conv1D(4, 3, dilation_rate=0)
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(5, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(4, 3, groups=2)(L.Input((5, 5, 3)))
    with pytest.raises(ValueError, match="data_format"):
        L.Conv2D(4, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="depth_multiplier"):
        L.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(ValueError, match="output_padding"):
        L.Conv2DTranspose(4, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="rank 4"):
        L.Conv2D(4, 3)(L.Input((5, 5)))
    with pytest.raises(ValueError, match="too small"):
        L.Conv2D(4, 5)(L.Input((3, 3, 1)))
    layer = L.Conv2D(4, 3)
    layer(np.zeros((1, 5, 5, 2), np.float32))
    with pytest.raises(ValueError, match="input channels"):
        layer(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="rank 4"):
        layer(np.zeros((5, 5, 2), np.float32))
    with pytest.raises(RuntimeError, match="training=True"):
        L.Conv2D(2, 1).backward(np.zeros((1, 1, 1, 2), np.float32))
