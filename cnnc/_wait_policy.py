"""How cnnc's OpenMP worker threads, and NumPy's OpenBLAS threads, wait
between parallel regions.

By default libgomp spins for about 300,000 pause instructions (up to
milliseconds) before a waiting thread sleeps. That is fastest on a machine
cnnc has to itself and collapses when other processes or thread pools want
the cores: a spinning worker takes the core from the thread everybody waits
for. cnnc therefore asks for a short bounded spin (``SPIN_COUNT``, about 0.3 ms
on a 4 GHz core) and then sleep, unless the user chose a policy with
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``. The spin must bridge the gaps
between the regions of one training step or one inference call: a worker
that fell asleep is woken at the next region, which costs tens to hundreds of
microseconds on a virtual machine and reads as run-queue wait to the adaptive
team. A tenth of this spin (30 us) left MobileNet's batch-1 calls (28
regions in 3 ms) at 0.67-0.79x onnxruntime's speed on 2 threads, with the
adaptive team shrinking after most calls; with this one they run at
1.01-1.10x, and busy neighbours still keep their share.

OpenBLAS (NumPy's BLAS) has the same habit: after each threaded call its
workers spin for 2**28 cycles (about 0.1 s) before they sleep, taking a core
from cnnc's next operation (measured: cnnc's training at 57-75 % of its speed
with NumPy matrix products between its steps). When NumPy is first imported
by cnnc, OpenBLAS is loaded with ``OPENBLAS_THREAD_TIMEOUT`` =
``OPENBLAS_TIMEOUT`` (2**16 cycles, tens of microseconds), unless the user
set it (or ``GOTO_THREAD_TIMEOUT``).

Those variables do nothing when NumPy was imported first, which is the usual
order: OpenBLAS has then started its workers with the long wait. In that
case ``import cnnc`` (``bound_loaded_openblas_wait``) stops OpenBLAS's
workers, sets the bounded wait and lets OpenBLAS start them again at its next
threaded call, as it does itself after a fork. That is only done while no
other Python thread runs (none can be inside OpenBLAS then) and where the
user set no wait of their own.

Both libraries read these variables once, when they are loaded, so the
policy must be in the environment before that; it is removed again afterwards
so that child processes see the environment the user set. PyTorch's wheel
ships a libgomp of the same soname as the one cnnc links: when ``import
torch`` came first, that libgomp is already loaded with its own long spin,
which then applies to cnnc's team as well (README, "Other thread pools").
"""
import ctypes
import os
import sys
import threading

SPIN_COUNT = "10000"
OPENBLAS_TIMEOUT = "16"

_USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_USER_OPENBLAS_SETTINGS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")


_openblas_bounded_at_load = False


def policy():
    """The variables cnnc would set now for loading: {name: value}."""
    chosen = {}
    if not any(name in os.environ for name in _USER_SETTINGS):
        chosen["GOMP_SPINCOUNT"] = SPIN_COUNT
    if "numpy" not in sys.modules and not any(name in os.environ for name in _USER_OPENBLAS_SETTINGS):
        chosen["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_TIMEOUT
    return chosen


def load_with_policy(load):
    """Call ``load()`` (the import of NumPy and of the C extension) with the
    bounded-wait policy in the environment where the user set none; returns
    its result."""
    global _openblas_bounded_at_load
    chosen = policy()
    _openblas_bounded_at_load = "OPENBLAS_THREAD_TIMEOUT" in chosen
    os.environ.update(chosen)
    try:
        return load()
    finally:
        for name in chosen:
            os.environ.pop(name, None)


def _loaded_openblas_libraries():
    """Paths of the OpenBLAS libraries this process has loaded (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            fields = [line.split(None, 5) for line in maps]
    except OSError:
        return []
    paths = {f[5].strip() for f in fields if len(f) == 6}
    return sorted(p for p in paths if "openblas" in os.path.basename(p).lower() and ".so" in p)


def bound_loaded_openblas_wait():
    """Give OpenBLAS libraries loaded before cnnc (NumPy imported first) the
    bounded wait; returns the paths of those changed."""
    if _openblas_bounded_at_load or any(name in os.environ for name in _USER_OPENBLAS_SETTINGS):
        return []
    if threading.active_count() > 1:
        return []  # another thread may be inside OpenBLAS: its pool stays
    changed = []
    for path in _loaded_openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
            read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
            timeout = lib.openblas_thread_timeout
        except (OSError, AttributeError):
            continue
        timeout.restype = ctypes.c_uint
        if timeout() != 0:
            continue  # a wait chosen when it was loaded
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_TIMEOUT
        try:
            read_env()
        finally:
            os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)
        # The workers read the wait when they start; OpenBLAS starts them
        # again at its next threaded call, as after a fork.
        shutdown()
        changed.append(path)
    return changed
