# cython: language_level=3
"""Library-wide settings: version, instruction set, threads."""
from cnnc._common cimport cnnc_status, check_status

cdef extern from "cnnc.h" nogil:
    ctypedef enum cnnc_isa:
        CNNC_ISA_SCALAR
        CNNC_ISA_AVX2
        CNNC_ISA_AVX512
        CNNC_ISA_NEON
    const char *cnnc_version()
    const char *cnnc_isa_name()
    cnnc_isa cnnc_max_isa()
    cnnc_isa cnnc_get_isa()
    cnnc_status cnnc_set_isa(cnnc_isa isa)
    cnnc_status cnnc_set_num_threads(int n)
    int cnnc_get_num_threads()
    void cnnc_release_workspace()

_ISA_NAMES = ("scalar", "avx2", "avx512", "neon")


def core_version():
    """Version string of the loaded C library."""
    return cnnc_version().decode()


def isa():
    """Name of the instruction-set path in use: 'scalar', 'avx2', 'avx512' or 'neon'."""
    return cnnc_isa_name().decode()


def max_isa():
    """Best instruction-set path this CPU and build support."""
    return _ISA_NAMES[<int>cnnc_max_isa()]


def set_isa(name):
    """Select a path this CPU runs (at or below max_isa()), e.g. 'scalar' for testing."""
    if name not in _ISA_NAMES:
        raise ValueError(f"isa must be one of {_ISA_NAMES}, got {name!r}")
    cdef int index = _ISA_NAMES.index(name)
    check_status(cnnc_set_isa(<cnnc_isa>index))


def available_isas():
    """The instruction-set paths this CPU and build can run, e.g.
    ('scalar', 'avx2', 'avx512') on x86-64 or ('scalar', 'neon') on AArch64."""
    cdef cnnc_isa active = cnnc_get_isa()
    found = []
    for index, name in enumerate(_ISA_NAMES):
        if cnnc_set_isa(<cnnc_isa>index) == 0:
            found.append(name)
    cnnc_set_isa(active)
    return tuple(found)


def set_num_threads(n):
    """Threads used by the parallel kernels (n >= 1)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"number of threads must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    check_status(cnnc_set_num_threads(n))


def get_num_threads():
    """Threads used by the parallel kernels."""
    return cnnc_get_num_threads()


def release_workspace():
    """Free the scratch buffers the calling thread keeps between calls."""
    cnnc_release_workspace()
