"""The dense layers of predict at one or two rows per call read the kernel in
place (src/internal/gemv_template.h), at more rows from packed panels:
against float64 NumPy at many shapes (column and row tails, several KC
blocks, runs of columns beyond one 4096-column run), with every output
stage (bias, a batch norm folded into the lent kernel, a residual add, the
ReLU family in the stage and other activations after it), on every ISA
path; the rows of a few-row call equal those rows of a many-row call to the
bit, and one thread gives the bits of two."""
import numpy as np
import pytest

import cnnc
from cnnc import layers as L
from cnnc.models import Model

ISAS = ["scalar", "avx2", "avx512"]

# (inputs K, units N): tails of every vector width, one KC block or several
# (K = 1100: three blocks of 367 on AVX-512, five of 220 on AVX2), more
# columns than one run of the kernel (and enough work for two threads).
SHAPES = [(1, 1), (7, 5), (9, 17), (33, 40), (513, 33), (1100, 100), (700, 4100)]
STAGES = ["linear", "bias_relu", "relu6", "leaky", "capped", "tanh", "batch_norm", "residual_relu"]


def _model(k, n, stage, seed):
    x = L.Input((k,), name="x")
    inputs = [x]
    if stage == "linear":
        y = L.Dense(n, use_bias=False)(x)
    elif stage == "bias_relu":
        y = L.Dense(n, activation="relu")(x)
    elif stage == "relu6":
        y = L.Dense(n, activation="relu6")(x)
    elif stage == "leaky":
        y = L.LeakyReLU(negative_slope=0.2)(L.Dense(n)(x))
    elif stage == "capped":
        y = L.ReLU(max_value=0.5, negative_slope=0.1)(L.Dense(n)(x))
    elif stage == "tanh":
        y = L.Dense(n, activation="tanh")(x)
    elif stage == "batch_norm":
        y = L.ReLU()(L.BatchNormalization(epsilon=0.01)(L.Dense(n)(x)))
    else:
        r = L.Input((n,), name="r")
        inputs.append(r)
        y = L.ReLU()(L.Add()([L.Dense(n)(x), r]))
    model = Model(inputs, y)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.name.endswith("moving_variance"):
            w.value[...] = rng.uniform(0.5, 2.0, w.value.shape)
        else:
            w.value[...] = rng.standard_normal(w.value.shape)
    return model


def _reference(model, stage, xs):
    """float64 output and a bound on each element's rounding error."""
    weights = {w.name.rsplit("/", 1)[-1]: w.numpy().astype(np.float64) for w in model.weights}
    x = xs[0].astype(np.float64)
    kernel = weights["kernel"]
    z = x @ kernel
    size = np.abs(x) @ np.abs(kernel)
    if "bias" in weights:
        z += weights["bias"]
    if stage == "batch_norm":
        scale = weights["gamma"] / np.sqrt(weights["moving_variance"] + 0.01)
        z = (z - weights["moving_mean"]) * scale + weights["beta"]
        size = size * np.abs(scale) + np.abs(weights["moving_mean"] * scale) + np.abs(weights["beta"])
    if stage == "residual_relu":
        z += xs[1]
        size += np.abs(xs[1])
    if stage in ("bias_relu", "batch_norm", "residual_relu"):
        z = np.maximum(z, 0)
    elif stage == "relu6":
        z = np.clip(z, 0, 6)
    elif stage == "leaky":
        z = np.where(z > 0, z, 0.2 * z)
    elif stage == "capped":
        z = np.minimum(np.where(z > 0, z, 0.1 * z), 0.5)
    elif stage == "tanh":
        z = np.tanh(z)
    k = kernel.shape[0]
    return z, (k + 8) * 2.0 ** -23 * (size + 1e-30) + 1e-6


@pytest.fixture(params=ISAS)
def isa(request):
    if request.param not in cnnc.available_isas():
        pytest.skip(f"{request.param} not available on this CPU")
    original, threads = cnnc.isa(), cnnc.get_num_threads()
    cnnc.set_isa(request.param)
    yield request.param
    cnnc.set_isa(original)
    cnnc.set_num_threads(threads)


@pytest.mark.parametrize("k, n", SHAPES)
@pytest.mark.parametrize("stage", STAGES)
def test_dense_few_rows_against_float64(isa, k, n, stage):
    model = _model(k, n, stage, seed=k * 31 + n)
    rng = np.random.default_rng(k + n)
    xs = [rng.standard_normal((3, k)).astype(np.float32)]
    if stage == "residual_relu":
        xs.append(rng.standard_normal((3, n)).astype(np.float32))
    cnnc.set_num_threads(2)
    few = [model.predict([x[i:i + 1] for x in xs], verbose=0, batch_size=1) for i in range(3)]
    two = model.predict([x[:2] for x in xs], verbose=0, batch_size=2)
    many = model.predict(xs, verbose=0, batch_size=3)  # packed panels
    cnnc.set_num_threads(1)
    one_thread = model.predict([x[:2] for x in xs], verbose=0, batch_size=2)
    ref, tol = _reference(model, stage, xs)
    assert np.all(np.abs(many - ref) <= tol), float(np.max(np.abs(many - ref) - tol))
    np.testing.assert_array_equal(np.concatenate(few), many)
    np.testing.assert_array_equal(two, many[:2])
    np.testing.assert_array_equal(one_thread, two)


def test_dense_few_rows_of_a_sequence(isa):
    """A dense layer over the last axis of a (steps, features) input: rows are
    batch x steps, so batch 1 of 2 steps reads in place, batch 2 packs."""
    x = L.Input((2, 70))
    model = Model(x, L.Dense(45, activation="relu")(x))
    rng = np.random.default_rng(5)
    for w in model.weights:
        w.value[...] = rng.standard_normal(w.value.shape)
    xs = rng.standard_normal((2, 2, 70)).astype(np.float32)
    one = np.concatenate([model.predict(xs[i:i + 1], verbose=0, batch_size=1) for i in range(2)])
    both = model.predict(xs, verbose=0, batch_size=2)
    np.testing.assert_array_equal(one, both)
    kernel, bias = (w.numpy().astype(np.float64) for w in model.weights)
    np.testing.assert_allclose(both, np.maximum(xs @ kernel + bias, 0), rtol=1e-5, atol=1e-4)
