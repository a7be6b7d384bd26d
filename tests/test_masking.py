"""Keras masks: Embedding(mask_zero) and Masking make them, the layers that
support masking pass them on, GlobalAveragePooling1D / GlobalMaxPooling1D /
Softmax / Lambda consume them, and the losses and metrics leave the masked
positions out; ignore_class with the "accuracy" metric. References: NumPy
(float64), finite differences and PyTorch."""
import warnings

import numpy as np
import pytest

import cnnc
import cnnc.layers as L
from cnnc.models import Model, Sequential, load_model

torch = pytest.importorskip("torch")


def _padded_tokens(rng, n=6, steps=7, vocab=12):
    """Token ids with trailing padding 0 of varied lengths (one row all
    padding, one row without padding)."""
    x = rng.integers(1, vocab, size=(n, steps)).astype(np.float32)
    lengths = rng.integers(1, steps, size=n)
    lengths[0], lengths[-1] = 0, steps
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    return x


# -- the consuming poolings, alone ------------------------------------------------
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling1d_mask_matches_torch(rng, keepdims):
    x = rng.standard_normal((5, 6, 4)).astype(np.float32)
    mask = rng.random((5, 6)) > 0.4
    mask[1] = False  # every step masked: zeros
    layer = L.GlobalAveragePooling1D(keepdims=keepdims)
    y = layer.forward(x, training=True, mask=mask)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    m = torch.tensor(mask, dtype=torch.float64)[:, :, None]
    yt = (xt * m).sum(1, keepdim=keepdims) / m.sum(1, keepdim=keepdims).clamp(min=1)
    yt.backward(torch.tensor(dy.astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y.reshape(5, 4)[1], 0.0)
    assert layer.compute_mask(x, mask) is None


def test_global_max_pooling1d_mask_matches_torch(rng):
    x = rng.standard_normal((5, 6, 4)).astype(np.float32)
    x[:, 5, :] = 50.0  # a large padded step must not win the max
    mask = rng.random((5, 6)) > 0.4
    mask[:, 5] = False
    mask[2] = False
    mask[3, 0] = True
    layer = L.GlobalMaxPooling1D()
    y = layer.forward(x, training=True, mask=mask)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    m = torch.tensor(mask)[:, :, None]
    yt = xt.masked_fill(~m, float("-inf")).amax(1)
    valid = m.any(1)
    yt = torch.where(valid, yt, torch.zeros_like(yt))
    yt.backward(torch.tensor(dy.astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    assert (y < 50).all()


def test_masked_average_pooling_gradient_finite_differences(rng):
    x = rng.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
    w = rng.standard_normal((3, 2))
    layer = L.GlobalAveragePooling1D()

    def loss(a):
        return float((layer.forward(a.astype(np.float32), mask=mask).astype(np.float64) * w).sum())
    layer.forward(x.astype(np.float32), training=True, mask=mask)
    dx = layer.backward(w.astype(np.float32))
    eps = 1e-2
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-3, atol=1e-4)


def test_layers_take_a_mask_when_called_on_arrays(rng):
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    expected = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(L.GlobalAveragePooling1D()(x, mask=mask), expected, rtol=1e-6)
    with pytest.raises(TypeError, match="unexpected call arguments"):
        L.Dense(2)(x, mask=mask)


def test_pooling_mask_shape_is_checked(rng):
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="mask has shape"):
        L.GlobalAveragePooling1D().forward(x, mask=np.ones((2, 3), bool))


# -- masks through a model -----------------------------------------------------------
def _pooled_model(pool, mask_zero=True):
    inp = cnnc.Input((7,))
    h = L.Embedding(12, 4, mask_zero=mask_zero, name="emb")(inp)
    h = L.Dense(5, activation="tanh", name="dense")(h)
    h = L.Dropout(0.1)(h)
    h = pool()(h)
    out = L.Dense(3, activation="softmax", name="head")(h)
    return Model(inp, out)


@pytest.mark.parametrize("pool", [L.GlobalAveragePooling1D, L.GlobalMaxPooling1D])
def test_padding_does_not_change_the_output(rng, pool):
    """With the mask, a padded sequence gives what its unpadded steps give
    alone, whatever the embedding of the padding index."""
    cnnc.utils.set_random_seed(3)
    model = _pooled_model(pool)
    x = _padded_tokens(rng)
    out = model.predict(x, verbose=0)
    emb = model.get_layer("emb").embeddings
    emb.value[0] = 100.0  # the padding row: must not matter
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-6)
    for i in range(1, x.shape[0]):
        length = int(np.count_nonzero(x[i]))
        steps = emb.value[x[i, :length].astype(int)]
        h = np.tanh(steps.astype(np.float64) @ model.get_layer("dense").kernel.value
                    + model.get_layer("dense").bias.value)
        pooled = h.mean(0) if pool is L.GlobalAveragePooling1D else h.max(0)
        z = pooled @ model.get_layer("head").kernel.value + model.get_layer("head").bias.value
        p = np.exp(z - z.max())
        np.testing.assert_allclose(out[i], p / p.sum(), rtol=1e-4, atol=1e-6)
    # The all-padding row pools to zeros: the head's bias alone.
    z = model.get_layer("head").bias.value.astype(np.float64)
    np.testing.assert_allclose(out[0], np.exp(z) / np.exp(z).sum(), rtol=1e-5)
    # Without mask_zero, padding counts.
    cnnc.utils.set_random_seed(3)
    plain = _pooled_model(pool, mask_zero=False)
    plain.get_layer("emb").embeddings.value[0] = 100.0
    assert not np.allclose(plain.predict(x, verbose=0), out, atol=1e-3)


def test_sequential_and_nested_models_pass_masks(rng):
    x = _padded_tokens(rng)
    cnnc.utils.set_random_seed(5)
    seq = Sequential([L.Input((7,)), L.Embedding(12, 4, mask_zero=True),
                      L.LayerNormalization(), L.GlobalAveragePooling1D()])
    y = seq.predict(x, verbose=0)
    emb = seq.layers[0].embeddings.value
    norm = seq.layers[1]
    for i in range(1, x.shape[0]):
        steps = emb[x[i][x[i] != 0].astype(int)].astype(np.float64)
        z = (steps - steps.mean(-1, keepdims=True)) / np.sqrt(steps.var(-1, keepdims=True) + 1e-3)
        np.testing.assert_allclose(y[i], (z * norm.gamma.value + norm.beta.value).mean(0),
                                   rtol=1e-4, atol=1e-5)
    # A masking Sequential inside a functional model: the mask leaves it.
    inner = Sequential([L.Input((7,)), L.Embedding(12, 4, mask_zero=True), L.Dense(3)])
    inp = cnnc.Input((7,))
    outer = Model(inp, L.GlobalAveragePooling1D()(inner(inp)))
    pooled = outer.predict(x, verbose=0)
    per_step = inner.predict(x, verbose=0)
    keep = (x != 0)[..., None]
    expected = (per_step * keep).sum(1) / np.maximum(keep.sum(1), 1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def _tagger(mask_zero=True, vocab=12, classes=4):
    inp = cnnc.Input((7,))
    h = L.Embedding(vocab, 5, mask_zero=mask_zero, name="emb")(inp)
    out = L.Dense(classes, activation="softmax", name="tags")(h)
    return Model(inp, out)


def test_masked_sequence_loss_and_accuracy(rng):
    """The loss is the mean over the unpadded steps and so is the accuracy
    (Keras's reduction of a masked output), also with sample weights."""
    cnnc.utils.set_random_seed(1)
    model = _tagger()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = _padded_tokens(rng)
    y = rng.integers(0, 4, size=x.shape)
    sw = rng.random(x.shape[0]).astype(np.float32)
    p = model.predict(x, verbose=0).astype(np.float64)
    ce = -np.log(np.take_along_axis(p, y[..., None], -1)[..., 0])
    keep = x != 0
    hit = p.argmax(-1) == y
    loss, acc = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, (ce * keep).sum() / keep.sum(), rtol=1e-5)
    np.testing.assert_allclose(acc, (hit * keep).sum() / keep.sum(), rtol=1e-6)
    loss_w = model.evaluate(x, y, sample_weight=sw, verbose=0)[0]
    np.testing.assert_allclose(loss_w, (ce * keep * sw[:, None]).sum() / keep.sum(), rtol=1e-5)


def test_masked_training_step_matches_torch(rng):
    """One SGD step through Embedding(mask_zero) -> Dense(softmax) with the
    masked cross-entropy: the loss and the updated weights match PyTorch
    with the padded steps left out of the mean."""
    cnnc.utils.set_random_seed(2)
    model = _tagger()
    model.compile(cnnc.optimizers.SGD(learning_rate=0.5), "sparse_categorical_crossentropy")
    x = _padded_tokens(rng)
    y = rng.integers(0, 4, size=x.shape)
    emb = torch.tensor(model.get_layer("emb").embeddings.value.astype(np.float64),
                       requires_grad=True)
    kernel = torch.tensor(model.get_layer("tags").kernel.value.astype(np.float64),
                          requires_grad=True)
    bias = torch.tensor(model.get_layer("tags").bias.value.astype(np.float64), requires_grad=True)
    logits = emb[torch.tensor(x.astype(np.int64))] @ kernel + bias
    target = torch.tensor(np.where(x != 0, y, -100))
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), target.reshape(-1),
                                            ignore_index=-100)
    ref.backward()
    loss = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-5)
    for got, param in [(model.get_layer("emb").embeddings.value, emb),
                       (model.get_layer("tags").kernel.value, kernel),
                       (model.get_layer("tags").bias.value, bias)]:
        np.testing.assert_allclose(got, (param - 0.5 * param.grad).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_mask_and_ignore_class_combine(rng):
    cnnc.utils.set_random_seed(4)
    model = _tagger()
    loss_fn = cnnc.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    model.compile("sgd", loss_fn, metrics=["accuracy"])
    x = _padded_tokens(rng)
    y = rng.integers(0, 4, size=x.shape)
    y[1, 0] = -1
    y[-1, 2:4] = -1
    p = model.predict(x, verbose=0).astype(np.float64)
    keep = (x != 0) & (y != -1)
    ce = -np.log(np.take_along_axis(p, np.maximum(y, 0)[..., None], -1)[..., 0])
    loss, acc = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, (ce * keep).sum() / keep.sum(), rtol=1e-5)
    np.testing.assert_allclose(acc, ((p.argmax(-1) == y) * keep).sum() / keep.sum(), rtol=1e-6)


def test_ignore_class_with_accuracy_metric(rng):
    """ignore_class + metrics=["accuracy"]: the ignored labels are left out
    of the accuracy instead of raising."""
    inp = cnnc.Input((4, 4, 2))
    out = L.Conv2D(3, 1, activation="softmax")(inp)
    model = Model(inp, out)
    model.compile("adam", cnnc.losses.SparseCategoricalCrossentropy(ignore_class=255),
                  metrics=["accuracy"])
    x = rng.standard_normal((3, 4, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=(3, 4, 4))
    y[0, :2] = 255
    p = model.predict(x, verbose=0)
    valid = y != 255
    _, acc = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(acc, ((p.argmax(-1) == y) & valid).sum() / valid.sum(), rtol=1e-6)
    model.fit(x, y, epochs=1, verbose=0)
    metric = cnnc.metrics.SparseCategoricalAccuracy(ignore_class=255)
    metric.update_state(y, p, sample_weight=np.array([1.0, 0.0, 2.0]))
    w = valid * np.array([1.0, 0.0, 2.0])[:, None, None]
    np.testing.assert_allclose(metric.result(), ((p.argmax(-1) == y) * w).sum() / w.sum())
    with pytest.raises(ValueError, match="out of range"):
        cnnc.metrics.SparseCategoricalAccuracy().update_state(y, p)
    with pytest.raises(ValueError, match="ignore_class"):
        cnnc.metrics.SparseCategoricalAccuracy(ignore_class=0.5)


# -- Masking, merges, Lambda, Softmax -------------------------------------------------
def test_masking_layer(rng):
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    x[0, 3:] = -1.0
    x[2, :] = -1.0
    x[1, 1, 0] = -1.0  # one feature equal to the value: the step stays
    layer = L.Masking(mask_value=-1.0)
    keep = ~np.all(x == -1.0, axis=-1)
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.compute_mask(x), keep)
    np.testing.assert_array_equal(y, x * keep[..., None])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy * keep[..., None])
    model = Sequential([L.Input((5, 3)), L.Masking(-1.0), L.GlobalAveragePooling1D()])
    expected = (x * keep[..., None]).sum(1) / np.maximum(keep.sum(1), 1)[:, None]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="mask_value"):
        L.Masking("zero")


def test_merge_masks_follow_keras(rng):
    a = rng.standard_normal((2, 4, 3)).astype(np.float32)
    ma = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], bool)
    mb = np.array([[1, 0, 1, 0], [1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(L.Add().compute_mask([a, a], [ma, mb]), ma & mb)
    np.testing.assert_array_equal(L.Add().compute_mask([a, a], [ma, None]), ma)
    assert L.Add().compute_mask([a, a], [None, None]) is None
    # Concatenate on features: a step is kept where any input keeps it.
    np.testing.assert_array_equal(L.Concatenate().compute_mask([a, a], [ma, mb]), ma | mb)
    np.testing.assert_array_equal(L.Concatenate().compute_mask([a, a], [ma, None]),
                                  np.ones((2, 4), bool))
    # Concatenate on steps: the masks are joined.
    np.testing.assert_array_equal(L.Concatenate(axis=1).compute_mask([a, a], [ma, mb]),
                                  np.concatenate([ma, mb], axis=1))


def test_masks_through_merge_and_lambda_in_a_graph(rng):
    x = _padded_tokens(rng)
    inp = cnnc.Input((7,))
    e1 = L.Embedding(12, 3, mask_zero=True)(inp)
    e2 = L.Embedding(12, 3)(inp)
    merged = L.Add()([e1, e2])

    def scale(v, mask):
        return v * 2.0

    h = L.Lambda(scale, mask=lambda inputs, mask: mask)(merged)
    model = Model(inp, L.GlobalAveragePooling1D()(h))
    y = model.predict(x, verbose=0)
    sums = 2.0 * (model.layers[1](x) + model.layers[2](x))
    keep = (x != 0)[..., None]
    np.testing.assert_allclose(y, (sums * keep).sum(1) / np.maximum(keep.sum(1), 1),
                               rtol=1e-5, atol=1e-6)
    # The Lambda function sees the mask it is given.
    seen = []

    def record(v, mask=None):
        seen.append(mask)
        return v
    Model(inp, L.Lambda(record)(e1)).predict(x, verbose=0)
    np.testing.assert_array_equal(seen[-1], x != 0)


def test_softmax_mask_of_full_rank(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    mask = rng.random((3, 5)) > 0.3
    mask[:, 0] = True
    layer = L.Softmax()
    y = layer.forward(x, training=True, mask=mask)
    e = np.where(mask, np.exp(x - x.max(-1, keepdims=True)), 0.0)
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = torch.softmax(xt.masked_fill(~torch.tensor(mask), -1e9), -1)
    dy = rng.standard_normal(x.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.backward(dy.astype(np.float32)), xt.grad.numpy(),
                               rtol=1e-4, atol=1e-6)
    # A mask per row (from an Embedding) leaves the rows as they are.
    np.testing.assert_allclose(layer.forward(x, mask=mask[:, 0]), layer.forward(x))
    with pytest.raises(ValueError, match="broadcast"):
        layer.forward(x, mask=np.ones((3, 4), bool))


def test_a_layer_without_masking_drops_the_mask_with_a_warning(rng):
    x = _padded_tokens(rng)
    inp = cnnc.Input((7,))
    h = L.Flatten()(L.Embedding(12, 2, mask_zero=True)(inp))
    model = Model(inp, L.Dense(2)(h))
    with pytest.warns(UserWarning, match="does not support masking"):
        model.predict(x, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(x, verbose=0)  # once per graph
        assert model._output_masks is None


def test_masked_models_save_and_load(tmp_path, rng):
    x = _padded_tokens(rng)

    def keep_mask(inputs, mask):
        return mask
    inp = cnnc.Input((7,))
    h = L.Embedding(12, 4, mask_zero=True)(inp)
    h = L.Masking(0.5)(h)
    out = L.GlobalMaxPooling1D()(h)
    model = Model(inp, out)
    path = tmp_path / "masked.cnnc"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[2].mask_value == 0.5

    def ident(v):
        return v
    lam = L.Lambda(ident, mask=keep_mask)
    again = L.Lambda.from_config(lam.get_config(), {"ident": ident, "keep_mask": keep_mask})
    assert again.mask is keep_mask and again.supports_masking
    with pytest.raises(ValueError, match="lambda mask"):
        L.Lambda(ident, mask=lambda i, m: m).get_config()
    with pytest.raises(ValueError, match="mask must be None or a function"):
        L.Lambda(ident, mask=np.ones(3))


def test_models_that_consume_masks_skip_the_c_runtime_and_onnx(tmp_path, rng):
    x = _padded_tokens(rng)
    cnnc.utils.set_random_seed(6)
    model = _pooled_model(L.GlobalAveragePooling1D)
    from cnnc.models import inference
    assert inference.run(model, [x]) is None
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  model._run_forward([x], training=False)[0])
    pytest.importorskip("onnx")
    from cnnc import onnx as cnnc_onnx
    with pytest.raises(ValueError, match="masks"):
        cnnc_onnx.export(model, tmp_path / "m.onnx")
    # A mask that only reaches the loss changes nothing at inference.
    assert _tagger()._mask_plan().consumes is False


def test_graphs_without_mask_makers_have_no_mask_plan():
    from cnnc.applications import ResNet18
    inp = cnnc.Input((5, 3))
    a = L.Dense(3)(inp)
    merged = L.Concatenate()([L.Add()([a, inp]), a])
    assert Model(inp, L.GlobalAveragePooling1D()(merged))._mask_plan() is None
    assert ResNet18(input_shape=(32, 32, 3), weights=None, classes=4)._mask_plan() is None


def test_batch_normalization_masked_statistics_match_torch(rng):
    """Training statistics over the kept steps only (Keras's masked moments);
    every step normalized with them; all gradients against torch.autograd."""
    x = rng.standard_normal((4, 6, 3)).astype(np.float32) * 2 + 1
    x[:, 4:] = 40.0  # padding far off: it must not move the statistics
    mask = np.ones((4, 6), bool)
    mask[:, 4:] = False
    mask[2, 1:] = False
    layer = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.build((None, 6, 3))
    layer.gamma.value[...] = [1.5, -0.5, 2.0]
    layer.beta.value[...] = [0.1, 0.2, -0.3]
    y = layer(x, training=True, mask=mask)
    dy = rng.standard_normal(x.shape)
    dx = layer.backward(dy.astype(np.float32))

    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    gamma = torch.tensor(layer.gamma.value.astype(np.float64), requires_grad=True)
    beta = torch.tensor(layer.beta.value.astype(np.float64), requires_grad=True)
    w = torch.tensor(mask, dtype=torch.float64)[..., None]
    count = w.sum() + 1e-7
    mean = (w * xt).sum((0, 1)) / count
    var = (w * (xt - mean) ** 2).sum((0, 1)) / count
    yt = (xt - mean) / torch.sqrt(var + 1e-3) * gamma + beta
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.gamma.grad, gamma.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.beta.grad, beta.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.value, 0.1 * mean.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.value, 0.9 + 0.1 * var.detach().numpy(),
                               rtol=1e-5)
    # Everything kept: the unmasked kernel's result.
    plain = L.BatchNormalization()
    masked = L.BatchNormalization()
    np.testing.assert_allclose(masked(x, training=True, mask=np.ones((4, 6), bool)),
                               plain(x, training=True), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(masked.backward(dy.astype(np.float32)),
                               plain.backward(dy.astype(np.float32)), rtol=1e-3, atol=1e-4)
    # At inference the moving statistics serve, mask or not.
    np.testing.assert_array_equal(layer(x, mask=mask), layer(x))


def test_batch_normalization_in_a_masked_model(rng):
    x = _padded_tokens(rng)
    inp = cnnc.Input((7,))
    h = L.Embedding(12, 3, mask_zero=True, name="emb")(inp)
    h = L.BatchNormalization(name="bn")(h)
    model = Model(inp, L.GlobalAveragePooling1D()(h))
    model.compile("sgd", "mse")
    before = model.get_layer("emb").embeddings.value.copy()
    model.train_on_batch(x, np.zeros((x.shape[0], 3), np.float32))
    keep = x != 0
    steps = before[x[keep].astype(int)].astype(np.float64)
    expected = 0.01 * steps.mean(0)  # moving mean after one step, momentum 0.99
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.value, expected, rtol=1e-4,
                               atol=1e-7)
