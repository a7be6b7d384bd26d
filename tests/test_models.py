"""The model graph: topological order, forward, backward with fan-out
(skip connections), several inputs/outputs, nesting, errors and summary.
Uses NumPy layers (tests/nplayers.py) as the independent reference."""

import numpy as np
import pytest

from cnnc.layers import Input
from cnnc.models import Model, Sequential
from nplayers import NpAdd, NpConcat, NpDense, NpSplit, softmax


def _residual_model():
    inp = Input((6,), name="x")
    h = NpDense(6, "tanh", name="d1")(inp)
    h2 = NpDense(6, "tanh", name="d2")(h)
    s = NpAdd(name="add")([h, h2])          # h feeds two nodes
    s2 = NpAdd(name="add2")([s, inp])        # and so does the input
    out = NpDense(3, name="head")(s2)
    return Model(inp, out, name="res")


def _reference(model, x):
    """The same network evaluated in float64 from the weights."""
    W = {layer.name: [w.value.astype(np.float64) for w in layer.weights] for layer in model.layers}
    d = lambda name, v, act=None: (lambda z: np.tanh(z) if act == "tanh" else z)(
        v @ W[name][0] + W[name][1])
    h = d("d1", x, "tanh")
    h2 = d("d2", h, "tanh")
    return d("head", h + h2 + x)


def test_forward_matches_reference_and_order(rng):
    model = _residual_model()
    assert [l.name for l in model.layers] == ["x", "d1", "d2", "add", "add2", "head"]
    x = rng.standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), _reference(model, x), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(model(x), _reference(model, x), rtol=1e-5, atol=1e-5)
    assert model.input_shape == (None, 6) and model.output_shape == (None, 3)


def test_backward_accumulates_skip_gradients(rng):
    model = _residual_model()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    g = rng.standard_normal((4, 3))
    model._run_forward([x], training=True)
    (dx,) = model._run_backward([g.astype(np.float32)], need_input_gradients=True)
    f = lambda: float(np.sum(_reference(model, x.astype(np.float64)) * g))
    eps = 1e-3
    for weight in model.weights:
        flat = weight.value.reshape(-1)
        for i in range(0, flat.size, 7):
            old = flat[i]
            flat[i] = old + eps
            up = f()
            flat[i] = old - eps
            down = f()
            flat[i] = old
            assert weight.grad.reshape(-1)[i] == pytest.approx((up - down) / (2 * eps),
                                                               rel=1e-2, abs=1e-3)
    # Input gradient by finite differences too.
    xd = x.astype(np.float64)
    for i in range(0, xd.size, 5):
        e = np.zeros_like(xd)
        e.flat[i] = eps
        num = (np.sum(_reference(model, xd + e) * g) - np.sum(_reference(model, xd - e) * g)) / (
            2 * eps)
        assert dx.flat[i] == pytest.approx(num, rel=1e-2, abs=1e-3)


def test_two_inputs_two_outputs_and_multi_output_layer(rng):
    a = Input((4,), name="a")
    b = Input((3,), name="b")
    c = NpConcat(name="cat")([NpDense(4, "tanh", name="da")(a), b])
    left, right = NpSplit(name="split")(NpDense(6, name="mix")(c))
    out1 = NpDense(2, name="o1")(left)
    out2 = NpDense(1, name="o2")(right)
    model = Model([a, b], [out1, out2])
    assert model.input_names == ["a", "b"] and model.output_names == ["o1", "o2"]
    xa = rng.standard_normal((5, 4)).astype(np.float32)
    xb = rng.standard_normal((5, 3)).astype(np.float32)
    p1, p2 = model.predict([xa, xb], verbose=0)
    q1, q2 = model.predict({"a": xa, "b": xb}, verbose=0, batch_size=2)
    np.testing.assert_allclose(p1, q1, rtol=1e-6)
    np.testing.assert_allclose(p2, q2, rtol=1e-6)
    assert p1.shape == (5, 2) and p2.shape == (5, 1)
    # Training both outputs with a loss each (and weights) reduces both losses.
    model.compile("sgd", loss=["mse", "mae"], loss_weights=[1.0, 0.5])
    y1 = rng.standard_normal((5, 2)).astype(np.float32)
    y2 = rng.standard_normal((5, 1)).astype(np.float32)
    before = model.evaluate([xa, xb], [y1, y2], verbose=0, return_dict=True)
    assert set(before) == {"loss", "o1_loss", "o2_loss"}
    assert before["loss"] == pytest.approx(before["o1_loss"] + 0.5 * before["o2_loss"], rel=1e-5)
    model.fit([xa, xb], {"o1": y1, "o2": y2}, epochs=30, batch_size=5, verbose=0)
    after = model.evaluate([xa, xb], [y1, y2], verbose=0, return_dict=True)
    assert after["o1_loss"] < before["o1_loss"] and after["o2_loss"] < before["o2_loss"]


def test_nested_model_trains_as_a_layer(rng):
    inner_in = Input((5,), name="inner_in")
    inner = Model(inner_in, NpDense(4, "tanh", name="inner_d")(inner_in), name="inner")
    x = Input((5,), name="outer_in")
    y = NpDense(2, name="outer_d")(inner(x))
    model = Model(x, y, name="outer")
    assert len(model.weights) == 4 and model.count_params() == 5 * 4 + 4 + 4 * 2 + 2
    before = [w.copy() for w in inner.get_weights()]
    model.compile("sgd", "mse")
    xs = rng.standard_normal((8, 5)).astype(np.float32)
    model.fit(xs, np.ones((8, 2), np.float32), epochs=2, verbose=0)
    assert not np.allclose(before[0], inner.get_weights()[0])  # gradient reached inside
    inner.trainable = False
    assert all(not l.trainable for l in inner.layers)
    frozen = [w.copy() for w in inner.get_weights()]
    head = model.get_layer("outer_d").get_weights()[0].copy()
    model.fit(xs, np.ones((8, 2), np.float32), epochs=2, verbose=0)
    for a, b in zip(frozen, inner.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head, model.get_layer("outer_d").get_weights()[0])


def test_fused_softmax_gives_logits_to_the_loss(rng):
    inp = Input((4,))
    out = NpDense(3, "softmax", name="probs")(inp)
    model = Model(inp, out)
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    assert model._compiled_outputs[0].fused_step is not None
    x = rng.standard_normal((6, 4)).astype(np.float32) * 300  # saturated softmax
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 6)]
    loss = model.evaluate(x, y, verbose=0)[0]
    W, b = (w.value.astype(np.float64) for w in model.weights)
    z = x @ W + b
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    assert loss == pytest.approx(np.mean(lse - (z * y).sum(1)), rel=1e-4)
    assert np.isfinite(loss) and loss > 17  # probabilities would clip at -log(1e-7) = 16.1
    np.testing.assert_allclose(model.predict(x, verbose=0), softmax(z), atol=1e-6)
    # A softmax output also consumed elsewhere is not fused.
    inp = Input((4,))
    p = NpDense(3, "softmax", name="p")(inp)
    both = Model(inp, [p, NpDense(1, name="after")(p)])
    both.compile("sgd", ["categorical_crossentropy", "mse"])
    assert both._compiled_outputs[0].fused_step is None


def test_graph_errors():
    a = Input((3,))
    shared = NpDense(3, name="shared")
    assert len(Model(a, shared(shared(a))).layers) == 2  # input + the shared layer, once
    b = Input((3,))
    with pytest.raises(ValueError, match="disconnected"):
        Model(a, NpAdd()([NpDense(3)(a), b]))
    with pytest.raises(ValueError, match="unique"):
        Model(a, NpDense(3, name="same")(NpDense(3, name="same")(a)))
    with pytest.raises(TypeError, match="symbolic"):
        Model(a, np.zeros(3))
    model = Model(a, NpDense(2)(a))
    with pytest.raises(ValueError, match="expects 1 input array"):
        model.predict([np.zeros((2, 3)), np.zeros((2, 3))], verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros((2, 4)), verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 2)), verbose=0)
    with pytest.raises(ValueError, match="no layer named"):
        model.get_layer("nope")


def test_sequential_build_paths(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    deferred = Sequential([NpDense(4, name="a"), NpDense(2, name="b")])
    assert not deferred.built or not deferred._graph_ready
    out = deferred.predict(x, verbose=0)  # built from the first batch
    assert out.shape == (3, 2) and deferred.count_params() == 5 * 4 + 4 + 4 * 2 + 2
    explicit = Sequential()
    explicit.add(Input((5,)))
    explicit.add(NpDense(4, name="c"))
    explicit.add(NpDense(2, name="d"))
    assert explicit.output_shape == (None, 2)
    assert [l.name for l in explicit.layers] == ["c", "d"]
    explicit.pop()
    assert explicit.output_shape == (None, 4)
    with pytest.raises(TypeError):
        explicit.add("dense")
    with pytest.raises(ValueError, match="several outputs"):
        Sequential([Input((4,)), NpSplit()])
    built = Sequential([NpDense(3, name="e")])
    built.build((None, 7))
    assert built.input_shape == (None, 7)


def test_summary_counts_and_columns():
    model = _residual_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "res"' in text and "Connected to" in text
    assert "add2 (NpAdd)" in text and "add[0][0], x[0][0]" in text
    total = 2 * (6 * 6 + 6) + 6 * 3 + 3
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text and "Non-trainable params: 0" in text
    model.get_layer("d1").trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 63" in lines[-3] and "Non-trainable params: 42" in lines[-2]


def test_layers_shared_between_a_model_and_its_sub_model(rng):
    inp = Input((4,), name="in")
    d1 = NpDense(5, "tanh", name="d1")
    d2 = NpDense(5, "tanh", name="d2")
    mid = d1(inp)
    full = Model(inp, NpDense(2, name="head")(d2(mid)))
    tail = Model(mid, full.get_layer("head").output)  # starts at d2: its dx is not needed
    assert [l.name for l in tail.layers] == ["d2", "head"]
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.standard_normal((6, 2)).astype(np.float32)
    tail.compile("sgd", "mse")
    tail.fit(rng.standard_normal((6, 5)).astype(np.float32), y, verbose=0)
    full.compile("sgd", "mse")
    before = d1.get_weights()[0].copy()
    full.fit(x, y, verbose=0)
    assert not np.array_equal(before, d1.get_weights()[0])  # d2 still passed dx back
    with pytest.raises(ValueError, match="expects arrays of shape"):
        tail.predict(np.zeros((2, 4), np.float32), verbose=0)
