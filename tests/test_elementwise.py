"""Elementwise operations and dropout against NumPy references."""
import numpy as np
import pytest

import cnnc

ops = cnnc.ops
M32 = np.uint64(0xFFFFFFFF)


# ---- an independent model of the documented dropout hash ------------------------

def splitmix64(z):
    with np.errstate(over="ignore"):
        z = np.uint64(z) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def mix32(h):
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & M32
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & M32
    return h ^ (h >> np.uint64(16))


def ref_dropout_mask(n, rate, seed, offset):
    key = splitmix64(seed)
    k0, k1 = key & M32, key >> np.uint64(32)
    with np.errstate(over="ignore"):
        index = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    lo, hi = index & M32, index >> np.uint64(32)
    bits = mix32((mix32(lo ^ k0) + (hi ^ k1)) & M32)
    threshold = min(int(np.rint(np.float64(np.float32(rate)) * 2.0 ** 32)), 2 ** 32 - 1)
    return (bits >= np.uint64(threshold)).astype(np.uint8)


# ---- add / multiply / bias ---------------------------------------------------------

@pytest.mark.parametrize("n", [1, 15, 1000, 300_007])
def test_add_multiply(isa, threads, rng, n):
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(ops.add(a, b), a + b)
    np.testing.assert_array_equal(ops.multiply(a, b), a * b)
    out = a.copy()
    assert ops.add(out, b, out=out) is out
    np.testing.assert_array_equal(out, a + b)


@pytest.mark.parametrize("n", [1, 15, 1000, 300_007])
def test_add_relu_has_the_bits_of_add_then_relu(isa, threads, rng, n):
    from cnnc import _kernels
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    # -0 + -0 = -0, which the ReLU kernel keeps (max(0, -0) is its second
    # operand); NaN and infinities pass as the ReLU passes them
    specials = np.array([-0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.0], np.float32)
    a[:min(n, 8)] = specials[:min(n, 8)]
    b[:min(n, 8)] = np.array([-0.0, 0.0, 1.0, 1.0, 5.0, -1e-45, 1e-45, -3.0], np.float32)[:min(n, 8)]
    expected = _kernels.relu(_kernels.add(a, b))
    got = _kernels.add(a, b, activation="relu")
    assert got.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(got, np.maximum(a + b, 0))  # NaN stays NaN
    out = b.copy()
    assert _kernels.add(a, out, out=out, activation="relu") is out
    assert out.tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="activation"):
        _kernels.add(a, b, activation="tanh")


@pytest.mark.parametrize("shape", [(5, 3), (2, 7, 9, 17), (3, 4, 4, 64), (4000, 70), (2, 5000)])
def test_bias_add(isa, threads, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    np.testing.assert_array_equal(ops.bias_add(x, b), x + b)
    db = ops.bias_add_backward(x)
    ref = x.reshape(-1, shape[-1]).astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(db, ref, rtol=1e-6, atol=1e-6 * np.sqrt(x.size))


def test_bias_add_backward_independent_of_threads(rng):
    dy = rng.standard_normal((512, 9, 9, 16)).astype(np.float32)
    results = []
    for t in (1, 2):
        previous = cnnc.get_num_threads()
        cnnc.set_num_threads(t)
        results.append(ops.bias_add_backward(dy))
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])


def test_bias_add_gradient_finite_differences(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    dy = rng.standard_normal((3, 4, 5))
    b = rng.standard_normal(5)
    objective = lambda bb: float(((x.astype(np.float64) + bb) * dy).sum())
    eps = 1e-6
    numeric = np.array([(objective(b + eps * e) - objective(b - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(ops.bias_add_backward(dy.astype(np.float32)), numeric, rtol=1e-5, atol=1e-5)


# ---- concatenation -------------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_concatenate_and_split(isa, threads, rng, axis):
    shapes = [(2, 3, 4, 5), (2, 3, 4, 1), (2, 3, 4, 16)]
    arrays = []
    for s in shapes:
        s = list(s)
        if axis != -1:
            s[3] = 5
            s[axis] = [1, 3, 2][len(arrays)]
        arrays.append(rng.standard_normal(s).astype(np.float32))
    y = ops.concatenate(arrays, axis=axis)
    np.testing.assert_array_equal(y, np.concatenate(arrays, axis=axis))
    sizes = [a.shape[axis] for a in arrays]
    pieces = ops.split_channels(y, sizes, axis=axis)
    for p, a in zip(pieces, arrays):
        np.testing.assert_array_equal(p, a)


def test_concatenate_large(threads, rng):
    a = rng.standard_normal((64, 28, 28, 32)).astype(np.float32)
    b = rng.standard_normal((64, 28, 28, 48)).astype(np.float32)
    y = ops.concatenate([a, b], axis=-1)
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=-1))
    da, db = ops.split_channels(y, [32, 48])
    np.testing.assert_array_equal(da, a)
    np.testing.assert_array_equal(db, b)


# ---- dropout -------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_matches_model(isa, threads, rng, rate):
    x = rng.standard_normal((3, 37, 41)).astype(np.float32)
    y, mask = ops.dropout(x, rate, seed=1234, offset=77)
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    np.testing.assert_array_equal(mask.reshape(-1), ref_dropout_mask(x.size, rate, 1234, 77))
    scale = np.float32(1.0 / (1.0 - np.float64(np.float32(rate))))
    np.testing.assert_array_equal(y, x * (mask * scale))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(ops.dropout_backward(dy, mask, rate), dy * (mask * scale))


def test_dropout_mask_statistics_and_reproducibility(rng):
    x = np.ones((1 << 20) + 3, np.float32)
    masks = {}
    for t in (1, 2):
        previous = cnnc.get_num_threads()
        cnnc.set_num_threads(t)
        masks[t] = ops.dropout(x, 0.3, seed=42)[1]
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(masks[1], masks[2])
    assert abs(masks[1].mean() - 0.7) < 3e-3
    other = ops.dropout(x, 0.3, seed=43)[1]
    assert 0.5 < (other == masks[1]).mean() < 0.65  # independent masks agree on ~0.58
    # Continuing a stream with offset gives the same mask as one long call.
    np.testing.assert_array_equal(ops.dropout(x[1000:], 0.3, seed=42, offset=1000)[1], masks[1][1000:])
    y, _ = ops.dropout(x, 0.3, seed=42)
    assert abs(y.mean() - 1.0) < 5e-3  # inverted scaling keeps the expectation


def test_dropout_high_word_of_the_index(isa):
    x = np.ones(100, np.float32)
    offset = 2 ** 32 - 50  # crosses into the next high word inside the call
    _, mask = ops.dropout(x, 0.5, seed=7, offset=offset)
    np.testing.assert_array_equal(mask, ref_dropout_mask(100, 0.5, 7, offset))


def test_dropout_without_seed_draws_fresh_masks():
    x = np.ones(4096, np.float32)
    a, b = ops.dropout(x, 0.5, None)[1], ops.dropout(x, 0.5, None)[1]
    assert not np.array_equal(a, b) and abs(a.mean() - 0.5) < 0.05


def test_dropout_propagates_nan():
    x = np.full(64, np.nan, np.float32)
    y, mask = ops.dropout(x, 0.5, seed=1)
    assert np.isnan(y).all()


def test_argument_errors():
    x = np.ones((2, 3), np.float32)
    for rate in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            ops.dropout(x, rate, seed=0)
    with pytest.raises(ValueError, match="seed"):
        ops.dropout(x, 0.5, seed=-1)
    with pytest.raises(ValueError, match="rate"):
        ops.dropout_backward(x, np.ones((2, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="mask"):
        ops.dropout_backward(x, np.ones((3, 2), np.uint8), 0.5)
    with pytest.raises(TypeError, match="mask"):
        ops.dropout_backward(x, np.ones((2, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match="b"):
        ops.add(x, np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="b has shape"):
        ops.bias_add(x, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="arrays\\[1\\]"):
        ops.concatenate([x, np.ones((3, 3), np.float32)], axis=-1)
    with pytest.raises(ValueError, match="arrays"):
        ops.concatenate([])
    with pytest.raises(ValueError, match="axis"):
        ops.concatenate([x, x], axis=2)
    with pytest.raises(ValueError, match="sizes"):
        ops.split_channels(x, [1, 1])
