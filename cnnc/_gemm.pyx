# cython: language_level=3, boundscheck=False, wraparound=False
"""Matrix multiply (src/include/cnnc/gemm.h)."""
from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
import numpy as np

cdef extern from "cnnc.h" nogil:
    ctypedef enum cnnc_transpose:
        CNNC_NO_TRANS
        CNNC_TRANS
    cnnc_status cnnc_sgemm(cnnc_transpose trans_a, cnnc_transpose trans_b,
                           int64_t M, int64_t N, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B, int64_t ldb,
                           float beta, float *C, int64_t ldc)

__all__ = ["matmul"]


cdef int64_t _row_stride(x):
    """Row stride in elements if x (2-D float32) can be passed in place:
    unit column stride and a positive row stride covering a row; else -1."""
    rows, cols = x.shape
    s0, s1 = x.strides
    if rows <= 1 or cols == 0:
        return max(cols, 1)
    if cols > 1 and s1 != 4:
        return -1
    if s0 <= 0 or s0 % 4 or s0 // 4 < cols:
        return -1
    return s0 // 4


def _as_matrix(x, name):
    """x as a 2-D float32 array in a layout cnnc_sgemm reads directly."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        try:
            if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
                raise TypeError
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            kind = getattr(getattr(x, "dtype", None), "name", type(x).__name__)
            raise TypeError(f"{name} must be a real numeric array, got {kind}") from None
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
    if _row_stride(x) < 0:
        x = np.ascontiguousarray(x)
    return x


def matmul(a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out, in float32.

    op(a) is ``a.T`` if ``trans_a`` else ``a`` (shape (M, K)); op(b) is
    ``b.T`` if ``trans_b`` else ``b`` (shape (K, N)). Returns ``out`` of shape
    (M, N).

    ``a`` and ``b`` are read in place when they are float32 2-D arrays whose
    columns are contiguous and whose rows are a positive stride apart (C order,
    or a slice of rows/columns of a C-order array); other layouts are copied
    to C order and other real dtypes are converted to float32.

    ``out`` (required when ``beta != 0``, since its old value is used) must be
    a writeable float32 (M, N) array with contiguous columns and a positive
    row stride; it is never converted. With ``beta == 0`` its old contents,
    NaN included, are ignored. Runs on ``cnnc.get_num_threads()`` threads with
    the GIL released.
    """
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if Kb != K:
        raise ValueError(
            f"b: op(b) has {Kb} rows but op(a) has {K} columns "
            f"(a {a.shape}{', transposed' if trans_a else ''}, b {b.shape}{', transposed' if trans_b else ''})")
    alpha = float(alpha)
    beta = float(beta)
    if out is None:
        if beta != 0.0:
            raise ValueError("out: beta != 0 needs out, whose old value it scales")
        out = np.empty((M, N), dtype=np.float32)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        if out.dtype != np.float32:
            raise TypeError(f"out must have dtype float32, got {out.dtype}")
        if out.shape != (M, N):
            raise ValueError(f"out has shape {out.shape}, expected {(M, N)}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if _row_stride(out) < 0:
            raise ValueError("out must have contiguous columns and a positive row stride")
        # The product reads a and b while writing out: give it private copies.
        if np.may_share_memory(out, a):
            a = a.copy()
        if np.may_share_memory(out, b):
            b = b.copy()
    if M == 0 or N == 0:
        return out

    cdef const float[:, :] av = a if a.size else None
    cdef const float[:, :] bv = b if b.size else None
    cdef float[:, :] cv = out
    cdef const float *ap = &av[0, 0] if a.size else NULL
    cdef const float *bp = &bv[0, 0] if b.size else NULL
    cdef float *cp = &cv[0, 0]
    cdef int64_t lda = _row_stride(a), ldb = _row_stride(b), ldc = _row_stride(out)
    cdef cnnc_transpose ta = CNNC_TRANS if trans_a else CNNC_NO_TRANS
    cdef cnnc_transpose tb = CNNC_TRANS if trans_b else CNNC_NO_TRANS
    cdef int64_t m = M, n = N, k = K
    cdef float fa = alpha, fb = beta
    cdef cnnc_status status
    with nogil:
        status = cnnc_sgemm(ta, tb, m, n, k, fa, ap, lda, bp, ldb, fb, cp, ldc)
    check_status(status)
    return out
