"""Merge layers over broadcasting shapes (squeeze-and-excitation and the
like) and pooling with dilated windows: forward and gradients against
PyTorch and NumPy loops, training, the C model runtime, saving and ONNX
export."""
import numpy as np
import pytest

from cnnc import layers as L
from cnnc.models import Model, load_model
from cnnc.models import inference

MERGES = [(L.Add, "add"), (L.Subtract, "sub"), (L.Multiply, "mul"), (L.Divide, "div"),
          (L.Maximum, "max"), (L.Minimum, "min"), (L.Average, "avg")]

# per-sample shapes of the two inputs (the second may have fewer axes)
SHAPES = [((5, 6, 4), (1, 1, 4)), ((1, 1, 4), (5, 6, 4)), ((5, 6, 4), (5, 6, 1)),
          ((5, 1, 4), (1, 6, 1)), ((5, 6, 4), (4,)), ((5, 6, 4), (6, 4)), ((3,), (2, 1))]


def _torch_merge(torch, name, tensors):
    a, b = tensors[0], tensors[1]
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "div": lambda: a / b, "max": lambda: torch.maximum(a, b),
            "min": lambda: torch.minimum(a, b), "avg": lambda: (a + b) * 0.5}[name]()


def _inputs(shapes, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 2.0, (batch,) + s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("cls,name", MERGES, ids=[m[1] for m in MERGES])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_merge_broadcast_against_torch(cls, name, shapes):
    torch = pytest.importorskip("torch")
    xs = _inputs(shapes)
    layer = cls()
    y = layer.forward(xs, training=True)
    # torch aligns on the right over all axes: give the lower-rank input its 1s after the batch
    rank = max(x.ndim for x in xs)
    ts = [torch.tensor(x.reshape((x.shape[0],) + (1,) * (rank - x.ndim) + x.shape[1:]),
                       dtype=torch.float64, requires_grad=True) for x in xs]
    ty = _torch_merge(torch, name, ts)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6)
    assert layer.compute_output_shape([(None,) + s for s in shapes]) == (None,) + tuple(
        ty.shape[1:])
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    grads = layer.backward(dy)
    for g, x, t in zip(grads, xs, ts):
        assert g.shape == x.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, t.grad.numpy().reshape(x.shape), rtol=1e-5, atol=1e-5)


def test_three_way_broadcast_gradients_by_finite_differences():
    xs = _inputs([(4, 1, 3), (1, 5, 3), (4, 5, 1)], seed=3)
    dy = np.random.default_rng(4).standard_normal((2, 4, 5, 3))
    for cls in (L.Add, L.Multiply, L.Average, L.Maximum):
        layer = cls()
        layer.forward(xs, training=True)
        grads = layer.backward(dy.astype(np.float32))
        for i, x in enumerate(xs):
            numeric = np.zeros(x.shape)
            for idx in np.ndindex(*x.shape):
                for sign in (1, -1):
                    shifted = [v.astype(np.float64) for v in xs]
                    shifted[i][idx] += sign * 1e-3
                    y = _numpy_merge(cls, shifted)
                    numeric[idx] += sign * (y * dy).sum() / 2e-3
            np.testing.assert_allclose(grads[i], numeric, rtol=1e-3, atol=1e-3)


def _numpy_merge(cls, xs):
    if cls is L.Add:
        return xs[0] + xs[1] + xs[2]
    if cls is L.Multiply:
        return xs[0] * xs[1] * xs[2]
    if cls is L.Average:
        return (xs[0] + xs[1] + xs[2]) / 3
    return np.maximum(np.maximum(xs[0], xs[1]), xs[2])


def test_shapes_that_do_not_broadcast_are_refused():
    a, b = L.Input((5, 6, 4)), L.Input((5, 3, 4))
    with pytest.raises(ValueError, match="do not broadcast"):
        L.Multiply()([a, b])
    with pytest.raises(ValueError, match="do not broadcast"):
        L.Add().forward(_inputs([(5, 6, 4), (2, 4)]))
    with pytest.raises(ValueError, match="batch size"):
        L.Add().forward([np.ones((2, 3), np.float32), np.ones((3, 3), np.float32)])


def _se_model(seed=0):
    """A small CNN with a squeeze-and-excitation block and more broadcasting
    merges (one with three inputs, one input of lower rank)."""
    inputs = L.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(2, 1, activation="relu")(s)
    s = L.Conv2D(8, 1, activation="sigmoid")(s)
    x = L.Multiply()([x, s])                                   # (8, 8, 8) * (1, 1, 8)
    column = L.Conv2D(1, 1)(x)                                 # (8, 8, 1)
    x = L.Add()([x, column, L.Conv2D(8, 1)(s)])                # three inputs, two broadcast
    flat = L.GlobalMaxPooling2D()(x)                           # (8,)
    x = L.Subtract()([x, flat])                                # lower rank: (8, 8, 8) - (8,)
    x = L.Maximum()([x, L.Conv2D(8, 1)(s)])
    x = L.Divide()([x, L.Activation("softplus")(column)])
    x = L.Average()([x, s])
    outputs = L.Dense(3)(L.Flatten()(x))
    model = Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def test_c_runtime_runs_broadcasting_merges():
    model = _se_model()
    assert inference.loaded_model(model) is not None  # the C runtime takes this model
    x = np.random.default_rng(5).standard_normal((3, 8, 8, 3)).astype(np.float32)
    expected = model._run_forward([x], training=False)[0]
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model.predict(x[:1], verbose=0), got[:1])


def test_c_runtime_merge_in_place_on_any_input():
    """The planner may write a merge's output over whichever full-size input
    dies there (here the third): every input is read before it is written."""
    inputs = L.Input((4, 4, 2))
    a = L.Conv2D(2, 1)(inputs)
    b = L.Conv2D(2, 1)(inputs)
    c = L.Conv2D(2, 1)(inputs)
    merged = [cls()([a, b, c]) for cls in (L.Add, L.Multiply, L.Average, L.Minimum)]
    model = Model(inputs, L.Concatenate()(merged + [a, b]))
    x = np.random.default_rng(6).standard_normal((2, 4, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model._run_forward([x], training=False)[0], rtol=1e-6, atol=1e-6)


def test_se_model_trains_and_saves(tmp_path):
    model = _se_model(seed=1)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((32, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    path = str(tmp_path / "se.cnnc")
    model.save(path)
    again = load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_broadcasting_merges_export_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from cnnc.onnx import export
    model = _se_model(seed=2)
    path = str(tmp_path / "se.onnx")
    export(model, path)
    x = np.random.default_rng(8).standard_normal((2, 8, 8, 3)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5, rtol=1e-5)


# -- dilated pooling -------------------------------------------------------------------

POOL_CASES = [dict(pool_size=3, strides=1, dilation_rate=2),
              dict(pool_size=(3, 2), strides=(2, 1), dilation_rate=(2, 3), padding="same"),
              dict(pool_size=2, strides=2, dilation_rate=(3, 2), padding=((2, 1), (0, 2))),
              dict(pool_size=3, strides=2, dilation_rate=2, padding=((1, 1), (2, 2)),
                   ceil_mode=True)]


@pytest.mark.parametrize("kwargs", POOL_CASES, ids=str)
def test_dilated_max_pool_against_torch(kwargs):
    torch = pytest.importorskip("torch")
    layer = L.MaxPooling2D(**kwargs)
    x = np.random.default_rng(9).standard_normal((2, 11, 12, 3)).astype(np.float32)
    y = layer.forward(x, training=True)
    pads = layer._pads(x.shape[1:3])[0]
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    # torch pads symmetrically: pad explicitly with -inf, then pool unpadded
    padded = torch.nn.functional.pad(tx, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]),
                                     value=-float("inf"))
    ty = torch.nn.functional.max_pool2d(padded, layer.pool_size, layer.strides,
                                        dilation=layer.dilation_rate,
                                        ceil_mode=layer.ceil_mode)
    np.testing.assert_array_equal(y, ty.detach().numpy().transpose(0, 2, 3, 1))
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + y.shape[1:]
    dy = np.random.default_rng(10).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy().transpose(0, 2, 3, 1),
                               atol=1e-6)


def _naive_avg_pool(x, layer):
    """The mean over each window's taps on the input (or, with
    count_include_pad, on the explicitly padded input), by loops."""
    (pt, pb), (pl, pr) = layer._pads(x.shape[1:3])[0]
    out = layer.compute_output_shape(x.shape)
    (kh, kw), (sh, sw), (dh, dw) = layer.pool_size, layer.strides, layer.dilation_rate
    y = np.zeros(out, np.float64)
    for i in range(out[1]):
        for j in range(out[2]):
            total, count = 0.0, 0
            for a in range(kh):
                for b in range(kw):
                    r, c = i * sh - pt + a * dh, j * sw - pl + b * dw
                    inside = 0 <= r < x.shape[1] and 0 <= c < x.shape[2]
                    in_pad = -pt <= r < x.shape[1] + pb and -pl <= c < x.shape[2] + pr
                    if inside:
                        total = total + x[:, r, c].astype(np.float64)
                    if inside or (layer.count_include_pad and in_pad):
                        count += 1
            y[:, i, j] = total / count
    return y


@pytest.mark.parametrize("kwargs", POOL_CASES, ids=str)
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_dilated_avg_pool_against_loops(kwargs, count_include_pad):
    layer = L.AveragePooling2D(count_include_pad=count_include_pad, **kwargs)
    x = np.random.default_rng(11).standard_normal((2, 11, 12, 3)).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, _naive_avg_pool(x, layer), rtol=1e-5, atol=1e-6)
    # the gradient of sum(y * dy), by finite differences of the (linear) pooling
    dy = np.random.default_rng(12).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    for idx in [(0, 0, 0, 0), (1, 5, 7, 2), (0, 10, 11, 1), (1, 3, 0, 0)]:
        e = np.zeros_like(x, dtype=np.float64)
        e[idx] = 1.0
        expected = (_naive_avg_pool(e, layer) * dy).sum()
        np.testing.assert_allclose(dx[idx], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [L.MaxPooling1D, L.AveragePooling1D])
def test_dilated_pool1d_matches_2d(cls):
    two_d = {L.MaxPooling1D: L.MaxPooling2D, L.AveragePooling1D: L.AveragePooling2D}[cls]
    layer = cls(3, strides=2, dilation_rate=3, padding=((2, 1),), ceil_mode=True)
    ref = two_d((1, 3), strides=(1, 2), dilation_rate=(1, 3), padding=((0, 0), (2, 1)),
                ceil_mode=True)
    x = np.random.default_rng(13).standard_normal((2, 17, 4)).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, ref.forward(x[:, None], training=True)[:, 0])
    dy = np.random.default_rng(14).standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), ref.backward(dy[:, None])[:, 0])


def test_dilated_pooling_in_a_model(tmp_path):
    inputs = L.Input((12, 12, 2))
    x = L.MaxPooling2D(3, strides=1, dilation_rate=2, padding="same")(inputs)
    x = L.AveragePooling2D(2, dilation_rate=(2, 1), count_include_pad=True,
                           padding=((1, 0), (0, 1)))(x)
    model = Model(inputs, L.Dense(2)(L.Flatten()(x)))
    assert model.layers[1].get_config()["dilation_rate"] == [2, 2]
    x = np.random.default_rng(15).standard_normal((4, 12, 12, 2)).astype(np.float32)
    path = str(tmp_path / "pool.cnnc")
    model.save(path)
    again = load_model(path)
    assert again.layers[1].dilation_rate == (2, 2)
    np.testing.assert_array_equal(again.predict(x, verbose=0),
                                  model._run_forward([x], training=False)[0])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((4, 2), np.float32), epochs=1, verbose=0)


def test_dilated_pooling_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from cnnc.onnx import export
    inputs = L.Input((11, 10, 3))
    a = L.MaxPooling2D((3, 2), strides=(2, 1), dilation_rate=(2, 3),
                       padding=((1, 1), (1, 0)))(inputs)
    b = L.AveragePooling2D((3, 2), strides=(2, 1), dilation_rate=(2, 3), ceil_mode=True,
                           count_include_pad=True, padding=((1, 1), (1, 0)))(inputs)
    model = Model(inputs, L.Concatenate()([a, b]))
    x = np.random.default_rng(16).standard_normal((2, 11, 10, 3)).astype(np.float32)
    path = str(tmp_path / "pool.onnx")
    with pytest.raises(ValueError, match="opset 19"):
        export(model, path, opset=17)
    export(model, path, opset=19)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5, rtol=1e-5)
