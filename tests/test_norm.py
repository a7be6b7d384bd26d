"""Batch normalization against a float64 NumPy model, finite differences and PyTorch."""
import numpy as np
import pytest

import cnnc
from cnnc import _kernels

ops = cnnc.ops


def ref_train(x, gamma, beta, eps):
    x = x.astype(np.float64).reshape(-1, x.shape[-1])
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    y = (x - mean) / np.sqrt(var + eps) * gamma + beta
    return y, mean, var


def ref_backward(x, dy, gamma, eps):
    x = x.astype(np.float64).reshape(-1, x.shape[-1])
    dy = dy.astype(np.float64).reshape(-1, x.shape[-1])
    m = x.shape[0]
    mean = x.mean(axis=0)
    istd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=0) + eps)
    xhat = (x - mean) * istd
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * istd * (dy - dbeta / m - xhat * dgamma / m)
    return dx, dgamma, dbeta


SHAPES = [(2, 5, 7, 3), (1, 3, 3, 64), (4, 6, 6, 70), (37, 19), (1, 1, 1, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_train_forward_and_moving_averages(isa, threads, rng, shape):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    c = shape[-1]
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    mm0 = rng.standard_normal(c).astype(np.float32)
    mv0 = rng.uniform(0.5, 2, c).astype(np.float32)
    for unbiased in (False, True):
        mm, mv = mm0.copy(), mv0.copy()
        y, mean, inv_std = ops.batch_norm_train(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3,
                                                unbiased_moving_var=unbiased)
        ref_y, ref_mean, ref_var = ref_train(x, gamma, beta, 1e-3)
        np.testing.assert_allclose(y.reshape(-1, c), ref_y, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(inv_std, 1 / np.sqrt(ref_var + 1e-3), rtol=1e-5)
        count = x.size // c
        folded = ref_var * count / (count - 1) if unbiased and count > 1 else ref_var
        np.testing.assert_allclose(mm, mm0 * 0.9 + ref_mean * 0.1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mv, mv0 * 0.9 + folded * 0.1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_backward(isa, threads, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    c = shape[-1]
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    _, mean, inv_std = ops.batch_norm_train(x, gamma, None, None, None, epsilon=1e-3)
    dx, dgamma, dbeta = ops.batch_norm_backward(x, dy, gamma, mean, inv_std)
    ref_dx, ref_dgamma, ref_dbeta = ref_backward(x, dy, gamma, 1e-3)
    scale = np.sqrt(x.size // c)
    np.testing.assert_allclose(dx.reshape(-1, c), ref_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 4, 4, 64), (37, 19)])
def test_fused_relu(isa, threads, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    c = shape[-1]
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    # A channel of scale 0 and shift -0 gives -0 where x is below its mean
    # (which the ReLU kernel keeps), one of NaN scale gives NaN (kept too):
    # the fused pass has the bits of the separate ReLU, even there.
    gamma[0], beta[0] = 0.0, -0.0
    if c > 2:
        gamma[1] = np.nan
    y, mean, inv_std = ops.batch_norm_train(x, gamma, beta, None, None)
    yr, mean_r, inv_std_r = ops.batch_norm_train(x, gamma, beta, None, None, activation="relu")
    assert yr.tobytes() == _kernels.relu(y).tobytes()
    assert np.signbit(yr[..., 0]).any()
    assert mean_r.tobytes() == mean.tobytes() and inv_std_r.tobytes() == inv_std.tobytes()
    # The backward masks dy inside its passes, with the bits of the ReLU's
    # backward followed by batch norm's.
    gamma[1:2] = 0.7
    y, mean, inv_std = ops.batch_norm_train(x, gamma, beta, None, None)
    yr = _kernels.relu(y)
    masked = _kernels.relu_backward(yr, dy)
    expected = ops.batch_norm_backward(x, masked, gamma, mean, inv_std)
    got = ops.batch_norm_backward(x, dy, gamma, mean, inv_std, relu_output=yr)
    for a, b in zip(got, expected):
        assert a.tobytes() == b.tobytes()
    mm, mv = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    assert (ops.batch_norm_inference(x, gamma, beta, mm, mv, activation="relu").tobytes()
            == _kernels.relu(ops.batch_norm_inference(x, gamma, beta, mm, mv)).tobytes())


def test_gradient_finite_differences(rng):
    shape, eps = (3, 2, 2, 4), 1e-3
    x = rng.standard_normal(shape)
    gamma = rng.uniform(0.5, 1.5, 4)
    beta = rng.standard_normal(4)
    dy = rng.standard_normal(shape)

    def objective(xx, gg, bb):
        return float((ref_train(xx, gg, bb, eps)[0] * dy.reshape(-1, 4)).sum())

    h = 1e-6
    num_dx = np.zeros(shape)
    for idx in np.ndindex(*shape):
        e = np.zeros(shape)
        e[idx] = h
        num_dx[idx] = (objective(x + e, gamma, beta) - objective(x - e, gamma, beta)) / (2 * h)
    num_dg = np.array([(objective(x, gamma + h * e, beta) - objective(x, gamma - h * e, beta)) / (2 * h)
                       for e in np.eye(4)])
    num_db = np.array([(objective(x, gamma, beta + h * e) - objective(x, gamma, beta - h * e)) / (2 * h)
                       for e in np.eye(4)])
    x32 = x.astype(np.float32)
    _, mean, inv_std = ops.batch_norm_train(x32, gamma, beta, None, None, epsilon=eps)
    dx, dg, db = ops.batch_norm_backward(x32, dy.astype(np.float32), gamma, mean, inv_std)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dg, num_dg, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, num_db, rtol=1e-4, atol=1e-4)


def test_large_mean_is_stable(isa):
    rng = np.random.default_rng(3)
    x = (1000.0 + rng.standard_normal((256, 8, 8, 16)) * 0.01).astype(np.float32)
    _, mean, inv_std = ops.batch_norm_train(x, None, None, None, None, epsilon=1e-8)
    ref_var = x.astype(np.float64).reshape(-1, 16).var(axis=0)
    np.testing.assert_allclose(1 / inv_std.astype(np.float64) ** 2, ref_var, rtol=1e-3)


def test_results_independent_of_thread_count(rng):
    x = rng.standard_normal((64, 12, 12, 32)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma = np.ones(32, np.float32)
    outputs = []
    for t in (1, 2):
        previous = cnnc.get_num_threads()
        cnnc.set_num_threads(t)
        y, mean, inv_std = ops.batch_norm_train(x, gamma, None, None, None)
        outputs.append((y, mean, inv_std) + ops.batch_norm_backward(x, dy, gamma, mean, inv_std))
        cnnc.set_num_threads(previous)
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)


def test_float64_and_strided_running_averages_are_updated(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    mm = np.zeros(3)  # float64
    mv = np.ones(6, np.float32)[::2]  # not contiguous
    _, mean, _ = ops.batch_norm_train(x, None, None, mm, mv, momentum=0.5)
    np.testing.assert_allclose(mm, 0.5 * x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mv, 0.5 + 0.5 * x.astype(np.float64).var(axis=0), rtol=1e-6)


def test_inference(isa, threads, rng):
    x = rng.standard_normal((3, 5, 5, 19)).astype(np.float32)
    gamma, beta = rng.standard_normal(19).astype(np.float32), rng.standard_normal(19).astype(np.float32)
    mm, mv = rng.standard_normal(19).astype(np.float32), rng.uniform(0.1, 3, 19).astype(np.float32)
    y = ops.batch_norm_inference(x, gamma, beta, mm, mv, epsilon=1e-3)
    ref = (x.astype(np.float64) - mm) / np.sqrt(mv.astype(np.float64) + 1e-3) * gamma + beta
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_against_torch(rng, threads):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 9, 9, 24)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 24).astype(np.float32)
    beta = rng.standard_normal(24).astype(np.float32)
    mm, mv = np.zeros(24, np.float32), np.ones(24, np.float32)
    y, mean, inv_std = ops.batch_norm_train(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-5,
                                            unbiased_moving_var=True)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)
    tg, tb = torch.from_numpy(gamma).requires_grad_(True), torch.from_numpy(beta).requires_grad_(True)
    rm, rv = torch.zeros(24), torch.ones(24)
    ty = torch.nn.functional.batch_norm(tx, rm, rv, tg, tb, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y, ty.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mm, rm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mv, rv.numpy(), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    ty.backward(torch.from_numpy(dy).permute(0, 3, 1, 2))
    dx, dg, db = ops.batch_norm_backward(x, dy, gamma, mean, inv_std)
    np.testing.assert_allclose(dx, tx.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dg, tg.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_argument_errors():
    x = np.ones((2, 3, 4), np.float32)
    v = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="gamma"):
        ops.batch_norm_train(x, np.ones(3, np.float32), v, v.copy(), v.copy())
    with pytest.raises(ValueError, match="moving_var"):
        ops.batch_norm_train(x, v, v, v.copy(), np.ones(5, np.float32))
    with pytest.raises(TypeError, match="moving_mean"):
        ops.batch_norm_train(x, v, v, [0.0] * 4, v.copy())  # a list cannot be updated in place
    with pytest.raises(ValueError, match="read-only"):
        frozen = v.copy()
        frozen.flags.writeable = False
        ops.batch_norm_train(x, v, v, frozen, v.copy())
    with pytest.raises(ValueError, match="momentum"):
        ops.batch_norm_train(x, v, v, v.copy(), v.copy(), momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        ops.batch_norm_train(x, v, v, v.copy(), v.copy(), epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        ops.batch_norm_inference(x, v, v, v, v, epsilon=-1.0)
    with pytest.raises(ValueError, match="dy"):
        ops.batch_norm_backward(x, np.ones((2, 3, 5), np.float32), v, v, v)
    with pytest.raises(ValueError, match="activation"):
        ops.batch_norm_train(x, v, v, None, None, activation="tanh")
    with pytest.raises(ValueError, match="relu_output"):
        ops.batch_norm_backward(x, x, v, v, v, relu_output=np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="inv_std"):
        ops.batch_norm_backward(x, x, v, v, np.ones(2, np.float32))
