"""The Winograd F(2x2, 3x3) and F(4x4, 3x3) paths of 3x3 stride-1
convolutions (forward, backward-data and backward-weights), each forced on
with CNNC_WINOGRAD=2 or 4 (and off with 0, for the comparison), against
float64 NumPy references on every ISA path and at 1 and 2 threads.

Tolerance: a float32 convolution's rounding error at an output is bounded by
a small multiple of eps * sum |x| |w| over its taps (the "absolute
convolution" below). Winograd adds the rounding of its transforms, whose
coefficients are +-1 and +-1/2: the 4x4 input transform sums up to 4 inputs,
the kernel transform up to 9 weights (scaled by at most 9/4), the output
transform up to 9 products, so the error grows by a constant factor and is
relative to the magnitudes in the whole input tile rather than the 3x3
window: the tests take the largest absolute convolution over each m x m
output tile as the scale of its outputs (an output whose window lies mostly
in the padding has a far smaller sum of its own). They allow 1e-6 times that
(8.4 float32 epsilons): the measured worst case, over these shapes and up to
512 input channels, is below 2 epsilons for both the Winograd and the direct
path, and any indexing or transform mistake gives errors of the order of the
values themselves.

F(4x4, 3x3)'s transforms have larger coefficients (up to 5 in B^T, 8 in
A^T, fractions 1/6 and 1/24 in G), so its rounding error is larger by about
an order of magnitude: measured (benchmarks/bench_winograd.py --error) at
up to 21 float32 epsilons of the absolute convolution over 64 to 512
channels, against 1.5 for F(2x2) and 2.5 for the direct GEMM sum; over
these tests' cases and ISA paths, up to 27 epsilons for outputs and input
gradients and 48 for the weight gradient (whose error is relative to the
tiles' magnitudes: worst with a few tiles). Its tests allow 1e-5 (84
epsilons).
"""
import numpy as np
import pytest

import cnnc
from test_conv import ref_conv2d, ref_conv2d_grads, ref_conv2d_transpose, resolve_pads

TOLERANCES = {"2": 1e-6, "4": 1e-5}  # per variant, by its tile side


@pytest.fixture(params=["2", "4"], ids=["F2", "F4"])
def winograd(request, monkeypatch):
    """Force one Winograd variant ("2" or "4": its tile side) wherever it
    applies."""
    monkeypatch.setenv("CNNC_WINOGRAD", request.param)
    return request.param


def abs_conv(x, w, pads):
    return ref_conv2d(np.abs(x), np.abs(w), None, (1, 1), pads, (1, 1), 1)


def tile_max(bound, m):
    """Each output's bound replaced by the largest of its m x m tile (tiles
    from output pixel (0, 0), as Winograd takes them)."""
    n, h, w, c = bound.shape
    th, tw = -(-h // m), -(-w // m)
    padded = np.zeros((n, th * m, tw * m, c))
    padded[:, :h, :w] = bound
    tiles = padded.reshape(n, th, m, tw, m, c).max(axis=(2, 4), keepdims=True)
    return np.broadcast_to(tiles, (n, th, m, tw, m, c)).reshape(n, th * m, tw * m, c)[:, :h, :w]


def assert_within(actual, expected, bound, mode, per_tile=True):
    """|actual - expected| <= the tolerance of Winograd variant `mode` times
    bound (the largest of each output tile unless per_tile is False)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if per_tile:
        bound = tile_max(bound, int(mode))
    err = np.abs(actual.astype(np.float64) - expected)
    worst = float((err / (bound + 1e-30)).max())
    assert np.all(err <= TOLERANCES[mode] * bound + 1e-30), f"max error {worst:.3g} x the rounding scale"


def check_all_passes(x, wt, b, padding, mode, rng):
    """y (with and without bias), dx and dw against the float64 loops."""
    h, w = x.shape[1:3]
    pads = resolve_pads(padding, (h, w), (3, 3), (1, 1), (1, 1))
    bound = abs_conv(x, wt, pads) + np.abs(b)
    y = cnnc.ops.conv2d(x, wt, b, padding=padding)
    assert_within(y, ref_conv2d(x, wt, b, (1, 1), pads, (1, 1), 1), bound, mode)
    y0 = cnnc.ops.conv2d(x, wt, None, padding=padding)
    assert_within(y0, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), bound, mode)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_backward(x, wt, dy, padding=padding)
    rdx, rdw, rdb = ref_conv2d_grads(x, wt, dy, (1, 1), pads, (1, 1), 1)
    dx_bound, _, _ = ref_conv2d_grads(x, np.abs(wt), np.abs(dy), (1, 1), pads, (1, 1), 1)
    assert_within(dx, rdx, dx_bound, mode)
    # A weight-gradient entry is a sum over tiles; Winograd's error there is
    # relative to the tiles' magnitudes, i.e. to the largest tap of that
    # channel pair, not to the entry's own sum (which can be much smaller
    # when few pixels contribute, as with 1-pixel outputs).
    _, dw_bound, _ = ref_conv2d_grads(np.abs(x), wt, np.abs(dy), (1, 1), pads, (1, 1), 1)
    assert_within(dw, rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape), mode,
                  per_tile=False)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5 * np.abs(dy).sum(axis=(0, 1, 2)).max())


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
    check_all_passes(x, wt, b, padding, winograd, rng)


def test_winograd_blocks_of_several_groups(isa, rng, winograd):
    """128 channels: U (1 MiB for F(2x2), 2.25 MiB for F(4x4)) takes blocks
    of two micro-kernel row groups, and the threads take equal runs of
    groups, each ending in a shorter block (80 tiles for F(4x4) on 2 threads:
    28 + 14 and 28 + 10). All passes match the reference, and y and dx have
    the same bits at 1, 2 and 3 threads."""
    x = rng.standard_normal((20, 7, 7, 128)).astype(np.float32)
    wt = (rng.standard_normal((3, 3, 128, 128)) / 24).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)
    dy = rng.standard_normal((20, 7, 7, 128)).astype(np.float32)
    previous = cnnc.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            cnnc.set_num_threads(threads)
            if threads == 1:
                check_all_passes(x, wt, b, "same", winograd, rng)
            results.append((cnnc.ops.conv2d(x, wt, b, padding="same"),
                            cnnc.ops.conv2d_backward(x, wt, dy, padding="same", need_dw=False)[0]))
    finally:
        cnnc.set_num_threads(previous)
    for got in results[1:]:
        for a, want in zip(got, results[0]):
            np.testing.assert_array_equal(a, want)


# Output sizes 1 .. 15 along each axis: multiples of the 4x4 tile and every
# remainder, with (oh, ow) unequal as well.
OUTPUT_SIZES = [(1, 1), (1, 6), (2, 3), (3, 3), (4, 4), (5, 2), (6, 7), (7, 7), (8, 8), (9, 5), (10, 12),
                (11, 11), (12, 3), (13, 14), (14, 14), (15, 15), (15, 9)]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("n, cin, cout", [(1, 5, 7), (3, 19, 12)])
def test_winograd4_output_sizes(isa, threads, rng, monkeypatch, padding, n, cin, cout):
    """F(4x4) at every output size up to 15 x 15 along each axis (edge tiles
    of 1, 2 and 3 kept pixels), both paddings, channels off every vector
    width, batch 1 and 3: all three passes."""
    monkeypatch.setenv("CNNC_WINOGRAD", "4")
    for oh, ow in OUTPUT_SIZES:
        h, w = (oh + 2, ow + 2) if padding == "valid" else (oh, ow)
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        wt = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        check_all_passes(x, wt, b, padding, "4", rng)


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
    assert_within(y, expected, bound, winograd)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, _ = cnnc.ops.conv2d_transpose_backward(x, wt, dy, strides=1, padding=padding)
    # The convolution this transposes maps dy's shape to x's.
    pads = resolve_pads(padding, y.shape[1:3], (3, 3), (1, 1), (1, 1))
    assert_within(dx, ref_conv2d(dy, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(dy, wt, pads), winograd)
    _, rdw, _ = ref_conv2d_grads(dy, wt, x, (1, 1), pads, (1, 1), 1)
    _, dw_bound, _ = ref_conv2d_grads(np.abs(dy), wt, np.abs(x), (1, 1), pads, (1, 1), 1)
    assert_within(dw, rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape), winograd,
                  per_tile=False)


def test_winograd_toggle_and_determinism(rng, monkeypatch):
    """Forced to each variant and off, all paths agree with the reference but
    not bit for bit (so the switch does select another algorithm); on, y and
    dx do not depend on the thread count."""
    x = rng.standard_normal((4, 10, 11, 24)).astype(np.float32)
    wt = rng.standard_normal((3, 3, 24, 20)).astype(np.float32)
    dy = rng.standard_normal((4, 10, 11, 20)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    expected = ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1)
    bound = abs_conv(x, wt, pads)
    previous = cnnc.get_num_threads()
    results = {}
    try:
        for mode in ("0", "1", "4"):
            monkeypatch.setenv("CNNC_WINOGRAD", mode)
            for threads in (1, 2):
                cnnc.set_num_threads(threads)
                y = cnnc.ops.conv2d(x, wt, padding="same")
                dx, dw, _ = cnnc.ops.conv2d_backward(x, wt, dy, padding="same")
                assert_within(y, expected, bound, "4" if mode == "4" else "2")
                results[mode, threads] = (y, dx, dw)
                np.testing.assert_array_equal(cnnc.ops.conv2d_backward(x, wt, dy, padding="same")[1], dw)
    finally:
        cnnc.set_num_threads(previous)
    for k in range(3):
        for mode in ("1", "4"):
            # The weight gradient's per-thread partials make it depend on
            # the thread count (like the GEMM path's); y and dx do not.
            if k < 2:
                np.testing.assert_array_equal(results[mode, 1][k], results[mode, 2][k])
            for threads in (1, 2):
                assert not np.array_equal(results["0", threads][k], results[mode, threads][k])
                assert not np.array_equal(results["4", threads][k], results["1", threads][k])


@pytest.mark.parametrize("mode", ["2", "4"])
def test_winograd_deterministic_mode_any_thread_count(rng, monkeypatch, mode):
    """In deterministic mode all three passes give the same bits at 1, 2, 3
    and 5 threads, and again on a second run; the weight gradients of 64 and
    200 channels take the per-part partials and the split planes (their
    partials would pass 16 MiB)."""
    monkeypatch.setenv("CNNC_WINOGRAD", mode)
    previous = cnnc.get_num_threads(), cnnc.get_deterministic()
    try:
        cnnc.set_deterministic(True)
        for n, hw, c in [(6, 14, 64), (4, 24, 200)]:
            x = rng.standard_normal((n, hw, hw, c)).astype(np.float32)
            wt = (rng.standard_normal((3, 3, c, c)) / 24).astype(np.float32)
            dy = rng.standard_normal((n, hw, hw, c)).astype(np.float32)
            results = []
            for threads in (1, 2, 3, 5, 2):
                cnnc.set_num_threads(threads)
                y = cnnc.ops.conv2d(x, wt, padding="same")
                dx, dw, _ = cnnc.ops.conv2d_backward(x, wt, dy, padding="same")
                results.append((y, dx, dw))
            for got in results[1:]:
                for a, b in zip(got, results[0]):
                    np.testing.assert_array_equal(a, b)
            pads = ((1, 1), (1, 1))
            _, rdw, _ = ref_conv2d_grads(x, wt, dy, (1, 1), pads, (1, 1), 1)
            _, dw_bound, _ = ref_conv2d_grads(np.abs(x), wt, np.abs(dy), (1, 1), pads, (1, 1), 1)
            assert_within(results[0][2], rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape),
                          mode, per_tile=False)
    finally:
        cnnc.set_num_threads(previous[0])
        cnnc.set_deterministic(previous[1])


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
        # Either variant may be chosen: the larger tolerance.
        assert_within(y, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(x, wt, pads), "4")


@pytest.mark.parametrize("mode, scale", [("2", 1e18), ("4", 1e17)])
def test_winograd_large_magnitudes_stay_finite(rng, monkeypatch, mode, scale):
    """Values near the float32 range: the transforms' intermediate sums must
    not overflow where the direct result is well inside it. F(2x2): inputs
    and weights up to 1e18 give outputs near 1e36 with sums of a few; F(4x4),
    whose intermediate sums grow up to 361 times larger (A^T's rows sum to
    up to 19 in magnitude), at a tenth of the scale."""
    monkeypatch.setenv("CNNC_WINOGRAD", mode)
    x = (rng.standard_normal((1, 6, 6, 4)) * scale).astype(np.float32)
    wt = (rng.standard_normal((3, 3, 4, 4)) * scale).astype(np.float32) / 64
    y = cnnc.ops.conv2d(x, wt, padding="same")
    pads = ((1, 1), (1, 1))
    assert np.isfinite(y).all()
    assert_within(y, ref_conv2d(x, wt, None, (1, 1), pads, (1, 1), 1), abs_conv(x, wt, pads), mode)


@pytest.mark.parametrize("mode, tiles_hit", [("2", (slice(2, 6), slice(2, 6))),
                                             ("4", (slice(0, 8), slice(0, 8)))])
def test_winograd_non_finite_inputs_stay_local(rng, monkeypatch, mode, tiles_hit):
    """A NaN input makes the outputs whose windows hold it NaN, as the direct
    sum does, and spreads no further than the m x m output tiles whose
    (m + 2) x (m + 2) input tiles hold it."""
    monkeypatch.setenv("CNNC_WINOGRAD", mode)
    x = rng.standard_normal((1, 14, 14, 16)).astype(np.float32)
    wt = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    x[0, 5, 4, 3] = np.nan
    y = cnnc.ops.conv2d(x, wt, padding="valid")   # 12 x 12 outputs
    bad = ~np.isfinite(y[0]).all(axis=-1)
    window = np.zeros((12, 12), bool)
    window[3:6, 2:5] = True                        # outputs whose 3x3 window holds (5, 4)
    assert np.isnan(y[0][window]).all()
    tiles = np.zeros((12, 12), bool)
    # F(2x2): tiles at rows / columns 2-3 and 4-5 (inputs 2-5, 4-7); F(4x4):
    # tiles at 0-3 and 4-7 (inputs 0-5, 4-9), none at 8-11.
    tiles[tiles_hit] = True
    assert not (bad & ~tiles).any()
    assert bad[tiles].any()


def test_winograd_weight_gradient_partials_are_bounded(rng, winograd):
    """At 400 channels dU is 10 MB for F(2x2), 23 MB for F(4x4): from 3 (or
    2) threads on, private partials would pass the 16 MiB bound, so the
    threads split dU's planes instead. The result matches the reference
    and no longer depends on the thread count: it is one thread's, to the
    bit."""
    # F(4x4) has a quarter of the tiles: twice the images for two threads'
    # worth of blocks.
    n, h, w, c = 2 if winograd == "2" else 4, 16, 16, 400
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
                                                   rdw.shape), winograd, per_tile=False)
            results[threads] = dw
    finally:
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(results[3], results[1])
    np.testing.assert_array_equal(results[4], results[1])


@pytest.mark.parametrize("n, hw, cin, cout", [(128, 7, 128, 128), (128, 8, 32, 448)],
                         ids=["recipe-128@7", "transposed-32-448@8"])
def test_winograd4_weight_gradient_split_planes(isa, rng, monkeypatch, n, hw, cin, cout):
    """Deterministic mode's 16 partial dU would pass 16 MiB here, so the
    team transforms each block of tiles together (a slice of its tiles per
    thread; the last block of 8 tiles leaves the second of two threads
    none) and each thread adds it into its own planes of dU: the weight
    gradient matches the float64 reference and has the same bits at 1, 2
    and 3 threads. The second case computes dU transposed (448 rows)."""
    monkeypatch.setenv("CNNC_WINOGRAD", "4")
    x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
    wt = (rng.standard_normal((3, 3, cin, cout)) / 24).astype(np.float32)
    dy = rng.standard_normal((n, hw, hw, cout)).astype(np.float32)
    previous = cnnc.get_num_threads(), cnnc.get_deterministic()
    results = []
    try:
        cnnc.set_deterministic(True)
        for threads in (1, 2, 3):
            cnnc.set_num_threads(threads)
            results.append(cnnc.ops.conv2d_backward(x, wt, dy, padding="same", need_dx=False)[1])
    finally:
        cnnc.set_num_threads(previous[0])
        cnnc.set_deterministic(previous[1])
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
    pads = ((1, 1), (1, 1))
    _, rdw, _ = ref_conv2d_grads(x, wt, dy, (1, 1), pads, (1, 1), 1)
    _, dw_bound, _ = ref_conv2d_grads(np.abs(x), wt, np.abs(dy), (1, 1), pads, (1, 1), 1)
    assert_within(results[0], rdw, np.broadcast_to(dw_bound.max(axis=(0, 1), keepdims=True), rdw.shape), "4",
                  per_tile=False)
