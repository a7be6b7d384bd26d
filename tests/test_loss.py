"""Losses against float64 NumPy references written here, finite differences
of those references, and PyTorch where installed; every ISA, 1 and 2 threads."""
import numpy as np
import pytest

import cnnc
from cnnc import ops


# ---------------------------------------------------------------- references
def ref_softmax_xent(x, labels=None, targets=None, ls=0.0, ignore=None, sw=None):
    """Per-sample loss of logits x (N, ..., C), float64."""
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    if targets is None:
        t = np.eye(c)[np.clip(labels, 0, c - 1)]
        if ignore is not None:
            t[labels == ignore] = 0.0
    else:
        t = np.asarray(targets, np.float64)
    t = t * (1 - ls) + ls / c
    if ignore is not None and targets is None:
        t[labels == ignore] = 0.0
    m = x.max(-1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
    per_row = -(t * logp).sum(-1)
    loss = per_row.reshape(x.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def ref_categorical(p, labels=None, targets=None, ls=0.0, eps=1e-7, sw=None):
    p = np.asarray(p, np.float64)
    c = p.shape[-1]
    t = np.eye(c)[labels] if targets is None else np.asarray(targets, np.float64)
    t = t * (1 - ls) + ls / c
    q = np.clip(p / p.sum(-1, keepdims=True), np.float32(eps), np.float32(1 - np.float32(eps)))
    loss = -(t * np.log(q)).sum(-1).reshape(p.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def ref_sigmoid_xent(x, z, ls=0.0, sw=None):
    x = np.asarray(x, np.float64)
    z = np.asarray(z, np.float64) * (1 - ls) + 0.5 * ls
    per = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    loss = per.reshape(x.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def ref_binary(p, z, ls=0.0, eps=1e-7, sw=None):
    lo, hi = np.float32(eps), np.float32(1 - np.float32(eps))
    q = np.clip(np.asarray(p, np.float64), lo, hi)
    z = np.asarray(z, np.float64) * (1 - ls) + 0.5 * ls
    per = -(z * np.log(q) + (1 - z) * np.log(1 - q))
    loss = per.reshape(q.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def ref_mse(p, t, sw=None):
    d = np.asarray(p, np.float64) - t
    loss = (d * d).reshape(d.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def ref_mae(p, t, sw=None):
    d = np.abs(np.asarray(p, np.float64) - t)
    loss = d.reshape(d.shape[0], -1).mean(1)
    return loss if sw is None else loss * sw


def numeric_grad(f, x, h=1e-6, count=40, rng=None):
    """Central differences of sum(f(x)) at `count` random coordinates."""
    x = np.asarray(x, np.float64)
    idx = rng.choice(x.size, size=min(count, x.size), replace=False)
    out = {}
    for i in idx:
        xp, xm = x.copy().reshape(-1), x.copy().reshape(-1)
        xp[i] += h
        xm[i] -= h
        out[i] = (f(xp.reshape(x.shape)).sum() - f(xm.reshape(x.shape)).sum()) / (2 * h)
    return out


def check_fd(grad, f, x, rng, atol=2e-5, rtol=1e-3, **kw):
    for i, value in numeric_grad(f, x, rng=rng, **kw).items():
        assert grad.reshape(-1)[i] == pytest.approx(value, rel=rtol, abs=atol), i


# ---------------------------------------------------------------- softmax CE
@pytest.mark.parametrize("n,c", [(1, 1), (5, 3), (33, 37), (4, 1000)])
def test_softmax_xent_int_labels(isa, threads, rng, n, c):
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    labels = rng.integers(0, c, n).astype(np.int32)
    loss, grad = ops.softmax_cross_entropy(x, labels)
    np.testing.assert_allclose(loss, ref_softmax_xent(x, labels), rtol=1e-5, atol=2e-6)
    check_fd(grad, lambda v: ref_softmax_xent(v, labels), x, rng)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_softmax_xent_soft_targets_and_smoothing(isa, threads, rng, ls):
    n, c = 17, 21
    x = (rng.standard_normal((n, c)) * 4).astype(np.float32)
    t = rng.random((n, c))
    t[:8] /= t[:8].sum(1, keepdims=True)  # rows 8.. do not sum to 1: the gradient stays exact
    t = t.astype(np.float32)
    loss, grad = ops.softmax_cross_entropy(x, t, label_smoothing=ls)
    np.testing.assert_allclose(loss, ref_softmax_xent(x, targets=t, ls=ls), rtol=1e-5, atol=2e-6)
    check_fd(grad, lambda v: ref_softmax_xent(v, targets=t, ls=ls), x, rng)
    labels = rng.integers(0, c, n)
    loss, grad = ops.softmax_cross_entropy(x, labels, label_smoothing=ls)
    one_hot = np.eye(c, dtype=np.float32)[labels]
    loss2, grad2 = ops.softmax_cross_entropy(x, one_hot, label_smoothing=ls)
    np.testing.assert_allclose(loss, loss2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, grad2, atol=1e-6)
    np.testing.assert_allclose(loss, ref_softmax_xent(x, labels, ls=ls), rtol=1e-5, atol=2e-6)


def test_softmax_xent_huge_logits(isa, rng):
    n, c = 12, 19
    x = (rng.standard_normal((n, c)) * 1e4).astype(np.float32)
    x[0] = 1e4  # all equal: uniform softmax
    x[1, 3] = -1e4
    labels = rng.integers(0, c, n)
    loss, grad = ops.softmax_cross_entropy(x, labels, label_smoothing=0.05)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    ref = ref_softmax_xent(x, labels, ls=0.05)
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-3)
    p = np.exp(x - x.max(1, keepdims=True).astype(np.float64))
    p /= p.sum(1, keepdims=True)
    t = np.eye(c)[labels] * 0.95 + 0.05 / c
    np.testing.assert_allclose(grad, p - t, atol=1e-6)


def test_softmax_xent_spatial_ignore_weights_scale(isa, threads, rng):
    n, h, w, c = 3, 4, 5, 7
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    labels = rng.integers(0, c, (n, h, w))
    labels[0, 0, :3] = -100
    sw = rng.random(n).astype(np.float32)
    loss, grad = ops.softmax_cross_entropy(x, labels, sample_weight=sw, grad_scale=0.25, ignore_index=-100)
    ref = lambda v: ref_softmax_xent(v, labels, ignore=-100, sw=sw)
    np.testing.assert_allclose(loss, ref(x), rtol=1e-5, atol=1e-6)
    check_fd(grad / 0.25, ref, x, rng)
    assert np.all(grad[0, 0, :3] == 0)


def test_softmax_xent_grad_only_and_loss_only(rng):
    x = rng.standard_normal((6, 9)).astype(np.float32)
    labels = rng.integers(0, 9, 6)
    loss, grad = ops.softmax_cross_entropy(x, labels)
    loss2, none = ops.softmax_cross_entropy(x, labels, need_grad=False)
    assert none is None
    np.testing.assert_array_equal(loss, loss2)
    # int64, int32, integral floats and a trailing axis of 1 are all class indices
    for lab in (labels.astype(np.int64), labels.astype(np.int32), labels.astype(np.float64), labels[:, None]):
        np.testing.assert_array_equal(ops.softmax_cross_entropy(x, lab)[0], loss)


def test_softmax_xent_threads_deterministic(rng):
    x = rng.standard_normal((96, 1031)).astype(np.float32)
    labels = rng.integers(0, 1031, 96)
    previous = cnnc.get_num_threads()
    try:
        cnnc.set_num_threads(1)
        one = ops.softmax_cross_entropy(x, labels)
        cnnc.set_num_threads(2)
        two = ops.softmax_cross_entropy(x, labels)
    finally:
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_softmax_xent_bad_input(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="out of range"):
        ops.softmax_cross_entropy(x, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match="out of range"):
        ops.softmax_cross_entropy(x, np.array([0, -1, 3, 2], np.int32))
    with pytest.raises(ValueError, match="labels"):
        ops.softmax_cross_entropy(x, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="labels"):
        ops.softmax_cross_entropy(x, np.zeros((4, 6), np.float32))
    with pytest.raises(ValueError, match="integer"):
        ops.softmax_cross_entropy(x, np.array([0.5, 1, 2, 3]))
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.softmax_cross_entropy(x, np.arange(4), label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.softmax_cross_entropy(x, np.arange(4), label_smoothing=float("nan"))
    with pytest.raises(ValueError, match="sample_weight"):
        ops.softmax_cross_entropy(x, np.arange(4), sample_weight=np.ones(3))
    with pytest.raises(ValueError):
        ops.softmax_cross_entropy(x[0], np.arange(1))
    with pytest.raises(TypeError):
        ops.softmax_cross_entropy(x, np.array(["a", "b", "c", "d"]))


# ---------------------------------------------------------------- probabilities
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_categorical_cross_entropy(isa, threads, rng, ls):
    n, c = 9, 13
    p = rng.random((n, c)).astype(np.float32) + 0.05
    p[0, 2] = 1e-12  # below the clip after normalization: zero gradient there
    t = np.eye(c, dtype=np.float32)[rng.integers(0, c, n)]
    sw = rng.random(n).astype(np.float32)
    loss, grad = ops.categorical_cross_entropy(p, t, label_smoothing=ls, sample_weight=sw)
    ref = lambda v: ref_categorical(v, targets=t, ls=ls, sw=sw)
    np.testing.assert_allclose(loss, ref(p), rtol=1e-5, atol=1e-6)
    check_fd(grad, ref, p, rng, h=1e-7, rtol=2e-3)
    labels = t.argmax(1)
    loss2, grad2 = ops.categorical_cross_entropy(p, labels, label_smoothing=ls, sample_weight=sw)
    np.testing.assert_allclose(loss2, loss, rtol=1e-5)
    np.testing.assert_allclose(grad2, grad, rtol=1e-4, atol=1e-6)
    labels[1] = -1
    loss3, grad3 = ops.categorical_cross_entropy(p, labels, label_smoothing=ls, sample_weight=sw, ignore_index=-1)
    assert loss3[1] == 0 and np.all(grad3[1] == 0)
    np.testing.assert_array_equal(np.delete(loss3, 1), np.delete(loss2, 1))
    with pytest.raises(ValueError, match="out of range"):
        ops.categorical_cross_entropy(p, labels)


def test_categorical_cross_entropy_clip_and_keras_example(isa):
    # the values of Keras's documentation example of CategoricalCrossentropy
    loss, _ = ops.categorical_cross_entropy(np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]]),
                                            np.array([[0, 1, 0], [0, 0, 1]]))
    np.testing.assert_allclose(loss, [0.051293, 2.302585], rtol=1e-5)


@pytest.mark.parametrize("shape", [(7,), (7, 1), (5, 3, 11)])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_sigmoid_cross_entropy(isa, threads, rng, shape, ls):
    x = (rng.standard_normal(shape) * 6).astype(np.float32)
    z = rng.random(shape).astype(np.float32)
    sw = rng.random(shape[0]).astype(np.float32)
    loss, grad = ops.sigmoid_cross_entropy(x, z, label_smoothing=ls, sample_weight=sw, grad_scale=2.0)
    ref = lambda v: ref_sigmoid_xent(v, z, ls, sw)
    np.testing.assert_allclose(loss, ref(x), rtol=1e-5, atol=1e-6)
    check_fd(grad / 2.0, ref, x, rng)


def test_sigmoid_cross_entropy_huge(isa, rng):
    x = np.array([[1e4, -1e4, 88.0, -88.0, 0.0, 30.0, -30.0, 1e-3]], np.float32)
    z = np.array([[1, 0, 1, 0, 0.5, 0, 1, 1]], np.float32)
    loss, grad = ops.sigmoid_cross_entropy(x.reshape(8, 1), z.reshape(8, 1))
    np.testing.assert_allclose(loss, ref_sigmoid_xent(x.reshape(8, 1), z.reshape(8, 1)), rtol=1e-5, atol=1e-30)
    s = 0.5 * (1 + np.tanh(x.astype(np.float64) / 2))  # sigmoid without overflow
    np.testing.assert_allclose(grad.reshape(-1), (s - z).reshape(-1), atol=1e-7)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_binary_cross_entropy(isa, threads, rng, ls):
    shape = (6, 19)
    p = rng.random(shape).astype(np.float32)
    p[0, :3] = [0.0, 1.0, 1e-9]  # clipped: zero gradient
    z = (rng.random(shape) > 0.5).astype(np.float32)
    loss, grad = ops.binary_cross_entropy(p, z, label_smoothing=ls)
    ref = lambda v: ref_binary(v, z, ls)
    np.testing.assert_allclose(loss, ref(p), rtol=1e-5, atol=1e-6)
    assert np.all(grad[0, :3] == 0)
    q = p.copy()
    q[0, :3] = 0.5  # finite differences away from the clip's kinks
    check_fd(ops.binary_cross_entropy(q, z, label_smoothing=ls)[1], lambda v: ref_binary(v, z, ls), q, rng,
             h=1e-7, rtol=2e-3)


@pytest.mark.parametrize("shape", [(1, 1), (5,), (4, 3, 7), (3, 20000)])
def test_mse_mae(isa, threads, rng, shape):
    p = rng.standard_normal(shape).astype(np.float32)
    t = rng.standard_normal(shape).astype(np.float32)
    t.reshape(-1)[0] = p.reshape(-1)[0]  # MAE's sign(0) = 0
    sw = rng.random(shape[0]).astype(np.float32)
    loss, grad = ops.mean_squared_error(p, t, sample_weight=sw)
    np.testing.assert_allclose(loss, ref_mse(p, t, sw), rtol=1e-5, atol=1e-7)
    d = p.size // shape[0]
    np.testing.assert_allclose(grad, (2 * (p.astype(np.float64) - t) / d * sw.reshape((-1,) + (1,) * (p.ndim - 1))),
                               rtol=1e-6, atol=1e-9)
    loss, grad = ops.mean_absolute_error(p, t, grad_scale=0.5)
    np.testing.assert_allclose(loss, ref_mae(p, t), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad, 0.5 * np.sign(p - t) / d, rtol=1e-6)
    assert grad.reshape(-1)[0] == 0


def test_elementwise_bad_input(rng):
    p = rng.random((4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="target"):
        ops.mean_squared_error(p, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="epsilon"):
        ops.binary_cross_entropy(p, p, epsilon=0.7)
    with pytest.raises(ValueError, match="epsilon"):
        ops.categorical_cross_entropy(p, p, epsilon=-1.0)
    with pytest.raises(ValueError):
        ops.sigmoid_cross_entropy(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="grad_scale"):
        ops.mean_absolute_error(p, p, grad_scale=float("inf"))
    # (N,) targets against (N, 1) predictions are accepted, as Keras does
    np.testing.assert_array_equal(ops.mean_squared_error(p[:, :1], p[:, 0])[0], ops.mean_squared_error(p[:, :1], p[:, :1])[0])


# ---------------------------------------------------------------- PyTorch
def test_losses_match_torch(isa, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, c = 32, 10
    x = (rng.standard_normal((n, c)) * 5).astype(np.float32)
    labels = rng.integers(0, c, n)
    labels[3] = -100
    for ls in (0.0, 0.1):
        xt = torch.tensor(x, requires_grad=True)
        lt = F.cross_entropy(xt, torch.tensor(labels), reduction="none", label_smoothing=ls)
        lt.sum().backward()
        loss, grad = ops.softmax_cross_entropy(x, labels, label_smoothing=ls, ignore_index=-100)
        np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad, xt.grad.numpy(), atol=1e-6)
    probs = rng.dirichlet(np.ones(c), n).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(probs), reduction="none", label_smoothing=0.2)
    lt.sum().backward()
    loss, grad = ops.softmax_cross_entropy(x, probs, label_smoothing=0.2)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), atol=1e-6)
    # segmentation layout: NHWC here, NCHW there; per-sample mean over pixels
    xs = rng.standard_normal((2, 3, 4, c)).astype(np.float32)
    ys = rng.integers(0, c, (2, 3, 4))
    xt = torch.tensor(xs.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(ys), reduction="none").mean((1, 2))
    lt.sum().backward()
    loss, grad = ops.softmax_cross_entropy(xs, ys)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-7)
    z = rng.random((n, 3)).astype(np.float32)
    xt = torch.tensor(x[:, :3], requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(xt, torch.tensor(z), reduction="none").mean(1)
    lt.sum().backward()
    loss, grad = ops.sigmoid_cross_entropy(x[:, :3], z)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), atol=1e-7)
    p = rng.random((n, 3)).astype(np.float32) * 0.98 + 0.01
    pt = torch.tensor(p, requires_grad=True)
    lt = F.binary_cross_entropy(pt, torch.tensor(z), reduction="none").mean(1)
    lt.sum().backward()
    loss, grad = ops.binary_cross_entropy(p, z)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-4, atol=1e-6)
    for ours, theirs in ((ops.mean_squared_error, F.mse_loss), (ops.mean_absolute_error, F.l1_loss)):
        pt = torch.tensor(p, requires_grad=True)
        lt = theirs(pt, torch.tensor(z), reduction="none").mean(1)
        lt.sum().backward()
        loss, grad = ours(p, z)
        np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-6)
