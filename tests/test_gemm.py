"""cnnc.ops.matmul / cnnc_sgemm against float64 NumPy products."""
import numpy as np
import pytest

import cnnc
from cnnc.ops import matmul
from team_runs import on_one_and_two_threads

# Micro-tile sizes MR x NR of the paths: scalar 4 x 8, avx2 6 x 16,
# avx512 14 x 32; cache blocks MC 128/240/336, KC 256, NC 2048/4096.
EDGE_SHAPES = [
    (1, 1, 1), (1, 1, 9), (2, 3, 1), (5, 7, 11), (13, 31, 17), (14, 32, 16), (15, 33, 257),
    (29, 65, 3), (6, 16, 255), (7, 17, 256), (97, 1, 64), (1, 97, 64), (64, 10, 128),
    (127, 129, 13), (337, 3, 20), (3, 241, 20), (50, 150, 37), (29, 200, 300), (33, 161, 16),
]


def reference(a, b, trans_a, trans_b, alpha=1.0, beta=0.0, c=None):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    r = alpha * ((a64.T if trans_a else a64) @ (b64.T if trans_b else b64))
    if beta != 0.0:
        r += beta * c.astype(np.float64)
    return r


def operands(rng, M, N, K, trans_a, trans_b):
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    return a, b


def assert_close(got, a, b, want, K):
    # float32 accumulation error grows like sqrt(K) * |a||b|.
    scale = np.abs(a.astype(np.float64)).max(initial=0) * np.abs(b.astype(np.float64)).max(initial=0)
    tol = 1e-6 * (4 + K) * max(scale, 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_edge_shapes(isa, threads, rng, trans_a, trans_b):
    for M, N, K in EDGE_SHAPES:
        a, b = operands(rng, M, N, K, trans_a, trans_b)
        got = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert got.shape == (M, N) and got.dtype == np.float32
        assert_close(got, a, b, reference(a, b, trans_a, trans_b), K)


@pytest.mark.parametrize("M,N,K", [(341, 70, 520), (20, 4100, 7), (700, 33, 300), (3, 100, 2000),
                                   (300, 150, 513), (20, 1, 70000)])
def test_block_boundaries(isa, threads, rng, M, N, K):
    """Crosses MC, KC and NC (and the K split of the skinny path), with
    every transpose pair."""
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b = operands(rng, M, N, K, trans_a, trans_b)
            got = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
            assert_close(got, a, b, reference(a, b, trans_a, trans_b), K)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.5, 0.0), (-0.5, 1.0), (1.0, -2.0), (0.0, 0.5), (0.0, 0.0)])
def test_alpha_beta(isa, threads, rng, alpha, beta):
    M, N, K = 37, 45, 29
    a, b = operands(rng, M, N, K, False, True)
    c = rng.standard_normal((M, N)).astype(np.float32)
    want = reference(a, b, False, True, alpha, beta, c)
    if beta == 0.0:
        c[:] = np.nan  # beta == 0 must ignore what C held
    got = matmul(a, b, trans_b=True, out=c, alpha=alpha, beta=beta)
    assert got is c
    assert_close(got, a, b, want, K)


def test_k_zero_scales_out(isa):
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), out=c, beta=3.0)
    np.testing.assert_array_equal(c, 3 * np.arange(6).reshape(2, 3))
    assert matmul(np.zeros((0, 4)), np.ones((4, 5))).shape == (0, 5)
    np.testing.assert_array_equal(matmul(np.ones((2, 0)), np.ones((0, 5))), np.zeros((2, 5)))


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_strided_operands(isa, threads, rng, trans_a, trans_b):
    """Row-strided views are read in place (leading dimension > row)."""
    big_a = rng.standard_normal((90, 80)).astype(np.float32)
    big_b = rng.standard_normal((90, 80)).astype(np.float32)
    a = big_a[3:50, 5:38]
    b = big_b[10:43, 2:61] if not trans_b else big_b[10:69, 2:35]
    if trans_a:
        a = big_a[3:36, 5:52]
    out_big = np.full((70, 90), 7.0, np.float32)
    M = a.shape[1] if trans_a else a.shape[0]
    N = b.shape[0] if trans_b else b.shape[1]
    K = a.shape[0] if trans_a else a.shape[1]
    out = out_big[1:1 + M, 4:4 + N]
    matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
    assert_close(out, a, b, reference(a, b, trans_a, trans_b), K)
    untouched = np.ones(out_big.shape, bool)
    untouched[1:1 + M, 4:4 + N] = False
    assert np.all(out_big[untouched] == 7.0)


def test_other_layouts_and_dtypes(rng):
    a = rng.standard_normal((30, 20))          # float64: converted
    b = np.asfortranarray(rng.standard_normal((20, 25)).astype(np.float32))  # copied
    got = matmul(a, b[:, ::-1], trans_a=False)
    np.testing.assert_allclose(got, a @ b[:, ::-1], rtol=1e-4, atol=1e-4)
    got = matmul([[1, 2], [3, 4]], np.eye(2, dtype=np.int32))
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])


def test_out_aliasing_input(rng):
    a = rng.standard_normal((16, 16)).astype(np.float32)
    b = rng.standard_normal((16, 16)).astype(np.float32)
    want = reference(a, b, False, False, 1.0, 1.0, a)
    matmul(a, b, out=a, beta=1.0)
    assert_close(a, b, b, want, 16)


@pytest.mark.parametrize("shape", [(4096, 32, 288), (64, 3000, 576), (576, 64, 6272), (32, 10, 128)])
def test_cnn_shapes(isa, threads, rng, shape):
    """Skinny shapes of convolutions (forward, backward-data, backward-weights)."""
    M, N, K = shape
    trans_a = M == 576  # weight gradient: x_col^T @ dy
    a, b = operands(rng, M, N, K, trans_a, False)
    got = matmul(a, b, trans_a=trans_a)
    assert_close(got, a, b, reference(a, b, trans_a, False), K)


def test_repeatable_bit_for_bit(isa, threads, rng):
    a, b = operands(rng, 300, 130, 700, False, True)
    first = matmul(a, b, trans_b=True)
    for _ in range(3):
        assert np.array_equal(matmul(a, b, trans_b=True), first)


def test_thread_counts_agree_closely(rng):
    a, b = operands(rng, 200, 150, 300, False, False)
    one, two = on_one_and_two_threads(lambda: matmul(a, b))
    # K is never split across threads: the sums are the same.
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("M,N,K", [(1, 1000, 1024), (2, 999, 1100), (49, 1024, 512), (7, 300, 3000),
                                   (35, 2000, 300), (1, 20, 300000)])
def test_few_rows_split_bit_for_bit(isa, rng, M, N, K):
    """Products of few rows go to two threads by the panels of C (a dense
    layer at batch 1, 49 rows of a 7 x 7 image): the same sums as on one
    thread, to the last bit (the last shape has a single NR panel for two
    threads)."""
    a, b = operands(rng, M, N, K, False, False)
    one, two = on_one_and_two_threads(lambda: matmul(a, b))
    np.testing.assert_array_equal(one, two)
    assert_close(two, a, b, reference(a, b, False, False), K)


def test_bad_arguments():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="b"):
        matmul(a, np.ones((5, 2), np.float32))
    # The GEMM kernel takes 2-D operands; ops.matmul passes others to NumPy's
    # matmul, as keras.ops.matmul (vectors, stacks of matrices).
    from cnnc._gemm import matmul as gemm
    with pytest.raises(ValueError, match="2-D"):
        gemm(np.ones(4, np.float32), a)
    with pytest.raises(ValueError, match="b must be 2-D"):
        gemm(a, np.ones((4, 2, 1), np.float32))
    with pytest.raises(TypeError, match="a must be"):
        gemm(np.array(["x"]), a)
    np.testing.assert_allclose(matmul(np.ones(3, np.float32), a), np.full(4, 3.0))
    stack = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.testing.assert_allclose(matmul(a, stack), a @ stack)
    with pytest.raises(ValueError):
        matmul(np.ones(4, np.float32), a)
    with pytest.raises(ValueError, match="out has shape"):
        matmul(a, a, trans_b=True, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="float32"):
        matmul(a, a, trans_b=True, out=np.empty((3, 3), np.float64))
    with pytest.raises(ValueError, match="beta"):
        matmul(a, a, trans_b=True, beta=1.0)
    with pytest.raises(ValueError, match="columns"):
        matmul(a, a, trans_b=True, out=np.empty((3, 6), np.float32)[:, ::2])
    ro = np.empty((3, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        matmul(a, a, trans_b=True, out=ro)
