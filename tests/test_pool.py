"""Pooling against naive NumPy loops (float64), finite differences and PyTorch."""
import math

import numpy as np
import pytest

import cnnc

ops = cnnc.ops


# ---- reference ----------------------------------------------------------------

def same_pads(size, pool, stride):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + pool - size, 0)
    return total // 2, total - total // 2


def resolve_pads(shape, pool, strides, padding):
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return tuple(same_pads(s, p, t) for s, p, t in zip(shape[1:3], pool, strides))
    return padding


def windows(shape, pool, strides, pads):
    """Yield (oh, ow, rows slice, cols slice) of every output position."""
    _, h, w, _ = shape
    (pt, pb), (pl, pr) = pads
    oh = (h + pt + pb - pool[0]) // strides[0] + 1
    ow = (w + pl + pr - pool[1]) // strides[1] + 1
    for i in range(oh):
        r0 = i * strides[0] - pt
        for j in range(ow):
            c0 = j * strides[1] - pl
            yield i, j, slice(max(r0, 0), min(r0 + pool[0], h)), slice(max(c0, 0), min(c0 + pool[1], w))


def out_hw(shape, pool, strides, pads):
    (pt, pb), (pl, pr) = pads
    return ((shape[1] + pt + pb - pool[0]) // strides[0] + 1, (shape[2] + pl + pr - pool[1]) // strides[1] + 1)


def ref_pool(x, pool, strides, pads, mode):
    x = x.astype(np.float64)
    oh, ow = out_hw(x.shape, pool, strides, pads)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i, j, rs, cs in windows(x.shape, pool, strides, pads):
        win = x[:, rs, cs, :]
        y[:, i, j, :] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return y


def ref_pool_backward(x, dy, pool, strides, pads, mode):
    dx = np.zeros(x.shape)
    n, c = x.shape[0], x.shape[3]
    for i, j, rs, cs in windows(x.shape, pool, strides, pads):
        win = x[:, rs, cs, :]
        kh, kw = win.shape[1:3]
        if mode == "max":
            first = win.reshape(n, kh * kw, c).argmax(axis=1)  # the first maximum, row-major
            r = rs.start + first // kw
            q = cs.start + first % kw
            nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            np.add.at(dx, (nn, r, q, cc), dy[:, i, j, :])
        else:
            dx[:, rs, cs, :] += dy[:, i, j, :][:, None, None, :] / (kh * kw)
    return dx


def distinct(rng, shape):
    """Values with no ties and gaps far above finite-difference steps."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 3.0).astype(np.float32)


# (N, H, W, C), pool, strides, padding
CONFIGS = [
    ((2, 6, 6, 5), (2, 2), None, "valid"),
    ((1, 7, 9, 17), (3, 3), (2, 2), "valid"),       # overlapping windows, odd sizes, tails
    ((2, 7, 8, 64), (3, 3), (2, 2), "same"),        # ResNet stem style, odd/even sizes
    ((1, 6, 5, 3), (2, 3), (1, 2), "same"),
    ((2, 5, 5, 70), (3, 2), (3, 1), "same"),        # wider tiles + tail, stride > pool rows
    ((1, 4, 7, 33), (1, 1), (2, 3), "valid"),       # pool 1: sub-sampling
    ((1, 5, 6, 8), (3, 3), (1, 1), ((1, 1), (2, 0))),  # explicit asymmetric padding
    ((3, 9, 4, 2), (4, 2), (2, 2), "same"),
    ((1, 9, 10, 20), (2, 2), (3, 4), "same"),       # gaps between windows in both axes
]


@pytest.mark.parametrize("shape,pool,strides,padding", CONFIGS)
def test_pool2d_matches_reference(isa, threads, rng, shape, pool, strides, padding):
    x = rng.standard_normal(shape).astype(np.float32)
    steps = pool if strides is None else strides
    pads = resolve_pads(shape, pool, steps, padding)
    for mode, fwd in (("max", ops.max_pool2d), ("avg", ops.avg_pool2d)):
        y = fwd(x, pool, strides, padding)
        ref = ref_pool(x, pool, steps, pads, mode)
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(ref.shape).astype(np.float32)
    np.testing.assert_allclose(ops.max_pool2d_backward(x, dy, pool, strides, padding),
                               ref_pool_backward(x, dy, pool, steps, pads, "max"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.avg_pool2d_backward(dy, shape, pool, strides, padding),
                               ref_pool_backward(x, dy, pool, steps, pads, "avg"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_gradient_finite_differences(rng, mode):
    shape, pool, strides, padding = (2, 5, 6, 3), (3, 2), (2, 1), "same"
    pads = resolve_pads(shape, pool, strides, padding)
    x = distinct(rng, shape)
    dy = rng.standard_normal(ref_pool(x, pool, strides, pads, mode).shape)
    objective = lambda v: float((ref_pool(v, pool, strides, pads, mode) * dy).sum())
    numeric = np.zeros(shape)
    eps = 1e-4
    for idx in np.ndindex(*shape):
        plus, minus = x.astype(np.float64), x.astype(np.float64)
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (objective(plus) - objective(minus)) / (2 * eps)
    if mode == "max":
        got = ops.max_pool2d_backward(x, dy.astype(np.float32), pool, strides, padding)
    else:
        got = ops.avg_pool2d_backward(dy.astype(np.float32), shape, pool, strides, padding)
    np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-5)


def test_max_pool_ties_and_nan(isa):
    x = np.zeros((1, 2, 2, 3), np.float32)  # all tied: the top-left element gets it
    dx = ops.max_pool2d_backward(x, np.ones((1, 1, 1, 3), np.float32), 2)
    assert dx[0, 0, 0].tolist() == [1, 1, 1] and dx.sum() == 3
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    x[0, 1, 0, 1] = np.nan
    y = ops.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 1]) and y[0, 0, 0, 0] == 9 and y[0, 0, 0, 2] == 11
    dx = ops.max_pool2d_backward(x, np.ones((1, 1, 1, 3), np.float32), 2)
    assert dx[0, 1, 0, 1] == 1 and dx[0, 1, 1, 0] == 1 and dx.sum() == 3
    g = ops.global_max_pool2d(x)
    assert np.isnan(g[0, 1]) and g[0, 0] == 9


def test_pool1d(isa, threads, rng):
    x = rng.standard_normal((2, 11, 19)).astype(np.float32)
    for pool, strides, padding in ((2, None, "valid"), (3, 2, "same"), (4, 1, "same"), (3, 1, (1, 2))):
        pads = ((0, 0), same_pads(11, pool, strides or pool) if padding == "same" else
                (0, 0) if padding == "valid" else padding)
        steps = (1, strides or pool)
        for mode, fwd in (("max", ops.max_pool1d), ("avg", ops.avg_pool1d)):
            y = fwd(x, pool, strides, padding)
            ref = ref_pool(x[:, None], (1, pool), steps, pads, mode)[:, 0]
            np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        np.testing.assert_allclose(ops.max_pool1d_backward(x, dy, pool, strides, padding),
                                   ref_pool_backward(x[:, None], dy[:, None], (1, pool), steps, pads, "max")[:, 0],
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ops.avg_pool1d_backward(dy, x.shape, pool, strides, padding),
                                   ref_pool_backward(x[:, None], dy[:, None], (1, pool), steps, pads, "avg")[:, 0],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 7, 7, 70), (1, 3, 5, 1), (3, 1, 1, 2100)])
def test_global_pooling(isa, threads, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ops.global_avg_pool2d(x), x.astype(np.float64).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ops.global_max_pool2d(x), x.max(axis=(1, 2)))
    dy = rng.standard_normal((shape[0], shape[3])).astype(np.float32)
    expected = np.broadcast_to(dy[:, None, None, :] / (shape[1] * shape[2]), shape)
    np.testing.assert_allclose(ops.global_avg_pool2d_backward(dy, shape), expected, rtol=1e-6)
    flat = x.reshape(shape[0], -1, shape[3])
    first = flat.argmax(axis=1)
    ref = np.zeros_like(flat)
    for n in range(shape[0]):
        ref[n, first[n], np.arange(shape[3])] = dy[n]
    np.testing.assert_array_equal(ops.global_max_pool2d_backward(x, dy), ref.reshape(shape))
    x1 = x.reshape(shape[0], -1, shape[3])
    np.testing.assert_array_equal(ops.global_max_pool1d(x1), x1.max(axis=1))
    np.testing.assert_allclose(ops.global_avg_pool1d(x1), x1.astype(np.float64).mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ops.global_max_pool1d_backward(x1, dy), ref)
    np.testing.assert_allclose(ops.global_avg_pool1d_backward(dy, x1.shape), expected.reshape(x1.shape), rtol=1e-6)


def test_against_torch(rng, threads):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 13, 12, 24)).astype(np.float32)
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1), (5, 3, 2)):
        t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        t.requires_grad_(True)
        padding = "valid" if p == 0 else ((p, p), (p, p))
        for mode in ("max", "avg"):
            t.grad = None
            if mode == "max":
                ty = F.max_pool2d(t, k, s, p)
                y = ops.max_pool2d(x, k, s, padding)
            else:
                ty = F.avg_pool2d(t, k, s, p, count_include_pad=False)
                y = ops.avg_pool2d(x, k, s, padding)
            np.testing.assert_allclose(y, ty.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-6, atol=1e-6)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            ty.backward(torch.from_numpy(dy).permute(0, 3, 1, 2))
            if mode == "max":
                dx = ops.max_pool2d_backward(x, dy, k, s, padding)
            else:
                dx = ops.avg_pool2d_backward(dy, x.shape, k, s, padding)
            np.testing.assert_allclose(dx, t.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_argument_errors():
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match="pool_size"):
        ops.max_pool2d(x, (5, 2))
    with pytest.raises(ValueError, match="pool_size"):
        ops.avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match="pool_size"):
        ops.max_pool2d(x, (2, -1))
    with pytest.raises(ValueError, match="strides"):
        ops.max_pool2d(x, 2, (0, 1))
    with pytest.raises(ValueError, match="padding"):
        ops.max_pool2d(x, 2, padding="full")
    with pytest.raises(ValueError, match="padding"):
        ops.max_pool2d(x, 2, padding=((2, 0), (0, 0)))
    with pytest.raises(ValueError, match="x must be 4-D"):
        ops.max_pool2d(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="dy"):
        ops.max_pool2d_backward(x, np.zeros((1, 3, 3, 2), np.float32), 2)
    with pytest.raises(ValueError, match="input_shape"):
        ops.avg_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), (1, 4, 4), 2)
    with pytest.raises(ValueError, match="pool_size"):
        ops.max_pool1d(np.zeros((1, 3, 2), np.float32), 4)
    with pytest.raises(ValueError, match="dy"):
        ops.global_max_pool2d_backward(x, np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError):
        ops.max_pool2d(x, "2")
    # Same padding makes a pool larger than the input legal, as in Keras.
    assert ops.max_pool2d(x, (5, 5), padding="same").shape == (1, 1, 1, 2)
