"""Helpers of the layer tests: float64 finite differences of NumPy reference
functions, running a layer forward/backward, and round-trip checks."""
import json

import numpy as np

import cnnc.layers as L


def numeric_grads(fn, arrays, r, eps=1e-6):
    """Central differences, in float64, of ``sum(fn(*arrays) * r)`` with
    respect to every element of every array in ``arrays``."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    r = np.asarray(r, dtype=np.float64)
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        flat = a.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = float(np.sum(fn(*arrays) * r))
            flat[i] = orig - eps
            minus = float(np.sum(fn(*arrays) * r))
            flat[i] = orig
            g.reshape(-1)[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def run_layer(layer, x, rng):
    """forward(training=True) then backward(r) for a random r; returns
    (y, r, dx, grads) with grads copies aligned with get_weights()."""
    y = layer(x, training=True)
    r = rng.standard_normal(np.shape(y)).astype(np.float32)
    dx = layer.backward(r)
    return y, r, dx, [g.copy() for g in layer.get_gradients()]


def probe_through_layer(layer, x, r, dx, rng, eps=1e-2, n=8, rtol=3e-2, atol=3e-3):
    """Finite differences through the float32 layer itself on ``n`` random
    input elements, against the analytic ``dx``."""
    x = np.array(x, dtype=np.float32)
    r64 = np.asarray(r, dtype=np.float64)
    for i in rng.choice(x.size, size=min(n, x.size), replace=False):
        orig = x.flat[i]
        x.flat[i] = orig + eps
        plus = float(np.sum(layer(x, training=True).astype(np.float64) * r64))
        x.flat[i] = orig - eps
        minus = float(np.sum(layer(x, training=True).astype(np.float64) * r64))
        x.flat[i] = orig
        np.testing.assert_allclose(dx.flat[i], (plus - minus) / (2 * eps), rtol=rtol, atol=atol)


def assert_close(actual, expected, rtol=1e-4, atol=1e-4):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol,
                               atol=atol)


def check_config_round_trip(layer, x=None):
    """get_config is JSON-serializable; from_config (and
    cnnc.layers.deserialize) rebuild an equivalent layer; with ``x``, the
    rebuilt layer given the same weights computes the same output."""
    config = layer.get_config()
    text = json.dumps(config)
    clone = type(layer).from_config(json.loads(text))
    assert clone.get_config() == config
    again = L.deserialize(json.loads(json.dumps(L.serialize(layer))))
    assert type(again) is type(layer)
    if x is not None:
        y = layer(x)
        clone(x)
        clone.set_weights(layer.get_weights())
        np.testing.assert_array_equal(clone(x), y)
    return clone


def check_weights_round_trip(layer, rng):
    """set_weights(get_weights()) after perturbation copies in place, keeps the
    Weight arrays' identity, and rejects wrong counts and shapes."""
    weights = layer.get_weights()
    ids = [id(w.value) for w in layer.weights]
    new = [rng.standard_normal(w.shape).astype(np.float32) for w in weights]
    layer.set_weights(new)
    for got, want in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    assert [id(w.value) for w in layer.weights] == ids
    got = layer.get_weights()
    if got:
        got[0] += 1.0  # a copy: the layer is unchanged
        np.testing.assert_array_equal(layer.get_weights()[0], new[0])
        import pytest
        with pytest.raises(ValueError, match="expects"):
            layer.set_weights(new[:-1])
        with pytest.raises(ValueError, match="shape"):
            layer.set_weights([np.zeros(w.shape + (1,), np.float32) for w in new])
    layer.set_weights(weights)
