"""Keras-style preprocessing layers: semantics, inference identity, configs,
backward (adjoint tests) and Normalization.adapt."""
import numpy as np
import pytest

from cnnc import layers as L
from cnnc import ops

RANDOM_LAYERS = [
    lambda: L.RandomFlip(seed=1),
    lambda: L.RandomRotation(0.1, seed=2),
    lambda: L.RandomTranslation(0.2, (-0.1, 0.3), fill_mode="constant", seed=3),
    lambda: L.RandomZoom((-0.3, 0.2), (-0.1, 0.1), fill_mode="nearest", seed=4),
    lambda: L.RandomCrop(10, 11, padding=2, seed=5),
    lambda: L.RandomContrast(0.4, seed=6),
    lambda: L.RandomBrightness((-0.2, 0.1), seed=7),
]


@pytest.fixture
def batch(rng):
    return (rng.random((6, 10, 11, 2)) * 255).astype(np.float32)


@pytest.mark.parametrize("make", RANDOM_LAYERS)
def test_identity_at_inference_and_config_round_trip(make, batch):
    layer = make()
    np.testing.assert_array_equal(layer(batch), batch)
    np.testing.assert_array_equal(layer(batch, training=False), batch)
    out = layer(batch, training=True)
    assert out.shape == batch.shape and not np.array_equal(out, batch)
    assert not np.array_equal(layer(batch, training=True), out)  # a fresh draw per call
    clone = L.deserialize(L.serialize(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    twin = make()  # same seed, same sequence of outputs
    np.testing.assert_array_equal(twin(batch, training=True), out)


def test_rotation_translation_zoom_semantics():
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 0, :, 0] = 1
    rot = L.RandomRotation((0.25, 0.25), fill_mode="constant")  # a quarter turn, counter-clockwise
    np.testing.assert_allclose(rot(x, training=True)[0, :, :, 0], np.rot90(x[0, :, :, 0]), atol=1e-5)
    shift = L.RandomTranslation((0.25, 0.25), (0, 0), fill_mode="constant")
    np.testing.assert_allclose(shift(x, training=True)[0, 2, :, 0], 1, atol=1e-6)
    zoom_out = L.RandomZoom((1.0, 1.0), fill_mode="constant")  # shows twice the height and width
    y = zoom_out(np.ones((1, 9, 9, 1), np.float32), training=True)[0, :, :, 0]
    assert y[4, 4] == 1 and y[0, 0] == 0 and y[2:7, 2:7].min() == 1


def test_flip_modes(batch):
    for mode, axes in (("horizontal", (2,)), ("vertical", (1,)), ("horizontal_and_vertical", (1, 2))):
        y = L.RandomFlip(mode, seed=3)(batch, training=True)
        for i in range(len(batch)):
            candidates = [batch[i]] + [np.flip(batch[i], a - 1) for a in axes]
            if len(axes) == 2:
                candidates.append(batch[i, ::-1, ::-1])
            assert any(np.array_equal(y[i], c) for c in candidates)
    with pytest.raises(ValueError, match="mode"):
        L.RandomFlip("diagonal")


def test_crop_training_windows_and_inference_resize(batch):
    layer = L.RandomCrop(7, 8, seed=9)
    y = layer(batch, training=True)
    assert y.shape == (6, 7, 8, 2)
    for i in range(len(batch)):
        assert any(np.array_equal(y[i], batch[i, t:t + 7, s:s + 8]) for t in range(4) for s in range(4))
    # Inference: Keras's smart resize (centred window of the target aspect, bilinear resize).
    x = np.arange(2 * 12 * 12, dtype=np.float32).reshape(2, 12, 12, 1)
    got = L.RandomCrop(6, 6)(x)
    ref = x.reshape(2, 6, 2, 6, 2, 1).mean(axis=(2, 4))  # a 2x downscale at pixel centres averages 2x2
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    np.testing.assert_array_equal(L.RandomCrop(12, 12)(x), x)
    assert L.RandomCrop(5, 4).compute_output_shape((None, 12, 12, 3)) == (None, 5, 4, 3)


def test_brightness_and_contrast_ranges(batch):
    y = L.RandomBrightness(0.1, seed=2)(batch, training=True)
    inside = (y > 0) & (y < 255)
    for i in range(len(batch)):
        delta = (y[i] - batch[i])[inside[i]]
        assert np.ptp(delta) < 1e-3 and abs(delta[0]) <= 25.5 + 1e-3
    y = L.RandomContrast((0.5, 0.5), value_range=(-1e9, 1e9), seed=4)(batch, training=True)
    for i in range(len(batch)):
        mean = batch[i].mean(axis=(0, 1))
        ratio = (y[i] - mean) / (batch[i] - mean)
        assert 0.5 - 1e-3 < ratio.min() and ratio.max() < 1.5 + 1e-3
        assert np.ptp(ratio) < 1e-2
    with pytest.raises(ValueError):
        L.RandomBrightness(1.5)
    with pytest.raises(ValueError):
        L.RandomContrast(1.5)


@pytest.mark.parametrize("make", RANDOM_LAYERS[:5])
def test_backward_is_the_adjoint(make, batch, rng):
    """<T x, g> == <x, T* g> for the linear geometric transforms."""
    layer = make()
    y = layer(batch, training=True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g)
    assert dx.shape == batch.shape
    if getattr(layer, "fill_mode", "constant") == "constant" and not isinstance(layer, L.RandomCrop):
        lhs = float((y.astype(np.float64) * g).sum())
        rhs = float((batch.astype(np.float64) * dx).sum())
        assert lhs == pytest.approx(rhs, rel=1e-4)
    # Finite differences on one input pixel (the warps are linear in x).
    e = np.zeros_like(batch)
    e[1, 4, 5, 1] = 1
    layer2 = make()
    plus = layer2(batch + e, training=True)
    layer3 = make()
    base = layer3(batch, training=True)
    np.testing.assert_allclose(((plus - base) * g).sum(), dx[1, 4, 5, 1], rtol=1e-2, atol=1e-2)


def test_contrast_backward_matches_finite_differences(rng):
    x = (rng.random((2, 5, 4, 3)) * 100 + 50).astype(np.float64)
    g = rng.standard_normal(x.shape)
    layer = L.RandomContrast(0.5, seed=5)
    y = layer(x.astype(np.float32), training=True)
    dx = layer.backward(g.astype(np.float32))
    for idx in [(0, 1, 2, 0), (1, 4, 3, 2)]:
        e = np.zeros_like(x)
        e[idx] = 0.5
        yp = L.RandomContrast(0.5, seed=5)((x + e).astype(np.float32), training=True)
        np.testing.assert_allclose(((yp - y) * g).sum() / 0.5, dx[idx], rtol=2e-2, atol=2e-2)


def test_rescaling():
    layer = L.Rescaling(1 / 127.5, offset=-1)
    x = np.array([[0, 127.5, 255]], np.float32)
    np.testing.assert_allclose(layer(x), [[-1, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), 1 / 127.5)
    assert L.deserialize(L.serialize(layer)).get_config() == layer.get_config()


def test_normalization_adapt(rng, batch):
    layer = L.Normalization()
    with pytest.raises(ValueError, match="adapt"):
        layer(batch)
    layer.adapt(batch, batch_size=4)  # streamed over uneven batches
    np.testing.assert_allclose(layer.mean.value.ravel(), batch.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(layer.variance.value.ravel(), batch.var(axis=(0, 1, 2)), rtol=1e-5)
    y = layer(batch)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-4)
    inv = L.Normalization(mean=layer.mean.value.ravel(), variance=layer.variance.value.ravel(), invert=True)
    np.testing.assert_allclose(inv(y), batch, rtol=1e-4, atol=1e-3)
    scalar = L.Normalization(axis=None)
    scalar.adapt([(batch[:3], None), (batch[3:], None)])
    np.testing.assert_allclose(scalar.mean.value, batch.mean(), rtol=1e-6)
    per_pixel = L.Normalization(axis=(1, 2))
    per_pixel.adapt(batch)
    assert per_pixel.mean.value.shape == (10, 11, 1)
    np.testing.assert_allclose(per_pixel.backward(np.ones_like(batch))[0, 3, 4, 0],
                               1 / batch[:, 3, 4].std(), rtol=1e-4)
    clone = L.Normalization.from_config(inv.get_config())
    np.testing.assert_allclose(clone(y), batch, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="both"):
        L.Normalization(mean=1.0)


def test_inside_a_model_train_save_load(tmp_path, rng):
    models = pytest.importorskip("cnnc.models")
    x = (rng.random((64, 8, 8, 1)) * 255).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    norm = L.Normalization()
    norm.adapt(x)
    model = models.Sequential([
        L.Input(shape=(8, 8, 1)), L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.05, seed=2),
        L.RandomZoom(0.1, seed=3), L.RandomContrast(0.1, seed=4), norm,
        L.Conv2D(4, 3, activation="relu"), L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    p1 = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, model.predict(x, verbose=0))  # inference is deterministic
    model.save(str(tmp_path / "m.safetensors"))
    loaded = models.load_model(str(tmp_path / "m.safetensors"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), p1, rtol=1e-6, atol=1e-7)
