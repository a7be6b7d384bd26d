"""predict's cached C model (cnnc.models.inference) follows every way of
changing a weight, and is reused while nothing changed."""
import numpy as np
import pytest

from cnnc import layers, optimizers
from cnnc.models import Sequential, inference


def _build(seed=0):
    model = Sequential([layers.Input((6, 6, 2)), layers.Conv2D(4, 3, padding="same"),
                        layers.BatchNormalization(), layers.ReLU(), layers.Flatten(), layers.Dense(3)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


X = np.random.default_rng(7).standard_normal((2, 6, 6, 2)).astype(np.float32)


def _fresh_prediction(model):
    """What a model built anew from ``model``'s current weights predicts."""
    fresh = _build(seed=99)
    fresh.set_weights(model.get_weights())
    return fresh.predict(X, verbose=0)


def _assign(model):
    model.layers[0].kernel.assign(np.zeros(model.layers[0].kernel.shape))


def _set_weights(model):
    model.set_weights([w * 2 for w in model.get_weights()])


def _layer_set_weights(model):
    layer = model.layers[-1]
    layer.set_weights([w - 1 for w in layer.get_weights()])


def _load_weights(model, tmp_path):
    current = model.get_weights()
    model.set_weights([w + 1 for w in current])
    model.save_weights(tmp_path / "w.weights.h5")
    model.set_weights(current)
    model.predict(X, verbose=0)  # cached again with the current weights
    model.load_weights(tmp_path / "w.weights.h5")


def _value_in_place(model):
    model.layers[0].bias.value[1] += 3.0


def _numpy_view(model):
    model.layers[-1].kernel.numpy()[0, 0] = -4.0


def _asarray_view(model):
    np.asarray(model.layers[1].moving_mean)[...] = 0.25


def _rebind_value(model):
    w = model.layers[-1].bias
    w.value = np.full(w.shape, 0.5, np.float32)


def _optimizer_step(model):
    # Adam packs the weights into one flat buffer and updates that.
    model.compile(optimizer=optimizers.Adam(0.1), loss="mse")
    model.train_on_batch(X, np.ones((2, 3), np.float32))


def _fit_updates_batch_norm(model):
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    model.fit(X, np.ones((2, 3), np.float32), epochs=1, verbose=0)


CHANGES = [_assign, _set_weights, _layer_set_weights, _load_weights, _value_in_place, _numpy_view,
           _asarray_view, _rebind_value, _optimizer_step, _fit_updates_batch_norm]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_next_predict_sees_the_change(change, tmp_path):
    model = _build()
    before = model.predict(X, verbose=0)
    np.testing.assert_array_equal(before, _fresh_prediction(model))
    change(model, tmp_path) if change is _load_weights else change(model)
    after = model.predict(X, verbose=0)
    assert not np.array_equal(after, before), "the change did not change the outputs"
    np.testing.assert_array_equal(after, _fresh_prediction(model))


def test_unchanged_weights_reuse_the_loaded_model():
    model = _build()
    model.predict(X, verbose=0)
    loaded = inference.loaded_model(model)
    assert loaded is not None
    model.predict(X, verbose=0)
    model.get_weights()  # copies: not a hand-out of the arrays
    _build(seed=3).layers[0].kernel.value[...] = 0  # another model's weights
    assert inference.loaded_model(model) is loaded
    model.layers[0].kernel.value[0, 0, 0, 0] += 1
    assert inference.loaded_model(model) is not loaded


def test_array_held_across_predict_cannot_change_unseen():
    model = _build()
    kernel = model.layers[0].kernel.value
    before = model.predict(X, verbose=0)
    with pytest.raises(ValueError):
        kernel[...] = 0  # frozen while it matches the cached C model
    np.testing.assert_array_equal(model.predict(X, verbose=0), before)
    model.layers[0].kernel.value[...] = 0  # through the weight: writable again
    np.testing.assert_array_equal(model.predict(X, verbose=0), _fresh_prediction(model))


def test_memory_check_still_runs_on_repeated_calls(monkeypatch):
    from cnnc.models import memory
    model = _build()
    model.predict(X, verbose=0)  # remembers the estimate and a memory reading
    model.predict(X, verbose=0)
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    with pytest.raises(MemoryError):
        model.predict(X, verbose=0)


def test_loading_from_the_arrays_matches_the_file_image():
    from cnnc._model import LoadedModel
    from cnnc.saving import inference_file_bytes, inference_parts
    model = _build()
    config, tensors = inference_parts(model)
    from_arrays = LoadedModel.from_tensors(config, tensors).predict([X])[0]
    np.testing.assert_array_equal(from_arrays, LoadedModel.from_bytes(inference_file_bytes(model)).predict([X])[0])
    np.testing.assert_allclose(from_arrays, model._run_forward([X], training=False)[0], rtol=0, atol=1e-4)
    # The weights were copied: changing the arrays afterwards changes nothing.
    copies = {k: v.copy() for k, v in tensors.items()}
    loaded = LoadedModel.from_tensors(config, copies)
    for array in copies.values():
        array[...] = 0
    np.testing.assert_array_equal(loaded.predict([X])[0], from_arrays)


@pytest.mark.parametrize("change, error", [
    (lambda c, t: (c, {k: v for k, v in t.items() if not k.endswith("bias")}), ValueError),
    (lambda c, t: (c, {k: (v[:1] if k.endswith("bias") else v) for k, v in t.items()}), ValueError),
    (lambda c, t: (c[:-3], t), ValueError),
    (lambda c, t: (c, {**t, "extra\0name": np.zeros(2, np.float32)}), ValueError),
    (lambda c, t: (c, {**t, "deep": np.zeros((1,) * 9, np.float32)}), ValueError),
], ids=["missing", "wrong-shape", "bad-json", "nul-name", "rank-9"])
def test_loading_from_bad_parts_raises(change, error):
    from cnnc._model import LoadedModel
    from cnnc.saving import inference_parts
    config, tensors = change(*inference_parts(_build()))
    with pytest.raises(error):
        LoadedModel.from_tensors(config, tensors)
