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
    int cnnc_get_thread_limit()
    ctypedef enum cnnc_work_kind:
        pass
    long long cnnc_work_grain(cnnc_work_kind kind)
    int cnnc_threads_for_kind(cnnc_work_kind kind, long long work)
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
    """Threads used by the parallel kernels (n >= 1): the most any operation
    takes; each takes fewer when its work is too small to use them all.
    Above ``get_thread_limit()`` the count is capped to that limit with a
    RuntimeWarning."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"number of threads must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    limit = cnnc_get_thread_limit()
    if n > limit:
        import warnings
        warnings.warn(f"{n} threads is above the limit of {limit} on this machine; "
                      f"using {limit}", RuntimeWarning, stacklevel=2)
        n = limit
    check_status(cnnc_set_num_threads(n))


def get_num_threads():
    """Threads used by the parallel kernels."""
    return cnnc_get_num_threads()


def get_thread_limit():
    """The most threads ``set_num_threads`` accepts on this machine (8 per
    processor, 64 at least, within OMP_THREAD_LIMIT and the process limit)."""
    return cnnc_get_thread_limit()


# The families of the thread-choice rule, in the order of cnnc_work_kind.
WORK_KINDS = ("elementwise", "reduce", "pool", "augment", "gemm", "conv", "depthwise",
              "bias_grad")


def _work_kind(kind):
    if kind not in WORK_KINDS:
        raise ValueError(f"kind must be one of {WORK_KINDS}, got {kind!r}")
    return WORK_KINDS.index(kind)


def work_grain(kind):
    """The least work per thread of a kernel family (see ``threads_for``)."""
    return cnnc_work_grain(<cnnc_work_kind><int>_work_kind(kind))


def threads_for(kind, work):
    """Threads an operation of family ``kind`` doing ``work`` units takes now:
    ``min(get_num_threads(), work // work_grain(kind))``, at least 1. Units:
    elements for elementwise, reduce, bias_grad and augment, window elements
    for pool, multiply-adds for gemm, conv and depthwise."""
    if not isinstance(work, int) or isinstance(work, bool) or work < 0:
        raise ValueError(f"work must be an int >= 0, got {work!r}")
    return cnnc_threads_for_kind(<cnnc_work_kind><int>_work_kind(kind), min(work, 2**63 - 1))


def release_workspace():
    """Free the scratch buffers the calling thread keeps between calls."""
    cnnc_release_workspace()
