"""Pooling layers against NumPy references (padded positions never win a
max and are left out of averages, as Keras)."""
import numpy as np
import pytest

import cnnc.layers as L
from layer_checks import (assert_close, check_config_round_trip, numeric_grads, run_layer,  # noqa: F401
                          same_pads, seeded_weights)


def ref_pool2d(x, pool, strides, padding, kind):
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    if padding == "same":
        (pt, _), (pl, _) = same_pads(h, pool[0], strides[0]), same_pads(w, pool[1], strides[1])
        oh, ow = -(-h // strides[0]), -(-w // strides[1])
    else:
        pt = pl = 0
        oh, ow = (h - pool[0]) // strides[0] + 1, (w - pool[1]) // strides[1] + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - pt, j * strides[1] - pl
            win = x[:, max(r0, 0):min(r0 + pool[0], h), max(c0, 0):min(c0 + pool[1], w), :]
            y[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return y


@pytest.mark.parametrize("cls, kind", [(L.MaxPooling2D, "max"), (L.AveragePooling2D, "avg")])
@pytest.mark.parametrize("kw", [
    dict(),
    dict(pool_size=3, strides=2, padding="same"),
    dict(pool_size=(2, 3), strides=(1, 2)),
    dict(pool_size=3, padding="same"),
    dict(pool_size=2, strides=1, padding="valid"),
])
def test_pool2d(cls, kind, kw, rng):
    layer = cls(**kw)
    # distinct values, so that the max of every window is unique
    x = rng.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3).astype(np.float32) / 10
    pool = layer.pool_size
    strides = layer.strides
    y, r, dx, grads = run_layer(layer, x, rng)
    assert grads == []
    assert y.shape[1:] == layer.compute_output_shape((None, 7, 6, 3))[1:]

    def ref(x):
        return ref_pool2d(x, pool, strides, layer.padding, kind)
    assert_close(y, ref(x), rtol=1e-6, atol=1e-6)
    (expected,) = numeric_grads(ref, [x], r, eps=1e-3)
    assert_close(dx, expected, rtol=1e-4, atol=1e-4)


def test_max_pool_gradient_goes_to_first_maximum(rng):
    x = np.zeros((1, 2, 2, 1), np.float32)
    layer = L.MaxPooling2D()
    layer(x, training=True)
    dx = layer.backward(np.ones((1, 1, 1, 1), np.float32))
    np.testing.assert_array_equal(dx.reshape(-1), [1, 0, 0, 0])


@pytest.mark.parametrize("cls, kind", [(L.MaxPooling1D, "max"), (L.AveragePooling1D, "avg")])
@pytest.mark.parametrize("kw", [dict(), dict(pool_size=3, strides=2, padding="same"),
                                dict(pool_size=3, strides=1)])
def test_pool1d(cls, kind, kw, rng):
    layer = cls(**kw)
    x = rng.permutation(2 * 9 * 3).reshape(2, 9, 3).astype(np.float32) / 10
    y, r, dx, _ = run_layer(layer, x, rng)
    assert y.shape[1:] == layer.compute_output_shape((None, 9, 3))[1:]

    def ref(x):
        return ref_pool2d(x[:, None], (1,) + layer.pool_size, (1,) + layer.strides,
                          layer.padding, kind)[:, 0]
    assert_close(y, ref(x), rtol=1e-6, atol=1e-6)
    (expected,) = numeric_grads(ref, [x], r, eps=1e-3)
    assert_close(dx, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, reduce", [
    (L.GlobalAveragePooling2D, np.mean), (L.GlobalMaxPooling2D, np.max),
    (L.GlobalAveragePooling1D, np.mean), (L.GlobalMaxPooling1D, np.max)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(cls, reduce, keepdims, rng):
    layer = cls(keepdims=keepdims)
    shape = (2, 4, 3, 5) if layer.rank == 2 else (2, 6, 5)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32) / 10
    axes = tuple(range(1, len(shape) - 1))
    y, r, dx, _ = run_layer(layer, x, rng)
    assert y.shape == layer.compute_output_shape((2,) + shape[1:])

    def ref(x):
        return reduce(x, axis=axes, keepdims=keepdims)
    assert_close(y, ref(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    (expected,) = numeric_grads(ref, [x], r, eps=1e-3)
    assert_close(dx, expected, rtol=1e-4, atol=1e-4)
    check_config_round_trip(layer, x)


def test_pooling_shapes_config_and_errors():
    assert L.MaxPooling2D((2, 2))(L.Input((26, 26, 32))).shape == (None, 13, 13, 32)
    assert L.MaxPooling2D(3, strides=2, padding="same")(L.Input((7, 7, 1))).shape == \
        (None, 4, 4, 1)
    assert L.AveragePooling1D(4)(L.Input((10, 2))).shape == (None, 2, 2)
    assert L.MaxPool2D is L.MaxPooling2D and L.AvgPool1D is L.AveragePooling1D
    assert L.GlobalAveragePooling2D()(L.Input((7, 7, 16))).shape == (None, 16)
    for layer in (L.MaxPooling2D(3, 2, "same"), L.AveragePooling2D((2, 1)), L.MaxPooling1D(3),
                  L.AveragePooling1D(2, 1, "same")):
        config = check_config_round_trip(layer).get_config()
        assert config["strides"] == list(layer.strides)
    with pytest.raises(ValueError, match="pool_size"):
        L.MaxPooling2D(0)
    with pytest.raises(ValueError, match="strides"):
        L.AveragePooling2D(2, strides=(1, 0))
    with pytest.raises(ValueError, match="padding"):
        L.MaxPooling1D(2, padding="causal")
    with pytest.raises(ValueError, match="data_format"):
        L.GlobalMaxPooling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="rank 4"):
        L.MaxPooling2D()(L.Input((5, 5)))
    with pytest.raises(ValueError, match="smaller than pool_size"):
        L.MaxPooling2D(4)(L.Input((3, 3, 1)))
    with pytest.raises(RuntimeError, match="training=True"):
        L.MaxPooling2D().backward(np.zeros((1, 1, 1, 1), np.float32))
