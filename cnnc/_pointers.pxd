# Raw data pointers of arrays already validated as C-contiguous (and, for
# outputs, writable) by cnnc._arrays: the buffer protocol gives the pointer
# without building a typed memoryview, which costs about a microsecond per
# array on the small arrays where per-call overhead matters. The caller keeps
# a reference to the array for as long as the pointer is used.
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE


cdef inline void *data_ptr(obj, bint writable) except NULL:
    """Pointer to the first element of a non-empty C-contiguous array; None gives NULL's stand-in error."""
    cdef Py_buffer view
    if obj is None:
        raise ValueError("internal: no array")
    PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE | PyBUF_WRITABLE if writable else PyBUF_SIMPLE)
    cdef void *p = view.buf
    PyBuffer_Release(&view)
    if p == NULL:
        raise ValueError("internal: array without data")
    return p


cdef inline const float *in_ptr(obj) except? NULL:
    """Read-only float pointer, NULL for None."""
    if obj is None:
        return NULL
    return <const float *>data_ptr(obj, False)


cdef inline float *out_ptr(obj) except? NULL:
    """Writable float pointer, NULL for None."""
    if obj is None:
        return NULL
    return <float *>data_ptr(obj, True)
