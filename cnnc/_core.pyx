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
    int cnnc_get_usable_cpus()
    int cnnc_get_cpu_quota(const char *root)
    int cnnc_get_team_limit()
    void cnnc_set_oversubscription(int allowed)
    int cnnc_get_oversubscription()
    void cnnc_set_deterministic(int enabled)
    int cnnc_get_deterministic()
    void cnnc_set_adaptive_team(int enabled)
    int cnnc_get_adaptive_team()
    cnnc_status cnnc_set_running_limit(int n)
    int cnnc_get_running_limit()
    int cnnc_threads_under_contention(int team, int cpus, const double *wait_shares, int count)
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


_warned_above_cpus = False


def set_num_threads(n):
    """Threads used by the parallel kernels (n >= 1): the cap on any
    operation's team; each takes fewer when its work is too small to use
    them all, and none takes more than the CPUs the process may run on
    (``get_usable_cpus()``; a larger n is kept as the cap, with a
    RuntimeWarning the first time). Above ``get_thread_limit()`` the count is
    capped to that limit with a RuntimeWarning."""
    global _warned_above_cpus
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"number of threads must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    limit = cnnc_get_thread_limit()
    import warnings
    if n > limit:
        warnings.warn(f"{n} threads is above the limit of {limit} on this machine; "
                      f"using {limit}", RuntimeWarning, stacklevel=2)
        n = limit
    check_status(cnnc_set_num_threads(n))
    cpus = cnnc_get_usable_cpus()
    if n > cpus and not cnnc_get_oversubscription() and not _warned_above_cpus:
        _warned_above_cpus = True
        warnings.warn(f"{n} threads asked for, but this process may run on {cpus} CPUs: each operation "
                      f"takes at most {cpus} threads (cnnc.get_usable_cpus(); warned once)",
                      RuntimeWarning, stacklevel=2)


def get_num_threads():
    """The thread cap as set (``set_num_threads`` or OMP_NUM_THREADS)."""
    return cnnc_get_num_threads()


def get_usable_cpus():
    """CPUs this process may run on (its affinity mask, re-read at most every
    0.1 s, and at most ``get_cpu_quota()`` where that is set): no operation
    takes more threads than this."""
    return cnnc_get_usable_cpus()


def get_cpu_quota():
    """CPUs the CPU quota of this process's cgroup allows (cgroup v2
    ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, rounded up;
    the least over the cgroup and its ancestors), or 0 where there is none."""
    return cnnc_get_cpu_quota(NULL)


def get_team_limit():
    """The most threads one operation takes now:
    ``min(get_num_threads(), get_usable_cpus())`` (the cap alone while
    oversubscription is allowed)."""
    return cnnc_get_team_limit()


def set_oversubscription(allowed):
    """Let teams take up to ``get_num_threads()`` threads even on fewer CPUs
    (off by default): for testing large teams' work partitions on a small
    machine; slower wherever it changes anything."""
    cnnc_set_oversubscription(1 if allowed else 0)


def get_oversubscription():
    return bool(cnnc_get_oversubscription())


def set_deterministic(enabled):
    """Make every kernel's result the same bits whatever the thread count
    (README, "Threads"): the convolution weight/bias gradients and strided
    data gradients then split their work into parts fixed by the shape and
    add them in a fixed order."""
    cnnc_set_deterministic(1 if enabled else 0)


def get_deterministic():
    """Whether results are the same bits across thread counts (see
    ``set_deterministic``)."""
    return bool(cnnc_get_deterministic())


def set_adaptive_team(enabled):
    """Run teams on the CPUs other busy processes leave free (on by default;
    ``CNNC_ADAPTIVE_TEAM=0`` in the environment turns it off): cnnc samples
    every 50 ms how long its threads waited for a CPU during its own
    operations (not while other code runs between them) and lowers
    ``get_running_limit()`` accordingly (``threads_under_contention``). Only
    the threads running change, never the work partition, so results are the
    same bits as on idle CPUs. Off while oversubscription is allowed."""
    cnnc_set_adaptive_team(1 if enabled else 0)


def get_adaptive_team():
    """Whether teams adapt to busy CPUs (``set_adaptive_team``)."""
    return bool(cnnc_get_adaptive_team())


def set_running_limit(n):
    """Run every team on at most ``n`` threads (n >= 1) instead of adapting
    to the load, or remove that limit (0). The work partition stays that of
    ``get_team_limit()`` threads, so results do not change, unlike with
    ``set_num_threads``."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"running thread limit must be an int, got {type(n).__name__}")
    check_status(cnnc_set_running_limit(n))


def get_running_limit():
    """The most threads a team runs on now: ``get_team_limit()``, lowered by
    ``set_running_limit`` or by the adaptive team under load."""
    return cnnc_get_running_limit()


def threads_under_contention(team, cpus, wait_shares):
    """The adaptive team's rule: threads to run a team of at most ``team``
    on ``cpus`` CPUs whose active threads waited these shares (0..1) of their
    runnable time for a CPU. Each thread's cores held about w / (1 - w) other
    tasks (w capped at 0.9); the team runs on the CPUs left, rounded, within
    [1, team]."""
    import numpy as np
    cdef double[::1] shares = np.ascontiguousarray(wait_shares, dtype=np.float64).reshape(-1)
    cdef const double *data = &shares[0] if shares.shape[0] else NULL
    return cnnc_threads_under_contention(int(team), int(cpus), data, <int>shares.shape[0])


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
    ``min(get_team_limit(), work // work_grain(kind))``, at least 1: the parts
    its work is split into, which run on at most ``get_running_limit()``
    threads. Units:
    elements for elementwise, reduce, bias_grad and augment, window elements
    for pool, multiply-adds for gemm, conv and depthwise."""
    if not isinstance(work, int) or isinstance(work, bool) or work < 0:
        raise ValueError(f"work must be an int >= 0, got {work!r}")
    return cnnc_threads_for_kind(<cnnc_work_kind><int>_work_kind(kind), min(work, 2**63 - 1))


def release_workspace():
    """Free the scratch buffers the calling thread keeps between calls."""
    cnnc_release_workspace()
