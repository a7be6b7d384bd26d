# cython: language_level=3, boundscheck=False, wraparound=False
"""Matrix multiply (src/include/cnnc/gemm.h)."""
from libc.stdint cimport int64_t
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_RECORDS_RO, PyBUF_RECORDS
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


cdef int64_t _ld(const Py_buffer *view):
    """Leading dimension (row stride in floats) of a 2-D float32 buffer if
    cnnc_sgemm can read it in place: unit column stride and a positive row
    stride covering a row. -1 otherwise."""
    cdef int64_t rows = view.shape[0], cols = view.shape[1]
    cdef int64_t s0 = view.strides[0], s1 = view.strides[1]
    if rows <= 1 or cols == 0:
        return cols if cols > 1 else 1
    if cols > 1 and s1 != 4:
        return -1
    if s0 <= 0 or s0 % 4 or s0 // 4 < cols:
        return -1
    return s0 // 4


cdef bint _is_float32_2d(const Py_buffer *view):
    return (view.ndim == 2 and view.itemsize == 4 and view.format != NULL
            and (view.format[0] == b'f' or (view.format[0] in b'<=@' and view.format[1] == b'f'
                                            and view.format[2] == 0)))


cdef object _matrix(x, str name, Py_buffer *view):
    """Acquire `view` on x as a 2-D float32 matrix that cnnc_sgemm reads in
    place, converting or copying x when needed; returns the object viewed."""
    if isinstance(x, np.ndarray) and (<object>x).dtype == np.float32:
        PyObject_GetBuffer(x, view, PyBUF_RECORDS_RO)
        if _is_float32_2d(view) and _ld(view) >= 0:
            return x
        PyBuffer_Release(view)
    else:
        try:
            if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
                raise TypeError
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            kind = getattr(getattr(x, "dtype", None), "name", type(x).__name__)
            raise TypeError(f"{name} must be a real numeric array, got {kind}") from None
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
    x = np.ascontiguousarray(x)
    PyObject_GetBuffer(x, view, PyBUF_RECORDS_RO)
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
    cdef Py_buffer va, vb, vc
    cdef bint ta = bool(trans_a), tb = bool(trans_b)
    cdef float fa = alpha, fb = beta
    cdef int64_t M, N, K, Kb, lda, ldb, ldc
    cdef cnnc_status status
    a = _matrix(a, "a", &va)
    try:
        b = _matrix(b, "b", &vb)
    except BaseException:
        PyBuffer_Release(&va)
        raise
    try:
        M, K = (va.shape[1], va.shape[0]) if ta else (va.shape[0], va.shape[1])
        Kb, N = (vb.shape[1], vb.shape[0]) if tb else (vb.shape[0], vb.shape[1])
        if Kb != K:
            raise ValueError(
                f"b: op(b) has {Kb} rows but op(a) has {K} columns "
                f"(a {a.shape}{', transposed' if ta else ''}, b {b.shape}{', transposed' if tb else ''})")
        if out is None:
            if fb != 0.0:
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
        PyObject_GetBuffer(out, &vc, PyBUF_RECORDS)
        try:
            ldc = _ld(&vc)
            if ldc < 0:
                raise ValueError("out must have contiguous columns and a positive row stride")
            if M == 0 or N == 0:
                return out
            lda = _ld(&va)
            ldb = _ld(&vb)
            # The product reads a and b while writing out: give it private
            # copies when the memory ranges overlap.
            if _overlaps(&vc, &va):
                PyBuffer_Release(&va)
                a = _matrix(np.array(a, dtype=np.float32, order="C"), "a", &va)
                lda = _ld(&va)
            if _overlaps(&vc, &vb):
                PyBuffer_Release(&vb)
                b = _matrix(np.array(b, dtype=np.float32, order="C"), "b", &vb)
                ldb = _ld(&vb)
            with nogil:
                status = cnnc_sgemm(CNNC_TRANS if ta else CNNC_NO_TRANS,
                                    CNNC_TRANS if tb else CNNC_NO_TRANS, M, N, K, fa,
                                    <const float *>va.buf if K else NULL, lda,
                                    <const float *>vb.buf if K else NULL, ldb, fb,
                                    <float *>vc.buf, ldc)
            check_status(status)
            return out
        finally:
            PyBuffer_Release(&vc)
    finally:
        PyBuffer_Release(&va)
        PyBuffer_Release(&vb)


cdef bint _overlaps(const Py_buffer *x, const Py_buffer *y):
    """Whether the address ranges spanned by two 2-D buffers intersect."""
    if x.len == 0 or y.len == 0:
        return False
    cdef char *x0 = <char *>x.buf
    cdef char *y0 = <char *>y.buf
    cdef char *x1 = x0 + (x.shape[0] - 1) * x.strides[0] + (x.shape[1] - 1) * x.strides[1] + x.itemsize
    cdef char *y1 = y0 + (y.shape[0] - 1) * y.strides[0] + (y.shape[1] - 1) * y.strides[1] + y.itemsize
    return x0 < y1 and y0 < x1
