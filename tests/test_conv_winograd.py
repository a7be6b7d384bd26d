"""The Winograd F(2x2, 3x3) path of 3x3 stride-1 convolutions (forward,
backward-data and backward-weights), forced on with
CNNC_WINOGRAD=1 (and off with 0, for the comparison), against float64 NumPy
references on every ISA path and at 1 and 2 threads.

Tolerance: a float32 convolution's rounding error at an output is bounded by
a small multiple of eps * sum |x| |w| over its taps (the "absolute
convolution" below). Winograd adds the rounding of its transforms, whose
coefficients are +-1 and +-1/2: the 4x4 input transform sums up to 4 inputs,
the kernel transform up to 9 weights (scaled by at most 9/4), the output
transform up to 9 products, so the error grows by a constant factor (and is
relative to the magnitudes in the whole 4x4 input tile rather than the 3x3
window; with random data the two are alike). The tests allow 1e-6 times the
absolute convolution (8.4 float32 epsilons): the measured worst case, over
these shapes and up to 512 input channels, is below 2 epsilons for both the
Winograd and the direct path, and any indexing or transform mistake gives
errors of the order of the values themselves.
"""
import numpy as np
import pytest

import cnnc
from test_conv import ref_conv2d, ref_conv2d_grads, ref_conv2d_transpose, resolve_pads

TOL = 1e-6


@pytest.fixture
def winograd(monkeypatch):
    """Force the Winograd path wherever it applies."""
    monkeypatch.setenv("CNNC_WINOGRAD", "1")


def abs_conv(x, w, pads):
    return ref_conv2d(np.abs(x), np.abs(w), None, (1, 1), pads, (1, 1), 1)


def assert_within(actual, expected, bound):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = np.abs(actual.astype(np.float64) - expected)
    worst = float((err / (bound + 1e-30)).max())
    assert np.all(err <= TOL * bound + 1e-30), f"max error {worst:.3g} x the rounding scale"


# (batch, h, w, cin, cout, padding)
CASES = [
    (2, 8, 8, 16, 32, "same"),              # even sizes
    (2, 7, 9, 17, 33, "same"),              # odd sizes, channels off the vector width
    (1, 9, 6, 3, 5, "valid"),               # batch 1, odd output (7 x 4)
    (3, 3, 3, 4, 6, "valid"),               # 1x1 output: one tile, mostly discarded
    (2, 1, 1, 5, 3, "same"),                # 1x1 input and output
    (2, 6, 5, 33, 17, ((2, 0), (1, 3))),    # explicit asymmetric padding
    (1, 5, 4, 2, 3, ((4, 3), (3, 4))),      # padding beyond the kernel
    (2, 13, 13, 32, 64, "valid"),           # the MNIST layer's shape
    (1, 6, 7, 70, 40, "same"),              # several GEMM panels, partial tiles
    (1, 4, 5, 300, 9, "same"),              # input channels in two GEMM K blocks (AVX2, scalar)
    (1, 3, 4, 600, 20, ((1, 0), (1, 1))),   # two K blocks on AVX-512 too
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_winograd_matches_reference(isa, threads, rng, winograd, case):
    n, h, w, cin, cout, padding = case
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    pads = resolve_pads(padding, (h, w), (3, 3), (1, 1), (1, 1))
    bound = abs_conv(x, wt, pads) + np.abs(b)
    y = cnnc.ops.conv2d(x, wt, b, padding=padding)
    assert_within(y, ref_conv2d(x, wt, b, (1, 1), pads, (1, 1), 1), bound)
    y0 = cnnc.ops.conv2d(x, wt, None, padding=padding)
    assert_within(y0, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), bound)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_backward(x, wt, dy, padding=padding)
    rdx, rdw, rdb = ref_conv2d_grads(x, wt, dy, (1, 1), pads, (1, 1), 1)
    dx_bound, _, _ = ref_conv2d_grads(x, np.abs(wt), np.abs(dy), (1, 1), pads, (1, 1), 1)
    assert_within(dx, rdx, dx_bound)
    # A weight-gradient entry is a sum over tiles; Winograd's error there is
    # relative to the tiles' magnitudes, i.e. to the largest tap of that
    # channel pair, not to the entry's own sum (which can be much smaller
    # when few pixels contribute, as with 1-pixel outputs).
    _, dw_bound, _ = ref_conv2d_grads(np.abs(x), wt, np.abs(dy), (1, 1), pads, (1, 1), 1)
    assert_within(dw, rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape))
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5 * np.abs(dy).sum(axis=(0, 1, 2)).max())


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_transpose_stride1(isa, threads, rng, winograd, padding):
    """conv2d_transpose with stride 1 runs backward-data forward, its
    backward-data is the forward convolution and its weight gradient the
    convolution's with x and dy swapped: all on the Winograd path."""
    n, h, w, cin, filters = 2, 7, 6, 19, 24
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((3, 3, filters, cin)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    y = cnnc.ops.conv2d_transpose(x, wt, b, strides=1, padding=padding)
    expected = ref_conv2d_transpose(x, wt, b, (1, 1), padding, None, (1, 1))
    bound = ref_conv2d_transpose(np.abs(x), np.abs(wt), np.abs(b), (1, 1), padding, None, (1, 1))
    assert_within(y, expected, bound)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, _ = cnnc.ops.conv2d_transpose_backward(x, wt, dy, strides=1, padding=padding)
    # The convolution this transposes maps dy's shape to x's.
    pads = resolve_pads(padding, y.shape[1:3], (3, 3), (1, 1), (1, 1))
    assert_within(dx, ref_conv2d(dy, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(dy, wt, pads))
    _, rdw, _ = ref_conv2d_grads(dy, wt, x, (1, 1), pads, (1, 1), 1)
    _, dw_bound, _ = ref_conv2d_grads(np.abs(dy), wt, np.abs(x), (1, 1), pads, (1, 1), 1)
    assert_within(dw, rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape))


def test_winograd_toggle_and_determinism(rng, monkeypatch):
    """Forced on and off, both paths agree with the reference but not bit for
    bit (so the switch does select another algorithm); on, y and dx do not
    depend on the thread count."""
    x = rng.standard_normal((4, 10, 11, 24)).astype(np.float32)
    wt = rng.standard_normal((3, 3, 24, 20)).astype(np.float32)
    dy = rng.standard_normal((4, 10, 11, 20)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    expected = ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1)
    bound = abs_conv(x, wt, pads)
    previous = cnnc.get_num_threads()
    results = {}
    try:
        for mode in ("0", "1"):
            monkeypatch.setenv("CNNC_WINOGRAD", mode)
            for threads in (1, 2):
                cnnc.set_num_threads(threads)
                y = cnnc.ops.conv2d(x, wt, padding="same")
                dx, dw, _ = cnnc.ops.conv2d_backward(x, wt, dy, padding="same")
                assert_within(y, expected, bound)
                results[mode, threads] = (y, dx, dw)
                np.testing.assert_array_equal(cnnc.ops.conv2d_backward(x, wt, dy, padding="same")[1], dw)
    finally:
        cnnc.set_num_threads(previous)
    for k in range(3):
        # The weight gradient's per-thread partials make it depend on the
        # thread count (like the GEMM path's); y and dx do not.
        if k < 2:
            np.testing.assert_array_equal(results["1", 1][k], results["1", 2][k])
        assert not np.array_equal(results["0", 1][k], results["1", 1][k])
        assert not np.array_equal(results["0", 2][k], results["1", 2][k])


def test_winograd_default_choice(rng, monkeypatch):
    """Without the override the heuristic picks per shape; every choice must
    still be right, including where Winograd is declined (few channels, few
    tiles, 1-pixel outputs)."""
    monkeypatch.delenv("CNNC_WINOGRAD", raising=False)
    for n, hw, cin, cout, padding in [(4, 13, 32, 64, "valid"), (1, 4, 16, 16, "same"), (8, 3, 16, 16, "valid"),
                                      (4, 8, 8, 16, "same"), (2, 12, 16, 48, "same")]:
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        wt = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
        pads = resolve_pads(padding, (hw, hw), (3, 3), (1, 1), (1, 1))
        y = cnnc.ops.conv2d(x, wt, padding=padding)
        assert_within(y, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(x, wt, pads))


def test_winograd_large_magnitudes_stay_finite(rng, winograd):
    """Values near the float32 range: the transforms' intermediate sums must
    not overflow where the direct result is finite (inputs up to 1e18 and
    weights up to 1e18 give outputs near 1e37 with sums of a few)."""
    x = (rng.standard_normal((1, 6, 6, 4)) * 1e18).astype(np.float32)
    wt = (rng.standard_normal((3, 3, 4, 4)) * 1e18).astype(np.float32) / 64
    y = cnnc.ops.conv2d(x, wt, padding="same")
    pads = ((1, 1), (1, 1))
    assert np.isfinite(y).all()
    assert_within(y, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(x, wt, pads))


def test_winograd_non_finite_inputs_stay_local(rng, winograd):
    """A NaN input makes the outputs whose windows hold it NaN, as the direct
    sum does, and spreads no further than the 2x2 output tiles whose 4x4 input
    tiles hold it."""
    x = rng.standard_normal((1, 10, 10, 16)).astype(np.float32)
    wt = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    x[0, 5, 4, 3] = np.nan
    y = cnnc.ops.conv2d(x, wt, padding="valid")   # 8 x 8 outputs, tiles of 2x2
    bad = ~np.isfinite(y[0]).all(axis=-1)
    window = np.zeros((8, 8), bool)
    window[3:6, 2:5] = True                        # outputs whose 3x3 window holds (5, 4)
    assert np.isnan(y[0][window]).all()
    tiles = np.zeros((8, 8), bool)
    tiles[2:6, 2:6] = True                         # the tiles whose 4x4 input holds it
    assert not (bad & ~tiles).any()


def test_winograd_weight_gradient_partials_are_bounded(rng, winograd):
    """At 400 channels dU is 10 MB: from 3 threads on, private partials
    would pass the 16 MiB bound, so the threads split dU's columns instead.
    The result matches the reference and no longer depends on the thread
    count: it is one thread's, to the bit."""
    n, h, w, c = 2, 16, 16, 400
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((3, 3, c, c)).astype(np.float32)
    dy = rng.standard_normal((n, h, w, c)).astype(np.float32)
    pads = resolve_pads("same", (h, w), (3, 3), (1, 1), (1, 1))
    _, rdw, _ = ref_conv2d_grads(x, wt, dy, (1, 1), pads, (1, 1), 1)
    _, dw_bound, _ = ref_conv2d_grads(np.abs(x), wt, np.abs(dy), (1, 1), pads, (1, 1), 1)
    previous = cnnc.get_num_threads()
    results = {}
    try:
        for threads in (1, 2, 3, 4):
            cnnc.set_num_threads(threads)
            _, dw, _ = cnnc.ops.conv2d_backward(x, wt, dy, padding="same")
            assert_within(dw, rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True),
                                                   rdw.shape))
            results[threads] = dw
    finally:
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(results[3], results[1])
    np.testing.assert_array_equal(results[4], results[1])
