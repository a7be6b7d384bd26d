# Declarations every bridge module shares: the status codes and the check
# that turns a failed C call into a Python exception.
from libc.stdint cimport int64_t

cdef extern from "cnnc.h" nogil:
    ctypedef enum cnnc_status:
        CNNC_OK
        CNNC_ERR_INVALID_ARGUMENT
        CNNC_ERR_SHAPE
        CNNC_ERR_OVERFLOW
        CNNC_ERR_OUT_OF_MEMORY
        CNNC_ERR_UNSUPPORTED
        CNNC_ERR_INTERNAL
        CNNC_ERR_FORMAT
        CNNC_ERR_IO
    const char *cnnc_last_error()
    const char *cnnc_status_string(cnnc_status status)


cdef inline int check_status(cnnc_status status) except -1:
    """Raise the Python exception matching a non-OK status."""
    if status == CNNC_OK:
        return 0
    message = cnnc_last_error().decode("utf-8", "replace")
    if status == CNNC_ERR_OUT_OF_MEMORY:
        raise MemoryError(message)
    if status == CNNC_ERR_OVERFLOW:
        raise OverflowError(message)
    if status == CNNC_ERR_UNSUPPORTED:
        raise RuntimeError(message)
    if status == CNNC_ERR_INTERNAL:
        raise RuntimeError(message)
    if status == CNNC_ERR_IO:
        raise OSError(message)
    raise ValueError(message)
