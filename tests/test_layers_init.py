"""Initializers (Keras statistics), regularizers and the global seed."""
import json
import math

import numpy as np
import pytest

from cnnc import initializers, regularizers
from cnnc import random as cnnc_random
import cnnc.layers as L

TRUNC = 0.87962566103423978


@pytest.mark.parametrize("name, shape, std, limit", [
    # Keras: glorot_uniform limit sqrt(6 / (fan_in + fan_out)), std limit / sqrt(3)
    ("glorot_uniform", (300, 200), math.sqrt(2 / 500), math.sqrt(6 / 500)),
    ("glorot_normal", (3, 3, 32, 64), math.sqrt(2 / (288 + 576)), 2 * math.sqrt(2 / 864) / TRUNC),
    ("he_uniform", (3, 3, 64, 32), math.sqrt(2 / 576), math.sqrt(6 / 576)),
    ("he_normal", (5, 5, 16, 32), math.sqrt(2 / 400), 2 * math.sqrt(2 / 400) / TRUNC),
    ("lecun_uniform", (400, 300), math.sqrt(1 / 400), math.sqrt(3 / 400)),
    ("lecun_normal", (400, 300), math.sqrt(1 / 400), 2 * math.sqrt(1 / 400) / TRUNC),
    ("random_normal", (300, 300), 0.05, None),
    ("random_uniform", (300, 300), 0.1 / math.sqrt(12), 0.05),
    ("truncated_normal", (300, 300), 0.05 * TRUNC, 0.1),
])
def test_variance_statistics(name, shape, std, limit):
    w = initializers.get(name)(shape)
    assert w.dtype == np.float32 and w.shape == shape
    assert abs(w.mean()) < 4 * std / math.sqrt(w.size) + 1e-6
    assert w.std() == pytest.approx(std, rel=0.03)
    if limit is not None:
        assert np.abs(w).max() <= limit * (1 + 1e-6)


def test_fans_follow_keras():
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans((4, 6)) == (4, 6)
    assert initializers.compute_fans((3, 3, 8, 16)) == (72, 144)
    assert initializers.compute_fans((5, 8, 16)) == (40, 80)


def test_variance_scaling_modes():
    shape = (2, 2, 100, 50)  # fan_in 400, fan_out 200
    for mode, n in (("fan_in", 400), ("fan_out", 200), ("fan_avg", 300)):
        w = initializers.VarianceScaling(3.0, mode, "untruncated_normal", seed=1)(shape)
        assert w.std() == pytest.approx(math.sqrt(3.0 / n), rel=0.03)
        u = initializers.VarianceScaling(3.0, mode, "uniform", seed=1)(shape)
        assert np.abs(u).max() <= math.sqrt(9.0 / n) * (1 + 1e-6)
        assert u.std() == pytest.approx(math.sqrt(3.0 / n), rel=0.03)


def test_constant_zeros_ones_identity_orthogonal():
    assert np.all(initializers.get("zeros")((3, 4)) == 0)
    assert np.all(initializers.get("ones")((5,)) == 1)
    assert np.all(initializers.Constant(0.25)((2, 2)) == np.float32(0.25))
    np.testing.assert_array_equal(initializers.Identity(2.0)((3, 3)), 2 * np.eye(3))
    q = initializers.Orthogonal(seed=3)((20, 8)).astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-5)
    q = initializers.Orthogonal(gain=0.5, seed=3)((6, 10)).astype(np.float64)
    np.testing.assert_allclose(q @ q.T, 0.25 * np.eye(6), atol=1e-5)
    k = initializers.Orthogonal(seed=0)((3, 3, 4, 8)).reshape(36, 8).astype(np.float64)
    np.testing.assert_allclose(k.T @ k, np.eye(8), atol=1e-5)


def test_seeds():
    a = initializers.HeNormal(seed=7)((10, 10))
    np.testing.assert_array_equal(a, initializers.HeNormal(seed=7)((10, 10)))
    cnnc_random.set_seed(42)
    b = initializers.GlorotUniform()((10, 10))
    c = initializers.GlorotUniform()((10, 10))
    assert not np.array_equal(b, c)  # the global stream advances
    cnnc_random.set_seed(42)
    np.testing.assert_array_equal(initializers.GlorotUniform()((10, 10)), b)
    assert cnnc_random.get_seed() == 42
    cnnc_random.set_seed(42)
    d1 = L.Dense(4)
    d1.build((None, 3))
    cnnc_random.set_seed(42)
    d2 = L.Dense(4)
    d2.build((None, 3))
    np.testing.assert_array_equal(d1.get_weights()[0], d2.get_weights()[0])
    with pytest.raises(ValueError, match="seed"):
        cnnc_random.set_seed(-1)


@pytest.mark.parametrize("shape", [(), (7,), (3, 3, 64, 130), (70001,)])
def test_seeded_draws_match_one_whole_numpy_draw(shape):
    # The draws go through float64 in blocks; the values must be those of one
    # draw of the whole array from the same seeded generator (what Keras-style
    # reproducibility and saved recipes rely on), across block boundaries.
    fan_in, fan_out = initializers.compute_fans(shape)
    n = math.prod(shape)
    gen = lambda: np.random.default_rng(11)
    limit = math.sqrt(6.0 / max(1.0, (fan_in + fan_out) / 2.0) / 2.0)
    expected = gen().uniform(-limit, limit, shape).astype(np.float32)
    np.testing.assert_array_equal(initializers.GlorotUniform(seed=11)(shape), expected)
    expected = gen().normal(0.5, 0.3, shape).astype(np.float32)
    np.testing.assert_array_equal(initializers.RandomNormal(0.5, 0.3, seed=11)(shape), expected)
    expected = gen().uniform(-0.2, 0.7, shape).astype(np.float32)
    np.testing.assert_array_equal(initializers.RandomUniform(-0.2, 0.7, seed=11)(shape), expected)
    # truncated normal: all draws first, then the outliers redrawn together in index order
    g = gen()
    z = g.standard_normal(n)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = g.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    expected = (z * 0.3 + 0.1).reshape(shape).astype(np.float32)
    np.testing.assert_array_equal(initializers.TruncatedNormal(0.1, 0.3, seed=11)(shape), expected)


def test_large_kernel_draw_holds_no_float64_copy():
    # A 64 MiB float32 kernel: drawn whole through float64 it would pass
    # through 128 MiB more; block draws keep the extra to a block.
    tracemalloc = pytest.importorskip("tracemalloc")
    tracemalloc.start()
    try:
        kernel = initializers.HeUniform(seed=0)((4096, 4096))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kernel.dtype == np.float32
    assert peak < kernel.nbytes + (8 << 20)


def test_initializer_serialization_and_errors():
    for init in (initializers.HeNormal(seed=3), initializers.Constant(1.5),
                 initializers.VarianceScaling(2.0, "fan_out", "uniform"),
                 initializers.RandomNormal(0.1, 0.2)):
        config = json.loads(json.dumps(initializers.serialize(init)))
        again = initializers.deserialize(config)
        assert type(again) is type(init) and again.get_config() == init.get_config()
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("glorot_unifrom")
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan_middle")
    with pytest.raises(ValueError, match="distribution"):
        initializers.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="scale"):
        initializers.VarianceScaling(scale=0)
    with pytest.raises(ValueError, match="dtype"):
        initializers.Zeros()((2,), dtype="float64")
    with pytest.raises(ValueError, match="kernel_initializer|unknown initializer"):
        L.Dense(3, kernel_initializer="nope")


def test_regularizers():
    w = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    assert regularizers.l1()(w) == pytest.approx(0.01 * 3.5)
    assert regularizers.l2()(w) == pytest.approx(0.01 * 5.25)
    assert regularizers.l1_l2()(w) == pytest.approx(0.01 * 3.5 + 0.01 * 5.25)
    r = regularizers.l1_l2(l1=0.1, l2=0.3)
    assert r(w) == pytest.approx(0.1 * 3.5 + 0.3 * 5.25)
    np.testing.assert_allclose(r.gradient(w), 0.1 * np.sign(w) + 0.6 * w, rtol=1e-6)
    # the gradient is the derivative of the penalty (finite differences)
    x = np.array([0.7, -1.3, 2.1])
    eps = 1e-4
    num = [(r(x + eps * e) - r(x - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(r.gradient(x), num, rtol=1e-3)
    for reg in (regularizers.L1(0.2), regularizers.L2(0.3), regularizers.L1L2(0.1, 0.2)):
        again = regularizers.deserialize(json.loads(json.dumps(regularizers.serialize(reg))))
        assert type(again) is type(reg) and again.get_config() == reg.get_config()
    assert regularizers.get("l2").l2 == 0.01
    assert regularizers.get(None) is None
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.get("l3")


def test_layer_losses_report_penalties():
    cnnc_random.set_seed(0)
    layer = L.Dense(3, kernel_regularizer=regularizers.l2(0.5),
                    bias_regularizer="l1", bias_initializer="ones")
    layer.build((None, 4))
    k = layer.get_weights()[0].astype(np.float64)
    assert layer.losses == pytest.approx([0.5 * np.sum(k * k), 0.01 * 3])
    assert layer.weights[0].regularizer.l2 == 0.5
