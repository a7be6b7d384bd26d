"""Helpers of the layer tests: float64 finite differences of NumPy reference
functions, running a layer forward/backward, and round-trip checks."""
import json

import numpy as np
import pytest

import cnnc.layers as L
from cnnc import random as cnnc_random


@pytest.fixture(autouse=True)
def seeded_weights():
    """Deterministic weight initialization in every test of a module that
    imports this fixture."""
    cnnc_random.set_seed(1234)


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
        with pytest.raises(ValueError, match="expects"):
            layer.set_weights(new[:-1])
        with pytest.raises(ValueError, match="shape"):
            layer.set_weights([np.zeros(w.shape + (1,), np.float32) for w in new])
    layer.set_weights(weights)


# -- NumPy float64 references of the convolutions (TensorFlow "same" rule) ----
def same_pads(n, k, s, d=1):
    """(before, after) padding of a "same" window: the odd pixel goes after."""
    eff = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def ref_conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1):
    """Direct convolution: y[n,i,j,o] = sum xp[n, i*s + a*d, j*s + c*d, g-slice] w[a,c,:,o]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    kh, kw, cin_g, cout = w.shape
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        pads = (same_pads(x.shape[1], kh, strides[0], dilation[0]),
                same_pads(x.shape[2], kw, strides[1], dilation[1]))
    else:
        pads = padding
    xp = np.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),))
    oh = (xp.shape[1] - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    cout_g = cout // groups
    y = np.zeros((x.shape[0], oh, ow, cout))
    for a in range(kh):
        for c in range(kw):
            r0, c0 = a * dilation[0], c * dilation[1]
            patch = xp[:, r0:r0 + strides[0] * (oh - 1) + 1:strides[0],
                       c0:c0 + strides[1] * (ow - 1) + 1:strides[1], :]
            for g in range(groups):
                y[..., g * cout_g:(g + 1) * cout_g] += (
                    patch[..., g * cin_g:(g + 1) * cin_g] @ w[a, c, :, g * cout_g:(g + 1) * cout_g])
    return y if b is None else y + np.asarray(b, np.float64)


def ref_conv2d_transpose(x, w, b, strides, out_hw, before, dilation=(1, 1)):
    """Scatter form: every input pixel adds x * w at stride s into a full
    canvas, then the window [before, before + out) is kept (Keras's size)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, cin = x.shape
    kh, kw, cout, _ = w.shape
    (sh, sw), (oh, ow), (bh, bw), (dh, dw) = strides, out_hw, before, dilation
    full_h = max((h - 1) * sh + (kh - 1) * dh + 1, bh + oh)
    full_w = max((wd - 1) * sw + (kw - 1) * dw + 1, bw + ow)
    canvas = np.zeros((n, full_h, full_w, cout))
    for a in range(kh):
        for c in range(kw):
            r0, c0 = a * dh, c * dw
            canvas[:, r0:r0 + sh * (h - 1) + 1:sh, c0:c0 + sw * (wd - 1) + 1:sw, :] += x @ w[a, c].T
    y = canvas[:, bh:bh + oh, bw:bw + ow, :]
    return y if b is None else y + np.asarray(b, np.float64)
