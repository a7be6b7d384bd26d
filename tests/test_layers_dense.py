"""Input, Dense, Flatten, Reshape, the activation functions and the
activation layers against NumPy references and finite differences."""
import math

import numpy as np
import pytest

import cnnc
import cnnc.layers as L
from cnnc import activations, regularizers
from layer_checks import (assert_close, check_config_round_trip, check_weights_round_trip,  # noqa: F401
                          numeric_grads, probe_through_layer, run_layer, seeded_weights)

_erf = np.vectorize(math.erf)
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


REFERENCES = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": lambda x: np.log(_softmax(x)),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "softplus": lambda x: np.logaddexp(0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "exponential": np.exp,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_functions(name, rng):
    fn = activations.get(name)
    x = rng.uniform(-4, 4, size=(3, 7)).astype(np.float32)
    if name in ("relu6", "hard_sigmoid"):
        x[0, :3] = [6.5, 7.0, -3.5]  # the saturated regions
    ref = REFERENCES[name]
    y = fn.forward(x.copy())
    assert y.dtype == np.float32 and y.shape == x.shape
    assert_close(y, ref(x.astype(np.float64)), rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(fn(x), y)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = fn.backward(x, y, dy)
    (expected,) = numeric_grads(ref, [x], dy)
    assert_close(dx, expected, rtol=1e-4, atol=1e-5)
    # in-place forward (used by layers on their own buffers) gives the same values
    if not fn.uses_input:
        buf = x.copy()
        np.testing.assert_array_equal(fn.forward(buf, inplace=True), y)


def test_activation_lookup_errors():
    assert activations.get(None) is activations.linear
    assert activations.get("ReLU") is activations.relu
    assert activations.serialize(activations.swish) == "swish"
    with pytest.raises(ValueError, match="unknown activation"):
        activations.get("rleu")
    assert isinstance(activations.get(lambda x: x), activations.FunctionActivation)
    with pytest.raises(ValueError, match="callable"):
        activations.get(3)
    with pytest.raises(ValueError, match="unknown activation"):
        L.Dense(3, activation="swishy")


def test_input():
    t = L.Input((28, 28, 1))
    assert t.shape == (None, 28, 28, 1)
    layer = t.layer
    assert isinstance(layer, L.InputLayer) and t.node.inputs == []
    assert L.Input((5,), batch_size=8).shape == (8, 5)
    assert L.Input(batch_shape=(None, 3, 4)).shape == (None, 3, 4)
    x = np.ones((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(layer.forward(x), x)
    with pytest.raises(ValueError, match="expects arrays of shape"):
        layer.forward(np.ones((2, 28, 28, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        L.Input((None, 3))
    with pytest.raises(ValueError, match="shape"):
        L.Input((0, 3))
    check_config_round_trip(layer)


def _dense_ref(activation):
    ref = REFERENCES[activation]

    def f(x, w, b):
        return ref(x @ w + b)
    return f


@pytest.mark.parametrize("activation", ["linear", "relu", "softmax", "tanh"])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_dense_forward_backward(activation, shape, rng):
    layer = L.Dense(3, activation=activation, bias_initializer="random_normal")
    x = rng.standard_normal(shape).astype(np.float32)
    y, r, dx, (dw, db) = run_layer(layer, x, rng)
    w, b = layer.get_weights()
    ref = _dense_ref(activation)
    assert y.shape[1:] == layer.compute_output_shape((None,) + shape[1:])[1:]
    assert_close(y, ref(x.astype(np.float64), w, b), rtol=1e-5, atol=1e-6)
    gx, gw, gb = numeric_grads(ref, [x, w, b], r)
    assert_close(dx, gx)
    assert_close(dw, gw)
    assert_close(db, gb)
    if activation != "relu":  # finite steps across the kink of relu are not derivatives
        probe_through_layer(layer, x, r, dx, rng)


def test_dense_weights_config_counts(rng):
    # Keras's parameter counts: the MNIST CNN head
    d1, d2 = L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")
    t = d2(d1(L.Input((1600,))))
    assert t.shape == (None, 10)
    assert d1.count_params() == 204928 and d2.count_params() == 1290
    assert d1.output_shape == (None, 128)
    assert [w.shape for w in d2.weights] == [(128, 10), (10,)]
    assert d2.name.startswith("dense")
    nobias = L.Dense(7, use_bias=False)
    nobias.build((None, 4))
    assert nobias.count_params() == 28 and len(nobias.get_weights()) == 1
    check_weights_round_trip(d2, rng)
    layer = L.Dense(4, activation="relu", kernel_initializer="he_normal",
                    kernel_regularizer=regularizers.l2(0.1), use_bias=True, name="fc")
    clone = check_config_round_trip(layer, rng.standard_normal((2, 6)).astype(np.float32))
    assert clone.name == "fc" and clone.kernel_regularizer.l2 == 0.1
    assert L.Dense.from_config(layer.get_config()).activation is activations.relu


def test_dense_frozen_and_no_input_gradient(rng):
    layer = L.Dense(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    run_layer(layer, x, rng)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    y, r, dx, grads = run_layer(layer, x, rng)
    assert all(np.all(g == 0) for g in grads)
    assert_close(dx, r.astype(np.float64) @ layer.get_weights()[0].T.astype(np.float64))
    layer.trainable = True
    layer.need_input_gradient = False
    _, r, dx, (dw, db) = run_layer(layer, x, rng)
    assert dx is None
    assert_close(dw, x.T.astype(np.float64) @ r)


def test_dense_softmax_logits(rng):
    layer = L.Dense(4, activation="softmax")
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y = layer(x)
    assert layer.activation_name == "softmax"
    z = layer.forward_logits(x, training=True)
    w, b = layer.get_weights()
    assert_close(z, x.astype(np.float64) @ w + b, rtol=1e-5, atol=1e-6)
    assert_close(y, _softmax(z.astype(np.float64)), rtol=1e-5, atol=1e-6)
    dz = rng.standard_normal(z.shape).astype(np.float32)
    dx = layer.backward(dz)
    assert_close(dx, dz.astype(np.float64) @ w.T)
    # a plain forward afterwards applies the softmax again
    assert_close(layer(x), y, rtol=1e-6, atol=1e-7)
    assert L.Dense(3).activation_name is None
    with pytest.raises(ValueError, match="no activation"):
        L.Dense(3).forward_logits(x)


def test_dense_bad_arguments(rng):
    with pytest.raises(ValueError, match="units"):
        L.Dense(0)
    with pytest.raises(ValueError, match="units"):
        L.Dense(2.5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        L.Dense(3, kernal_initializer="zeros")
    layer = L.Dense(3)
    layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        layer(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="training=True"):
        L.Dense(2).backward(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="float32"):
        L.Dense(3, dtype="float64")


def test_flatten_reshape(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    f = L.Flatten()
    y, r, dx, _ = run_layer(f, x, rng)
    np.testing.assert_array_equal(y, x.reshape(2, 60))
    np.testing.assert_array_equal(dx, r.reshape(x.shape))
    assert f.compute_output_shape((None, 3, 4, 5)) == (None, 60)
    assert L.Flatten()(L.Input((5, 5, 64))).shape == (None, 1600)
    check_config_round_trip(f)
    rs = L.Reshape((-1, 10))
    y, r, dx, _ = run_layer(rs, x, rng)
    np.testing.assert_array_equal(y, x.reshape(2, 6, 10))
    np.testing.assert_array_equal(dx, r.reshape(x.shape))
    assert rs.compute_output_shape((None, 3, 4, 5)) == (None, 6, 10)
    check_config_round_trip(rs)
    with pytest.raises(ValueError, match="target_shape"):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError, match="cannot reshape"):
        L.Reshape((7,))(L.Input((3, 4)))
    with pytest.raises(ValueError, match="data_format"):
        L.Flatten(data_format="channels_first")


@pytest.mark.parametrize("make, ref", [
    (lambda: L.Activation("tanh"), np.tanh),
    (lambda: L.Activation("gelu"), REFERENCES["gelu"]),
    (lambda: L.ReLU(), REFERENCES["relu"]),
    (lambda: L.ReLU(max_value=1.0), lambda x: np.clip(x, 0, 1)),
    (lambda: L.ReLU(negative_slope=0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (lambda: L.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5),
     lambda x: np.minimum(np.where(x >= 0.5, x, 0.2 * (x - 0.5)), 2.0)),
    (lambda: L.LeakyReLU(), lambda x: np.where(x > 0, x, 0.3 * x)),
    (lambda: L.LeakyReLU(negative_slope=0.05), lambda x: np.where(x > 0, x, 0.05 * x)),
    (lambda: L.ELU(alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    (lambda: L.Softmax(), _softmax),
    (lambda: L.Softmax(axis=1),
     lambda x: np.moveaxis(_softmax(np.moveaxis(x, 1, -1)), -1, 1)),
])
def test_activation_layers(make, ref, rng):
    layer = make()
    x = rng.uniform(-3, 3, size=(2, 4, 5)).astype(np.float32)
    x_before = x.copy()
    y, r, dx, grads = run_layer(layer, x, rng)
    np.testing.assert_array_equal(x, x_before)  # the input is not overwritten
    assert grads == [] and y.shape == x.shape
    assert_close(y, ref(x.astype(np.float64)), rtol=2e-5, atol=2e-6)
    (expected,) = numeric_grads(ref, [x], r)
    assert_close(dx, expected)
    clone = check_config_round_trip(layer, x)
    assert type(clone) is type(layer)


def test_activation_layer_softmax_fusion(rng):
    for layer in (L.Activation("softmax"), L.Softmax()):
        x = rng.standard_normal((3, 4)).astype(np.float32)
        assert layer.activation_name == "softmax"
        np.testing.assert_array_equal(layer.forward_logits(x, training=True), x)
        dz = rng.standard_normal((3, 4)).astype(np.float32)
        np.testing.assert_array_equal(layer.backward(dz), dz)
    sm = L.Softmax(axis=1)
    sm.build((None, 3, 4))
    assert sm.activation_name is None
    with pytest.raises(ValueError, match="negative_slope"):
        L.LeakyReLU(negative_slope=-1)
    with pytest.raises(ValueError, match="max_value"):
        L.ReLU(max_value=-1)


def test_ops_exist_for_every_activation():
    # every kernel the activations rely on is part of cnnc.ops
    for name in ("relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu",
                 "elu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "gelu",
                 "gelu_backward", "softmax", "softmax_backward", "log_softmax",
                 "log_softmax_backward", "matmul", "bias_add", "bias_add_backward"):
        assert callable(getattr(cnnc.ops, name, None)), name


@pytest.mark.parametrize("kwargs", [dict(max_value=1.0), dict(threshold=0.5), dict(max_value=6.0, threshold=-1.0),
                                    dict(negative_slope=0.2, max_value=3.0)])
def test_relu_options_on_infinities_and_nan_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, -np.inf, np.inf, -2.0, -0.0, 0.0, 0.25, 0.5, 1.0, 7.0], np.float32)
    t = torch.from_numpy(x.astype(np.float64))
    slope, top, thr = kwargs.get("negative_slope", 0.0), kwargs.get("max_value"), kwargs.get("threshold", 0.0)
    below = slope * (t - thr) if slope else torch.zeros_like(t)
    want = torch.where(t >= thr, t, below)
    want = torch.where(torch.isnan(t), t, want)
    if top is not None:
        want = torch.clamp(want, max=top)
    got = L.ReLU(**kwargs)(x)
    np.testing.assert_array_equal(got, want.numpy().astype(np.float32))
    assert not np.signbit(got[3]) or slope  # 0, not -0.0, below the threshold
