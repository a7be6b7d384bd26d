"""Loss objects and metrics against NumPy formulas (Keras semantics)."""
import numpy as np
import pytest

from cnnc import losses, metrics


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_crossentropies(rng):
    z = rng.standard_normal((6, 4)) * 3
    p = _softmax(z)
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    expected = -np.log(np.clip(p[np.arange(6), labels], 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, p), expected, rtol=1e-4)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, p), expected,
                               rtol=1e-4)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, z, from_logits=True),
                               -np.log(p[np.arange(6), labels]), rtol=1e-4)
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(labels[:, None], z, from_logits=True),
        -np.log(p[np.arange(6), labels]), rtol=1e-4)
    smooth = onehot * 0.9 + 0.1 / 4
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction="none")(
            onehot, z), -(smooth * np.log(p)).sum(1), rtol=1e-4)
    # Reduction: mean over the batch, with sample weights.
    w = rng.random(6)
    loss = losses.CategoricalCrossentropy()
    assert loss(onehot, p) == pytest.approx(expected.mean(), rel=1e-4)
    assert loss(onehot, p, sample_weight=w) == pytest.approx((expected * w).mean(), rel=1e-4)


def test_binary_and_regression_losses(rng):
    z = rng.standard_normal((5, 3))
    t = (rng.random((5, 3)) > 0.5).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(1)
    np.testing.assert_allclose(losses.binary_crossentropy(t, p), bce, rtol=1e-4)
    np.testing.assert_allclose(losses.binary_crossentropy(t, z, from_logits=True), bce, rtol=1e-4)
    y = rng.standard_normal((5, 2, 2))
    q = rng.standard_normal((5, 2, 2))
    np.testing.assert_allclose(losses.mse(y, q), ((y - q) ** 2).reshape(5, -1).mean(1), rtol=1e-5)
    np.testing.assert_allclose(losses.mae(y, q), np.abs(y - q).reshape(5, -1).mean(1), rtol=1e-5)


def test_loss_lookup():
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("MAE"), losses.MeanAbsoluteError)
    assert isinstance(losses.get(losses.binary_crossentropy), losses.BinaryCrossentropy)
    custom = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(custom) is custom
    back = losses.deserialize(losses.serialize(losses.BinaryCrossentropy(label_smoothing=0.2)))
    assert back.label_smoothing == 0.2
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge9")
    assert isinstance(losses.get(lambda y, p: 0.0), losses.LossFunctionWrapper)
    with pytest.raises(TypeError, match="cannot use"):
        losses.get(3)


def test_accuracies(rng):
    p = rng.random((8, 5))
    labels = rng.integers(0, 5, 8)
    onehot = np.eye(5)[labels]
    hit = (p.argmax(1) == labels).mean()
    assert metrics.CategoricalAccuracy()(onehot, p) == pytest.approx(hit)
    assert metrics.SparseCategoricalAccuracy()(labels, p) == pytest.approx(hit)
    assert metrics.SparseCategoricalAccuracy()(labels[:, None].astype(float), p) == \
        pytest.approx(hit)
    rank = (p > p[np.arange(8), labels][:, None]).sum(1)
    assert metrics.TopKCategoricalAccuracy(k=2)(onehot, p) == pytest.approx((rank < 2).mean())
    assert metrics.SparseTopKCategoricalAccuracy(k=3)(labels, p) == pytest.approx(
        (rank < 3).mean())
    b = rng.random((8, 1))
    t = (rng.random((8, 1)) > 0.5).astype(float)
    assert metrics.BinaryAccuracy()(t, b) == pytest.approx(((b > 0.5) == t).mean())
    # Accumulation over batches with sample weights.
    m = metrics.CategoricalAccuracy()
    m.update_state(onehot[:4], p[:4], sample_weight=np.array([1, 0, 0, 1.0]))
    m.update_state(onehot[4:], p[4:])
    hits = (p.argmax(1) == labels).astype(float)
    assert m.result() == pytest.approx((hits[0] + hits[3] + hits[4:].sum()) / 6)
    m.reset_state()
    assert m.result() == 0.0


def test_accuracy_resolution_follows_the_loss():
    assert isinstance(metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"),
                                  (None, 10)), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("acc", losses.get("categorical_crossentropy"), (None, 10)),
                      metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", losses.get("binary_crossentropy"), (None, 3)),
                      metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", losses.get("mse"), (None, 1)),
                      metrics.BinaryAccuracy)
    assert metrics.get("acc", losses.get("mse"), (None, 4)).name == "acc"


def test_precision_recall(rng):
    p = rng.random((20, 3))
    t = (rng.random((20, 3)) > 0.5).astype(float)
    pos = p > 0.5
    tp = (pos & (t > 0.5)).sum()
    assert metrics.Precision()(t, p) == pytest.approx(tp / pos.sum())
    assert metrics.Recall()(t, p) == pytest.approx(tp / (t > 0.5).sum())
    col = metrics.Precision(class_id=1, thresholds=0.3)(t, p)
    pos1 = p[:, 1] > 0.3
    assert col == pytest.approx((pos1 & (t[:, 1] > 0.5)).sum() / pos1.sum())
    top1 = metrics.Recall(top_k=1)(t, p)
    best = p == p.max(1, keepdims=True)
    assert top1 == pytest.approx(((best & (p > 0.5)) & (t > 0.5)).sum() / (t > 0.5).sum())
    assert metrics.Precision()(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_mean_and_custom_metric_function(rng):
    m = metrics.Mean()
    m.update_state([1.0, 2.0, 3.0])
    m.update_state(10.0, sample_weight=3)
    assert m.result() == pytest.approx((6 + 30) / 6)

    def max_error(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).max(axis=1)
    metric = metrics.get(max_error)
    assert metric.name == "max_error"
    assert metric(np.zeros((2, 2)), np.array([[1.0, 3.0], [2.0, 0.0]])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get("f7_score")


def test_regression_metrics(rng):
    y = rng.standard_normal((6, 3))
    p = rng.standard_normal((6, 3))
    assert metrics.get("mae")(y, p) == pytest.approx(np.abs(y - p).mean())
    assert metrics.get("mse").name == "mse"
    assert metrics.get("mse")(y, p) == pytest.approx(((y - p) ** 2).mean())
    assert metrics.get("rmse")(y, p) == pytest.approx(np.sqrt(((y - p) ** 2).mean()))
    assert metrics.get("mean_absolute_error").name == "mean_absolute_error"


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_ignore_class_averages_over_valid_elements_as_torch(rng, from_logits):
    """Keras and PyTorch (ignore_index, reduction="mean") divide by the valid
    elements only; the trainer's per-sample sum / N must give the same."""
    torch = pytest.importorskip("torch")
    from cnnc import losses, ops
    logits = rng.standard_normal((4, 5, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (4, 5, 6))
    labels[rng.random(labels.shape) < 0.4] = 255
    labels[0] = 255                                     # one sample entirely ignored
    weights = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    t_logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    per_element = torch.nn.functional.cross_entropy(
        t_logits.permute(0, 3, 1, 2), torch.tensor(labels), ignore_index=255, reduction="none")
    valid = float((labels != 255).sum())
    want = (per_element * torch.tensor(weights, dtype=torch.float64)[:, None, None]).sum() / valid
    want.backward()
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=255)
    pred = logits if from_logits else ops.softmax(logits)
    per_sample, grad = loss.compute(labels, pred, sample_weight=weights, grad_scale=1 / 4)
    np.testing.assert_allclose(per_sample.sum() / 4, want.item(), rtol=1e-5)
    assert loss(labels, pred, sample_weight=weights) == pytest.approx(want.item(), rel=1e-5)
    if from_logits:
        np.testing.assert_allclose(grad, t_logits.grad.numpy(), rtol=1e-4, atol=1e-6)
    all_ignored = np.full((2, 3), 255)
    assert loss(all_ignored, pred[:2, 0, :3]) == 0.0


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_label_smoothing_matches_torch_and_one_hot(rng, from_logits):
    """Integer labels with label_smoothing give PyTorch's
    cross_entropy(label_smoothing=s) and the categorical loss on smoothed
    one-hot rows, loss and gradient."""
    torch = pytest.importorskip("torch")
    from cnnc import ops
    logits = (rng.standard_normal((7, 5)) * 2).astype(np.float32)
    labels = rng.integers(0, 5, 7)
    t_logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    want = torch.nn.functional.cross_entropy(t_logits, torch.tensor(labels), label_smoothing=0.2)
    want.backward()
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.2)
    pred = logits if from_logits else ops.softmax(logits)
    assert loss(labels, pred) == pytest.approx(want.item(), rel=1e-5)
    per_sample, grad = loss.compute(labels, pred, grad_scale=1 / 7)
    dense = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.2)
    dense_per_sample, dense_grad = dense.compute(np.eye(5)[labels], pred, grad_scale=1 / 7)
    np.testing.assert_allclose(per_sample, dense_per_sample, rtol=1e-6)
    np.testing.assert_allclose(grad, dense_grad, rtol=1e-5, atol=1e-7)
    if from_logits:
        np.testing.assert_allclose(grad, t_logits.grad.numpy(), rtol=1e-4, atol=1e-6)
    config = loss.get_config()
    assert config["label_smoothing"] == 0.2
    assert losses.SparseCategoricalCrossentropy.from_config(config).label_smoothing == 0.2
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.SparseCategoricalCrossentropy(label_smoothing=1.5)
