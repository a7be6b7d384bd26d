"""Keras-style models through automatic differentiation: custom layers
(add_weight + cnnc.ops), Lambda, custom losses, subclassed models and shared
layers, each trained and checked against the same model in PyTorch (float64
autograd), gradients and updated weights."""
import numpy as np
import pytest

import cnnc
from cnnc import layers, ops

torch = pytest.importorskip("torch")
F = torch.nn.functional


def t64(array):
    return torch.tensor(np.asarray(array, np.float64), requires_grad=True)


def assert_grads(cnnc_weights, torch_params, rtol=2e-4, atol=2e-5):
    assert len(cnnc_weights) == len(torch_params)
    for w, p in zip(cnnc_weights, torch_params):
        np.testing.assert_allclose(w.grad, p.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=w.name)


class Linear(layers.Layer):
    """The Keras guide's custom layer: weights from add_weight, call() in ops."""

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal",
                                 trainable=True, name="bias")

    def call(self, inputs):
        z = ops.matmul(inputs, self.w) + self.b
        return z * ops.sigmoid(z) - 0.1 * ops.abs(z)

    def get_config(self):
        return dict(super().get_config(), units=self.units)


def test_custom_layer_trains_like_torch(rng):
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    custom = Linear(5)
    model = cnnc.Sequential([cnnc.Input((6,)), custom, layers.Dense(3)])
    assert [w.name for w in custom.weights] == [f"{custom.name}/variable", f"{custom.name}/bias"]
    w0 = [w.value.copy() for w in model.trainable_weights]
    model.compile(cnnc.optimizers.SGD(0.1), "mse")
    loss = model.train_on_batch(x, y)

    p = [t64(w) for w in w0]
    z = t64(x).detach() @ p[0] + p[1]
    h = z * torch.sigmoid(z) - 0.1 * z.abs()
    out = h @ p[2] + p[3]
    ref = ((out - torch.tensor(y, dtype=torch.float64)) ** 2).mean()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert_grads(model.trainable_weights, p)
    for w, w_init, param in zip(model.trainable_weights, w0, p):
        np.testing.assert_allclose(w.value, w_init - 0.1 * param.grad.numpy(), rtol=1e-5,
                                   atol=1e-6)
    # The eager layer contract: forward/backward of the custom layer alone.
    custom.need_input_gradient = True
    out = custom.forward(x, training=True)
    dx = custom.backward(np.ones_like(out))
    xt = t64(x)
    zt = xt @ torch.tensor(custom.w.value, dtype=torch.float64) + torch.tensor(
        custom.b.value, dtype=torch.float64)
    (zt * torch.sigmoid(zt) - 0.1 * zt.abs()).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_custom_layer_in_functional_model_saves_and_loads(tmp_path, rng):
    inp = cnnc.Input((4,))
    out = layers.Dense(2)(Linear(3, name="lin")(inp))
    model = cnnc.Model(inp, out)
    assert model.get_layer("lin").output_shape == (None, 3)
    path = tmp_path / "custom.cnnc"
    model.save(path)
    back = cnnc.models.load_model(path, custom_objects={"Linear": Linear})
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def swish_square(t):
    return ops.square(t) * 0.5 + ops.sin(t)


def test_lambda_layer_gradients_and_saving(tmp_path, rng):
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    inp = cnnc.Input((5,))
    h = layers.Dense(4)(inp)
    h = layers.Lambda(swish_square, name="lam")(h)
    scaled = layers.Lambda(lambda t, k: t * k, arguments={"k": 2.0})(h)
    out = layers.Dense(2)(scaled)
    model = cnnc.Model(inp, out)
    weights = [w.value.copy() for w in model.trainable_weights]
    model.compile("sgd", "mse")
    model.train_on_batch(x, y)
    p = [t64(w) for w in weights]
    h = torch.tensor(x, dtype=torch.float64) @ p[0] + p[1]
    o = (2 * (h ** 2 * 0.5 + torch.sin(h))) @ p[2] + p[3]
    ((o - torch.tensor(y, dtype=torch.float64)) ** 2).mean().backward()
    assert_grads(model.trainable_weights, p)
    # Named functions save by name; a lambda cannot.
    with pytest.raises(ValueError, match="lambda"):
        model.save(tmp_path / "lambda.cnnc")
    inp = cnnc.Input((5,))
    named = cnnc.Model(inp, layers.Lambda(swish_square)(layers.Dense(3)(inp)))
    named.save(tmp_path / "named.cnnc")
    with pytest.raises(ValueError, match="custom_objects"):
        cnnc.models.load_model(tmp_path / "named.cnnc")
    back = cnnc.models.load_model(tmp_path / "named.cnnc",
                                  custom_objects={"swish_square": swish_square})
    np.testing.assert_array_equal(back.predict(x, verbose=0), named.predict(x, verbose=0))


def custom_mse(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


class Huberish(cnnc.losses.Loss):
    def call(self, y_true, y_pred):
        d = ops.abs(y_true - y_pred)
        return ops.where(d < 0.5, 0.5 * d * d, 0.5 * d - 0.125)


def test_custom_losses(tmp_path, rng):
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    sw = rng.uniform(0.5, 2, 12).astype(np.float32)
    inp = cnnc.Input((3,))
    model = cnnc.Model(inp, layers.Dense(2)(inp))
    w0 = model.get_weights()
    model.compile(cnnc.optimizers.SGD(0.05), custom_mse)
    custom = model.train_on_batch(x, y, sample_weight=sw)
    after_custom = model.get_weights()
    model.set_weights(w0)
    model.compile(cnnc.optimizers.SGD(0.05), "mse")
    builtin = model.train_on_batch(x, y, sample_weight=sw)
    assert custom == pytest.approx(builtin, rel=1e-6)
    for a, b in zip(after_custom, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # A Loss subclass writing call(): the Huber loss of PyTorch (delta 0.5, scaled).
    model.set_weights(w0)
    model.compile("sgd", Huberish())
    model.train_on_batch(x, y)
    p = [t64(w) for w in w0]
    out = torch.tensor(x, dtype=torch.float64) @ p[0] + p[1]
    (F.huber_loss(out, torch.tensor(y, dtype=torch.float64), delta=0.5)).backward()
    assert_grads(model.trainable_weights, p)
    # Saved by name, found again through custom_objects.
    model.compile("sgd", custom_mse)
    model.save(tmp_path / "loss.cnnc")
    back = cnnc.models.load_model(tmp_path / "loss.cnnc", custom_objects={"custom_mse": custom_mse})
    assert back.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


class TiedAutoencoder(cnnc.Model):
    """A subclassed model: convolution, a Dense called twice (shared), a
    decoder tied to the encoder's kernel, Python control flow in call()."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(3, 3, activation="relu")
        self.flatten = layers.Flatten()
        self.encoder = layers.Dense(6, activation="tanh")
        self.shared = layers.Dense(6)
        self.scale = None

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(6,), initializer="ones", name="scale")

    def call(self, x, training=False):
        h = self.flatten(self.conv(x))
        code = self.encoder(h)
        for _ in range(2):
            code = ops.tanh(self.shared(code)) * self.scale
        # Weight tying: the decoder is the encoder's kernel, transposed.
        return ops.matmul(code, ops.transpose(self.encoder.kernel))


def torch_tied(model, x):
    conv, enc, shared = model.conv, model.encoder, model.shared
    p = [t64(w.value) for w in (conv.kernel, conv.bias, enc.kernel, enc.bias, shared.kernel,
                                 shared.bias, model.scale)]
    h = F.relu(F.conv2d(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2),
                        p[0].permute(3, 2, 0, 1), p[1])).permute(0, 2, 3, 1).reshape(len(x), -1)
    code = torch.tanh(h @ p[2] + p[3])
    for _ in range(2):
        code = torch.tanh(code @ p[4] + p[5]) * p[6]
    return code @ p[2].T, p


def test_subclassed_model_trains_saves_and_summarizes(tmp_path, rng):
    x = rng.standard_normal((10, 5, 5, 2)).astype(np.float32)
    model = TiedAutoencoder(name="tied")
    with pytest.raises(ValueError, match="not built"):
        model.output_shape
    y = rng.standard_normal((10, 27)).astype(np.float32)
    model.compile(cnnc.optimizers.SGD(0.05), "mse")
    model.train_on_batch(x, y)  # builds on the first batch
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "tied" in text and "conv2d" in text and "(None, 3, 3, 3)" in text
    assert f"Total params: {model.count_params():,}" in text
    assert model.count_params() == 2 * 3 * 9 + 3 + 27 * 6 + 6 + 6 * 6 + 6 + 6

    out, p = torch_tied(model, x[:4])
    ((out - torch.tensor(y[:4], dtype=torch.float64)) ** 2).mean().backward()
    model.train_on_batch(x[:4], y[:4])
    ordered = [model.conv.kernel, model.conv.bias, model.encoder.kernel, model.encoder.bias,
               model.shared.kernel, model.shared.bias, model.scale]
    # The weights moved by -lr * grad from where torch started.
    for w, param in zip(ordered, p):
        np.testing.assert_allclose(w.value, param.detach().numpy() - 0.05 * param.grad.numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=w.name)

    history = model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(pred, torch_tied(model, x)[0].detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean((pred - y) ** 2)),
                                                            rel=1e-4)
    path = tmp_path / "tied.weights.cnnc"
    model.save_weights(path)
    other = TiedAutoencoder()
    other.build((None, 5, 5, 2))
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), pred)
    with pytest.raises(ValueError, match="save_weights"):
        model.save(tmp_path / "tied.cnnc")


class TwoInputs(cnnc.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(2)
        self.dropout = layers.Dropout(0.5, seed=3)

    def call(self, inputs, training=False):
        a, b = inputs
        return [self.dense(a) - self.dense(b), self.dropout(a)]


def test_subclassed_model_with_several_inputs_and_outputs(rng):
    a = rng.standard_normal((8, 3)).astype(np.float32)
    b = rng.standard_normal((8, 3)).astype(np.float32)
    model = TwoInputs()
    model.compile("sgd", ["mse", None])
    model.fit([a, b], [np.zeros((8, 2), np.float32), a], epochs=1, verbose=0)
    out, same = model.predict([a, b], verbose=0)
    np.testing.assert_array_equal(same, a)  # dropout is off at inference
    kernel = model.dense.kernel.value
    np.testing.assert_allclose(out, (a - b) @ kernel, rtol=1e-5, atol=1e-6)
    assert model.output_names == ["output_0", "output_1"]


def test_shared_layers_in_functional_models_sum_gradients(tmp_path, rng):
    """A siamese network: a Sequential base (with BatchNormalization and
    Dropout, whose per-call state must be kept apart) used on two inputs,
    and a Dense shared by both branches."""
    base = cnnc.Sequential([cnnc.Input((4,)), layers.Dense(5), layers.BatchNormalization(),
                            layers.ReLU()], name="base")
    head = layers.Dense(3, activation="tanh", name="head")
    ia, ib = cnnc.Input((4,)), cnnc.Input((4,))
    ea, eb = head(base(ia)), head(base(ib))
    out = layers.Dense(1, name="out")(layers.Concatenate()([ea, layers.Subtract()([ea, eb])]))
    model = cnnc.Model([ia, ib], out)
    xa = rng.standard_normal((6, 4)).astype(np.float32)
    xb = rng.standard_normal((6, 4)).astype(np.float32) * 2 + 1
    y = rng.standard_normal((6, 1)).astype(np.float32)
    dense, bn = base.layers[0], base.layers[1]
    params = [dense.kernel, dense.bias, bn.gamma, bn.beta, head.kernel, head.bias,
              model.get_layer("out").kernel, model.get_layer("out").bias]
    assert model.trainable_weights == params
    p = [t64(w.value) for w in params]
    model.compile("sgd", "mse")
    model.train_on_batch([xa, xb], y)

    def branch(x):
        h = torch.tensor(x, dtype=torch.float64) @ p[0] + p[1]
        mean, var = h.mean(0), h.var(0, unbiased=False)
        h = F.relu((h - mean) / torch.sqrt(var + 1e-3) * p[2] + p[3])
        return torch.tanh(h @ p[4] + p[5])
    a, b = branch(xa), branch(xb)
    o = torch.cat([a, a - b], 1) @ p[6] + p[7]
    ((o - torch.tensor(y, dtype=torch.float64)) ** 2).mean().backward()
    assert_grads(params, p, rtol=1e-3, atol=1e-5)
    # Saved with node indices, loaded into the same graph.
    config = model.get_config()
    head_entry = next(e for e in config["layers"] if e["name"] == "head")
    assert len(head_entry["inbound_nodes"]) == 2
    assert head_entry["inbound_nodes"][1] == [["base", 1, 0]]
    path = tmp_path / "siamese.cnnc"
    model.save(path)
    back = cnnc.models.load_model(path)
    np.testing.assert_array_equal(back.predict([xa, xb], verbose=0),
                                  model.predict([xa, xb], verbose=0))
    assert len(back.layers) == len(model.layers)


def test_shared_layer_order_in_config_does_not_matter(rng):
    """A shared layer's second call takes a tensor of a layer listed after it."""
    inp = cnnc.Input((3,))
    shared = layers.Dense(3, name="shared")
    mid = layers.Dense(3, name="mid")
    out = shared(mid(shared(inp)))
    model = cnnc.Model(inp, out)
    config = model.get_config()
    assert [e["name"] for e in config["layers"]] == ["input_layer", "shared", "mid"] or \
        config["layers"][1]["name"] == "shared"
    back = cnnc.Model.from_config(config)
    back.set_weights(model.get_weights())
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_ops_on_symbolic_tensors_build_op_layers(tmp_path, rng):
    inp = cnnc.Input((6,))
    dense = layers.Dense(4)
    h = dense(inp)
    y = ops.relu(h) * 2 + ops.sum(h[:, :2], axis=-1, keepdims=True)
    out = ops.concatenate([y, ops.expand_dims(inp[:, 0], -1)], axis=-1) / 3.0
    model = cnnc.Model(inp, out)
    assert model.output_shape == (None, 5)
    assert {type(layer).__name__ for layer in model.layers} == {"InputLayer", "Dense", "OpLayer"}
    x = rng.standard_normal((7, 6)).astype(np.float32)
    target = rng.standard_normal((7, 5)).astype(np.float32)
    p = [t64(dense.kernel.value), t64(dense.bias.value)]
    model.compile("sgd", "mse")
    model.train_on_batch(x, target)
    xt = torch.tensor(x, dtype=torch.float64)
    ht = xt @ p[0] + p[1]
    yt = F.relu(ht) * 2 + ht[:, :2].sum(-1, keepdim=True)
    ot = torch.cat([yt, xt[:, :1]], -1) / 3.0
    ((ot - torch.tensor(target, dtype=torch.float64)) ** 2).mean().backward()
    assert_grads([dense.kernel, dense.bias], p)
    model.save(tmp_path / "ops.cnnc")
    back = cnnc.models.load_model(tmp_path / "ops.cnnc")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="not a cnnc.ops operation"):
        layers.OpLayer("system", ["ls"])


def test_op_layer_configs_from_files_are_bounded():
    from cnnc import _weight_limit
    # Rebuilding from a file: sizes in an op's arguments and the inputs a
    # traced layer's shape inference runs on are bounded, before allocation.
    with _weight_limit.weights_within(10, 10, ValueError):
        with pytest.raises(ValueError, match="while loading"):
            layers.OpLayer("tile", [{"tensor": 0}, {"tuple": [100000, 100000]}])
        with pytest.raises(ValueError, match="while loading"):
            layers.Lambda(swish_square)(cnnc.Input((4096, 4096)))
        layers.OpLayer("tile", [{"tensor": 0}, {"tuple": [1, 3]}])
    with pytest.raises(ValueError, match="no tensor input"):
        layers.OpLayer("zeros", [[10 ** 12]])
    with pytest.raises(ValueError, match="numbers only"):
        layers.OpLayer("add", [{"tensor": 0}, {"array": [1], "dtype": "object"}])
