"""Reverse-mode automatic differentiation: random compositions of cnnc.ops
against float64 finite differences, and the convolution, pooling and
activation ops against torch.autograd."""
import numpy as np
import pytest

import cnnc
from cnnc import ops
from cnnc.autodiff import Tensor, gradients, trace


def traced_gradients(fn, arrays, seed):
    """d(sum(seed * fn(*arrays))) / d(arrays), through the tape."""
    leaves = [Tensor(np.asarray(a, np.float32), requires_grad=True) for a in arrays]
    with trace(True, True):
        out = fn(*leaves)
    assert isinstance(out, Tensor)
    grads, _ = gradients([out], [seed.astype(np.float32)], leaves)
    return out.value, [np.zeros(a.shape) if g is None else g for a, g in zip(arrays, grads)]


def finite_differences(fn64, arrays, seed, eps=1e-6):
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros(a.shape)
        flat = g.reshape(-1)
        for j in range(a.size):
            plus = [b.copy() for b in arrays]
            minus = [b.copy() for b in arrays]
            plus[i].reshape(-1)[j] += eps
            minus[i].reshape(-1)[j] -= eps
            flat[j] = (np.sum(seed * fn64(*plus)) - np.sum(seed * fn64(*minus))) / (2 * eps)
        grads.append(g)
    return grads


# Each step: (cnnc form on traced tensors, float64 NumPy form).
UNARY = [
    (ops.exp, np.exp), (ops.tanh, np.tanh), (ops.square, np.square),
    (ops.sigmoid, lambda v: 1 / (1 + np.exp(-v))),
    (lambda t: ops.sqrt(ops.square(t) + 1.0), lambda v: np.sqrt(v * v + 1)),
    (lambda t: ops.log(ops.abs(t) + 0.5), lambda v: np.log(np.abs(v) + 0.5)),
    (lambda t: -t * 0.7 + 0.1, lambda v: -v * 0.7 + 0.1),
    (lambda t: 1.5 / (ops.square(t) + 1), lambda v: 1.5 / (v * v + 1)),
    (lambda t: (ops.abs(t) + 0.5) ** 1.5, lambda v: (np.abs(v) + 0.5) ** 1.5),
    (ops.softplus, lambda v: np.log1p(np.exp(v))),
    (lambda t: ops.softmax(t, axis=-1),
     lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(v - v.max(-1, keepdims=True)).sum(
         -1, keepdims=True)),
    (lambda t: ops.maximum(t, 0.1 * t), lambda v: np.maximum(v, 0.1 * v)),
    (lambda t: ops.where(t > 0, t * 2, ops.exp(t)), lambda v: np.where(v > 0, v * 2, np.exp(v))),
    (lambda t: ops.transpose(ops.cos(ops.transpose(t, (1, 0, 2))), (1, 0, 2)), np.cos),
    (lambda t: ops.reshape(ops.transpose(t, (1, 0, 2)), t.shape),
     lambda v: np.transpose(v, (1, 0, 2)).reshape(v.shape)),
    (lambda t: ops.concatenate([t[:, :1], t[:, 1:] * 3.0], axis=1),
     lambda v: np.concatenate([v[:, :1], v[:, 1:] * 3.0], axis=1)),
    (lambda t: t - ops.mean(t, axis=-1, keepdims=True), lambda v: v - v.mean(-1, keepdims=True)),
    (lambda t: t * ops.max(t, axis=1, keepdims=True), lambda v: v * v.max(1, keepdims=True)),
    (lambda t: t / (ops.sum(ops.square(t), axis=(1, 2), keepdims=True) + 1),
     lambda v: v / ((v * v).sum(axis=(1, 2), keepdims=True) + 1)),
    (lambda t: ops.matmul(t, ops.matmul(ops.transpose(t, (0, 2, 1)), t)) * 0.1,
     lambda v: np.matmul(v, np.matmul(np.transpose(v, (0, 2, 1)), v)) * 0.1),
    (lambda t: ops.flip(t, 1) + t[:, ::-1] * 0.5, lambda v: np.flip(v, 1) + v[:, ::-1] * 0.5),
]
BINARY = [
    (lambda a, b: a + b, np.add), (lambda a, b: a * b, np.multiply),
    (lambda a, b: a - 2.0 * b, lambda a, b: a - 2.0 * b),
    (lambda a, b: a / (ops.abs(b) + 1.0), lambda a, b: a / (np.abs(b) + 1.0)),
    (ops.minimum, np.minimum),
]


@pytest.mark.parametrize("seed", range(12))
def test_random_compositions_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    shape = (2, 3, 4)
    a = rng.uniform(-1, 1, shape)
    # A broadcast partner: some axes of size 1.
    b_shape = tuple(n if rng.random() < 0.5 else 1 for n in shape)
    b = rng.uniform(-1, 1, b_shape)
    steps = []
    for _ in range(4):
        if rng.random() < 0.3:
            steps.append(("binary", BINARY[rng.integers(len(BINARY))]))
        else:
            steps.append(("unary", UNARY[rng.integers(len(UNARY))]))

    def run(x, y, which):
        for kind, pair in steps:
            fn = pair[which]
            x = fn(x, y) if kind == "binary" else fn(x)
        return x

    fd_seed = rng.standard_normal(shape)
    value, (ga, gb) = traced_gradients(lambda x, y: run(x, y, 0), [a, b], fd_seed)
    ref = run(a, b, 1)
    np.testing.assert_allclose(value, ref, rtol=2e-4, atol=2e-5)
    fa, fb = finite_differences(lambda x, y: run(x, y, 1), [a, b], fd_seed)
    scale = max(np.abs(fa).max(), np.abs(fb).max(), 1.0)
    np.testing.assert_allclose(ga, fa, rtol=2e-3, atol=2e-4 * scale)
    np.testing.assert_allclose(gb, fb, rtol=2e-3, atol=2e-4 * scale)


def test_indexing_reductions_and_stacking_match_finite_differences(rng):
    x = rng.uniform(-1, 1, (3, 5))
    w = rng.uniform(-1, 1, (5, 2))
    idx = np.array([0, 2, 2, 1])

    def ours(x, w):
        h = ops.matmul(x, w)
        picked = ops.take(ops.reshape(x, (-1,)), idx)
        s = ops.stack([ops.sum(h, axis=0), ops.min(h, axis=0)], axis=1)
        return ops.logsumexp(h, axis=-1) + ops.sum(s) + ops.var(x, axis=1) + ops.mean(picked) \
            + ops.clip(x[:, 1], -0.3, 0.3) + ops.squeeze(ops.expand_dims(x[:, 4], 0), 0)

    def ref(x, w):
        h = x @ w
        picked = x.reshape(-1)[idx]
        s = np.stack([h.sum(0), h.min(0)], axis=1)
        m = h.max(-1, keepdims=True)
        lse = np.log(np.exp(h - m).sum(-1)) + m[:, 0]
        return lse + s.sum() + x.var(axis=1) + picked.mean() + np.clip(x[:, 1], -0.3, 0.3) \
            + x[:, 4]

    seed = rng.standard_normal(3)
    value, grads = traced_gradients(ours, [x, w], seed)
    np.testing.assert_allclose(value, ref(x, w), rtol=1e-4, atol=1e-5)
    for g, f in zip(grads, finite_differences(ref, [x, w], seed)):
        np.testing.assert_allclose(g, f, rtol=2e-3, atol=2e-4)


def test_arrays_in_arrays_out_outside_a_trace(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    for y in (ops.add(x, 1.0), ops.exp(x), ops.relu(x), x @ ops.transpose(x),
              ops.concatenate([x, x]), ops.mean(x, axis=0)):
        assert type(y) is np.ndarray
    np.testing.assert_array_equal(ops.concatenate([x, x]), np.concatenate([x, x]))
    np.testing.assert_allclose(ops.matmul(x, x.T), x @ x.T, rtol=1e-6)
    # The C kernels' extra arguments stay available.
    np.testing.assert_allclose(ops.matmul(x, x, trans_b=True), x @ x.T, rtol=1e-6)
    with pytest.raises(TypeError, match="cnnc.ops"):
        np.asarray(Tensor(x))
    # NumPy arrays on the left defer to the traced tensor.
    t = Tensor(x)
    assert isinstance(x * t, Tensor) and isinstance(x + t, Tensor)


def test_weights_route_gradients_only_inside_a_trace(rng):
    layer = cnnc.layers.Dense(2)
    layer.build((None, 3))
    w = layer.kernel
    assert type(w * 2.0) is np.ndarray  # outside: the value
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    with trace(True, True):
        out = ops.sum(ops.matmul(x, w) ** 2)
    _, weight_grads = gradients([out], [np.float32(1)], [])
    weight_grads.store()
    expected = 2 * x.value.T @ (x.value @ w.value)
    # float32 sums: an entry that nearly cancels is judged against the largest
    np.testing.assert_allclose(w.grad, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def _torch():
    return pytest.importorskip("torch")


def _compare_with_torch(ours, theirs, arrays, rng, rtol=1e-4, atol=1e-4):
    torch = _torch()
    value, grads = traced_gradients(ours, arrays, _seed_for(ours, arrays, rng))
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = theirs(*tensors)
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=rtol, atol=atol)
    out.backward(torch.tensor(_last_seed[0], dtype=torch.float64))
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol)


_last_seed = [None]


def _seed_for(fn, arrays, rng):
    with trace(False, False):
        shape = fn(*[Tensor(np.asarray(a, np.float32)) for a in arrays]).shape
    _last_seed[0] = rng.standard_normal(shape)
    return _last_seed[0]


def nchw(t):
    return t.permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1)


def test_convolutions_match_torch(rng):
    torch = _torch()
    F = torch.nn.functional
    x = rng.standard_normal((2, 7, 6, 4))
    w = rng.standard_normal((3, 3, 4, 5)) * 0.3
    # ops.conv (Keras's name), stride 2 "same" after a bias and a gelu.
    _compare_with_torch(
        lambda x, w: ops.gelu(ops.conv(x, w, strides=1, padding="valid") + 0.1),
        lambda x, w: F.gelu(nhwc(F.conv2d(nchw(x), w.permute(3, 2, 0, 1))) + 0.1),
        [x, w], rng)
    # cnnc's conv2d with explicit padding, dilation and groups.
    wg = rng.standard_normal((2, 2, 2, 6)) * 0.3
    b = rng.standard_normal(6)
    _compare_with_torch(
        lambda x, w, b: ops.conv2d(x, w, b, strides=(2, 1), padding=((1, 0), (0, 1)),
                                   dilation=(1, 2), groups=2),
        lambda x, w, b: nhwc(F.conv2d(F.pad(nchw(x), (0, 1, 1, 0)), w.permute(3, 2, 0, 1), b,
                                      stride=(2, 1), dilation=(1, 2), groups=2)),
        [x, wg, b], rng)
    # depthwise (kernel (KH, KW, Cin, M)).
    wd = rng.standard_normal((3, 3, 4, 2)) * 0.3
    _compare_with_torch(
        lambda x, w: ops.depthwise_conv(x, w, padding="valid"),
        lambda x, w: nhwc(F.conv2d(nchw(x), w.reshape(3, 3, 1, 8).permute(3, 2, 0, 1),
                                   groups=4)),
        [x, wd], rng)
    # transposed, Keras layout (KH, KW, Cout, Cin), stride 2.
    wt = rng.standard_normal((3, 3, 3, 4)) * 0.3
    _compare_with_torch(
        lambda x, w: ops.conv_transpose(x, w, strides=2, padding="valid"),
        lambda x, w: nhwc(F.conv_transpose2d(nchw(x), w.permute(3, 2, 0, 1), stride=2)),
        [x, wt], rng)
    # 1-D convolution and transpose.
    x1 = rng.standard_normal((2, 9, 3))
    w1 = rng.standard_normal((3, 3, 4)) * 0.3
    _compare_with_torch(
        lambda x, w: ops.conv(x, w, strides=2),
        lambda x, w: F.conv1d(x.permute(0, 2, 1), w.permute(2, 1, 0), stride=2).permute(0, 2, 1),
        [x1, w1], rng)
    w1t = rng.standard_normal((3, 4, 3)) * 0.3
    _compare_with_torch(
        lambda x, w: ops.conv_transpose(x, w, strides=2),
        lambda x, w: F.conv_transpose1d(x.permute(0, 2, 1), w.permute(2, 1, 0),
                                        stride=2).permute(0, 2, 1),
        [x1, w1t], rng)


def test_pooling_and_activations_match_torch(rng):
    torch = _torch()
    F = torch.nn.functional
    x = rng.standard_normal((2, 8, 6, 3))
    _compare_with_torch(
        lambda x: ops.max_pool(x, 2) * 1.0 + ops.average_pool(x, (2, 2), strides=2),
        lambda x: nhwc(F.max_pool2d(nchw(x), 2) + F.avg_pool2d(nchw(x), 2)), [x], rng)
    _compare_with_torch(
        lambda x: ops.global_avg_pool2d(x) + ops.global_max_pool2d(ops.elu(x)),
        lambda x: nchw(x).mean((2, 3)) + F.elu(nchw(x)).amax((2, 3)), [x], rng)
    x1 = rng.standard_normal((2, 9, 3))
    _compare_with_torch(
        lambda x: ops.max_pool(x, 3, strides=2) + ops.average_pool(x, 3, strides=2),
        lambda x: (F.max_pool1d(x.permute(0, 2, 1), 3, 2) +
                   F.avg_pool1d(x.permute(0, 2, 1), 3, 2)).permute(0, 2, 1), [x1], rng)
    v = rng.standard_normal((4, 5))
    _compare_with_torch(
        lambda v: ops.relu(v) + ops.sigmoid(v) * ops.silu(v) + ops.leaky_relu(v, 0.2)
        + ops.selu(v) + ops.relu6(v * 4) + ops.hard_sigmoid(v * 3) + ops.softsign(v)
        + ops.log_softmax(v, axis=0) + ops.gelu(v, approximate=True) + ops.log_sigmoid(v),
        lambda v: F.relu(v) + torch.sigmoid(v) * F.silu(v) + F.leaky_relu(v, 0.2) + F.selu(v)
        + F.relu6(v * 4) + F.hardsigmoid(v * 3) + F.softsign(v) + F.log_softmax(v, dim=0)
        + F.gelu(v, approximate="tanh") + F.logsigmoid(v), [v], rng, rtol=2e-4, atol=2e-4)


def test_crossentropies_match_torch(rng):
    torch = _torch()
    F = torch.nn.functional
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    _compare_with_torch(
        lambda z: ops.sparse_categorical_crossentropy(labels, z, from_logits=True)
        + ops.categorical_crossentropy(onehot, ops.softmax(z)),
        lambda z: F.cross_entropy(z, torch.tensor(labels), reduction="none") * 2, [logits], rng)
    targets = rng.uniform(0, 1, (6, 4))
    _compare_with_torch(
        lambda z: ops.binary_crossentropy(targets, z, from_logits=True),
        lambda z: F.binary_cross_entropy_with_logits(z, torch.tensor(targets), reduction="none"),
        [logits], rng)


def test_remaining_ops_match_finite_differences(rng):
    import math
    erf64 = np.vectorize(math.erf)
    x = rng.uniform(0.2, 1.0, (2, 3))
    e = rng.uniform(0.5, 1.5, (1, 3))

    def ours(x, e):
        parts = ops.split(x, [1], axis=0)
        a = ops.erf(x) + ops.rsqrt(x) + ops.log1p(x) * ops.expm1(x) + ops.reciprocal(x)
        b = ops.power(x, e) + ops.std(x, axis=0, keepdims=True)
        c = ops.tile(parts[0], (2, 1)) * ops.repeat(parts[1], 2, axis=0)
        d = ops.pad(x, ((0, 0), (1, 0)))[:, :3] + ops.cumsum(x, axis=1)
        f = ops.swapaxes(ops.moveaxis(ops.broadcast_to(e, (2, 3)), 0, 1), 0, 1)
        return a + b + c + d + f

    def ref(x, e):
        a = erf64(x) + 1 / np.sqrt(x) + np.log1p(x) * np.expm1(x) + 1 / x
        b = x ** e + x.std(axis=0, keepdims=True)
        c = np.tile(x[:1], (2, 1)) * np.repeat(x[1:], 2, axis=0)
        d = np.pad(x, ((0, 0), (1, 0)))[:, :3] + np.cumsum(x, axis=1)
        return a + b + c + d + np.broadcast_to(e, (2, 3))

    seed = rng.standard_normal((2, 3))
    value, grads = traced_gradients(ours, [x, e], seed)
    np.testing.assert_allclose(value, ref(x, e), rtol=1e-4, atol=1e-5)
    for g, f in zip(grads, finite_differences(ref, [x, e], seed)):
        np.testing.assert_allclose(g, f, rtol=2e-3, atol=2e-4)


def test_traced_errors_are_clear(rng):
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    with trace(True, True):
        with pytest.raises(ValueError):
            ops.matmul(x, x)  # (2, 3) @ (2, 3)
        with pytest.raises(ValueError, match="out="):
            ops.add(x, x, out=np.empty((2, 3), np.float32))
        with pytest.raises(ValueError, match="trans"):
            ops.matmul(x, x, trans_b=True)
        with pytest.raises(ValueError, match="channels_last"):
            ops.conv(ops.reshape(x, (1, 2, 3, 1)), np.ones((1, 1, 1, 1), np.float32),
                     data_format="channels_first")
