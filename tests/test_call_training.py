"""``layer(t, training=False)`` in a model graph (Keras's frozen-base idiom):
the layer behaves as in inference while the model trains, and gradients
still flow through it to its weights."""
import json

import numpy as np
import pytest

from cnnc import layers
from cnnc._model import LoadedModel
from cnnc.layers import BatchNormalization, Dense, Dropout, Input
from cnnc.models import Model, clone_model, load_model
from cnnc.utils import set_random_seed

EPS = 1e-3


def _base(rate=0.5):
    """Dense(5) -> BatchNormalization -> Dropout, with moving statistics,
    gamma and beta away from their initial values."""
    set_random_seed(3)
    rng = np.random.default_rng(3)
    inputs = Input((6,), name="base_in")
    h = Dense(5, name="base_dense")(inputs)
    h = BatchNormalization(epsilon=EPS, name="base_bn")(h)
    base = Model(inputs, Dropout(rate, name="base_drop")(h), name="base")
    bn = base.get_layer("base_bn")
    bn.set_weights([rng.uniform(0.5, 2.0, 5), rng.standard_normal(5),
                    rng.standard_normal(5), rng.uniform(0.5, 3.0, 5)])
    return base


def _transfer_model(training):
    base = _base()
    x = Input((6,), name="x")
    return Model(x, Dense(3, name="head")(base(x, training=training)), name="transfer")


def _inference_reference(model, x):
    """The model's inference function in float64 NumPy, and its backward."""
    w1, b1 = (w.astype(np.float64) for w in model.get_layer("base").get_layer(
        "base_dense").get_weights())
    gamma, beta, mean, var = (w.astype(np.float64) for w in model.get_layer("base").get_layer(
        "base_bn").get_weights())
    w2, b2 = (w.astype(np.float64) for w in model.get_layer("head").get_weights())
    h1 = x @ w1 + b1
    inv_std = 1.0 / np.sqrt(var + EPS)
    xhat = (h1 - mean) * inv_std
    h2 = gamma * xhat + beta
    y = h2 @ w2 + b2

    def backward(dy):
        dh2 = dy @ w2.T
        dh1 = dh2 * gamma * inv_std
        return {"head/kernel": h2.T @ dy, "head/bias": dy.sum(0), "base_bn/gamma":
                (dh2 * xhat).sum(0), "base_bn/beta": dh2.sum(0),
                "base_dense/kernel": x.T @ dh1, "base_dense/bias": dh1.sum(0),
                "x": dh1 @ w1.T}
    return y, backward


def _grads(model):
    base = model.get_layer("base")
    dense, bn, head = base.get_layer("base_dense"), base.get_layer("base_bn"), model.get_layer("head")
    return {"head/kernel": head.kernel.grad, "head/bias": head.bias.grad,
            "base_bn/gamma": bn.gamma.grad, "base_bn/beta": bn.beta.grad,
            "base_dense/kernel": dense.kernel.grad, "base_dense/bias": dense.bias.grad}


def test_training_pass_through_an_inference_call_matches_the_inference_function(rng):
    model = _transfer_model(training=False)
    bn = model.get_layer("base").get_layer("base_bn")
    moving = [w.copy() for w in bn.get_weights()[2:]]
    x = rng.standard_normal((16, 6)).astype(np.float32)
    dy = rng.standard_normal((16, 3)).astype(np.float32)
    (y,) = model._run_forward([x], training=True)
    (dx,) = model._run_backward([dy], need_input_gradients=True)
    ref, backward = _inference_reference(model, x.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    expected = backward(dy.astype(np.float64))
    np.testing.assert_allclose(dx, expected.pop("x"), rtol=1e-4, atol=1e-5)
    for key, grad in _grads(model).items():
        np.testing.assert_allclose(grad, expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
    for before, after in zip(moving, bn.get_weights()[2:]):
        np.testing.assert_array_equal(before, after)


def test_without_training_false_the_base_trains_in_training_mode(rng):
    """The control: the same graph called without training=False uses the
    batch statistics and dropout in a training pass."""
    model = _transfer_model(training=None)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    (y,) = model._run_forward([x], training=True)
    ref, _ = _inference_reference(model, x.astype(np.float64))
    assert np.abs(y - ref).max() > 0.1


def test_fit_fine_tunes_the_base_in_inference_mode(rng):
    model = _transfer_model(training=False)
    base = model.get_layer("base")
    bn = base.get_layer("base_bn")
    before = [w.copy() for w in base.get_weights()]
    model.compile("adam", "mse")
    x = rng.standard_normal((32, 6)).astype(np.float32)
    model.fit(x, rng.standard_normal((32, 3)).astype(np.float32), batch_size=8, epochs=2,
              verbose=0)
    after = base.get_weights()
    names = [w.name for w in base.weights]
    for name, a, b in zip(names, before, after):
        if "moving" in name:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert not np.array_equal(a, b), name
    assert bn.trainable and base.trainable


def test_frozen_base_called_with_training_false(rng):
    model = _transfer_model(training=False)
    base = model.get_layer("base")
    base.trainable = False
    before = [w.copy() for w in base.get_weights()]
    head = model.get_layer("head").get_weights()[0].copy()
    model.compile("adam", "mse")
    model.fit(rng.standard_normal((32, 6)).astype(np.float32),
              rng.standard_normal((32, 3)).astype(np.float32), batch_size=8, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head, model.get_layer("head").get_weights()[0])


def test_random_layer_called_with_training_false_is_the_identity_in_fit(rng):
    x = Input((6, 6, 1))
    h = layers.RandomFlip("horizontal_and_vertical", seed=1)(x, training=False)
    model = Model(x, layers.Flatten()(h))
    images = rng.standard_normal((4, 6, 6, 1)).astype(np.float32)
    (y,) = model._run_forward([images], training=True)
    np.testing.assert_array_equal(y, images.reshape(4, -1))
    control = Model(x, layers.Flatten()(layers.RandomFlip("horizontal_and_vertical",
                                                          seed=1)(x)))
    (y,) = control._run_forward([images], training=True)
    assert not np.array_equal(y, images.reshape(4, -1))


def test_saved_and_cloned_models_keep_the_call_mode(rng, tmp_path):
    model = _transfer_model(training=False)
    entry = next(e for e in model.get_config()["layers"] if e["name"] == "base")
    assert entry["call_kwargs"] == [{"training": False}]
    plain = _transfer_model(training=None)
    assert all("call_kwargs" not in e for e in plain.get_config()["layers"])
    x = rng.standard_normal((16, 6)).astype(np.float32)
    model.save(tmp_path / "m.cnnc")
    # The C runtime (inference only) loads the file and reads past call_kwargs.
    (c_out,) = LoadedModel.from_file(tmp_path / "m.cnnc").predict([x])
    np.testing.assert_allclose(c_out, model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    for copy in (load_model(tmp_path / "m.cnnc"), clone_model(model)):
        copy.set_weights(model.get_weights())
        (y,) = copy._run_forward([x], training=True)
        np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=0, atol=0)


def test_a_shared_layer_keeps_the_mode_of_each_call(rng):
    x = Input((6,))
    drop = Dropout(0.9, seed=2)
    model = Model(x, [drop(x, training=False), drop(x)])
    config = model.get_config()
    entry = next(e for e in config["layers"] if e["name"] == drop.name)
    assert entry["call_kwargs"] == [{"training": False}, {}]
    xs = rng.standard_normal((8, 6)).astype(np.float32) + 5.0
    for m in (model, Model.from_config(config)):
        kept, dropped = m._run_forward([xs], training=True)
        np.testing.assert_array_equal(kept, xs)
        assert (dropped == 0).mean() > 0.5


@pytest.mark.parametrize("call_kwargs", [
    [{"training": True}], [{"training": 0}], [{"mask": None}], [{}, {}], {"training": False},
    ["training"]])
def test_bad_call_kwargs_in_a_config_are_refused(call_kwargs):
    config = _transfer_model(training=False).get_config()
    entry = next(e for e in config["layers"] if e["name"] == "base")
    entry["call_kwargs"] = json.loads(json.dumps(call_kwargs))
    with pytest.raises(ValueError, match="call_kwargs|kwargs may only hold"):
        Model.from_config(config)


def test_training_true_or_a_non_bool_in_a_graph_is_refused():
    x = Input((6,))
    with pytest.raises(ValueError, match="training=True cannot be recorded"):
        Dense(2)(x, training=True)
    with pytest.raises(TypeError, match="training must be None, True or False"):
        Dense(2)(x, training="no")
    assert Dense(2)(x, training=np.bool_(False)).node.training is False


class _SubclassedTransfer(Model):
    """A subclassed model that calls its batch norm with training=False."""

    def __init__(self):
        super().__init__()
        self.dense = Dense(5, name="dense")
        self.bn = BatchNormalization(name="bn")
        self.head = Dense(2, name="head")
        self.seen = []

    def call(self, inputs, training=None):
        self.seen.append(training)
        return self.head(self.bn(self.dense(inputs), training=False))


def test_subclassed_model_calls_a_layer_with_training_false(rng):
    set_random_seed(5)
    model = _SubclassedTransfer()
    x = rng.standard_normal((16, 4)).astype(np.float32)
    model.compile("adam", "mse")
    model.fit(x, rng.standard_normal((16, 2)).astype(np.float32), batch_size=8, verbose=0)
    assert True in model.seen
    gamma, beta, mean, var = model.bn.get_weights()
    np.testing.assert_array_equal(mean, np.zeros(5))
    np.testing.assert_array_equal(var, np.ones(5))
    assert not np.array_equal(gamma, np.ones(5)) and not np.array_equal(beta, np.zeros(5))


def test_traced_layer_sees_training_false_but_keeps_its_tape(rng):
    seen = []

    class Scale(layers.Layer):
        def build(self, input_shape):
            self.s = self.add_weight("s", (input_shape[-1],), "ones")

        def call(self, inputs, training=None):
            seen.append(training)
            return inputs * self.s

    x = Input((4,))
    scale = Scale(name="scale")
    model = Model(x, Dense(1, name="out")(scale(x, training=False)))
    model.compile("sgd", "mse")
    model.fit(rng.standard_normal((8, 4)).astype(np.float32), np.ones((8, 1), np.float32),
              batch_size=8, verbose=0)
    assert seen and not any(seen)
    assert not np.array_equal(scale.get_weights()[0], np.ones(4))
