"""How cnnc's OpenMP worker threads, and NumPy's OpenBLAS threads, wait
between parallel regions.

By default libgomp spins for about 300,000 pause instructions (up to
milliseconds) before a waiting thread sleeps. That is fastest on a machine
cnnc has to itself and collapses when other processes or thread pools want
the cores: a spinning worker takes the core from the thread everybody waits
for. cnnc therefore asks for a short bounded spin (``SPIN_COUNT``, tens of
microseconds: long enough to bridge the gaps between the regions of one
training step) and then sleep, unless the user chose a policy with
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.

OpenBLAS (NumPy's BLAS) has the same habit: after each threaded call its
workers spin for 2**28 cycles (about 0.1 s) before they sleep, taking a core
from cnnc's next operation (measured: cnnc's training at 57-75 % of its speed
with NumPy matrix products between its steps). When NumPy is first imported
by cnnc, OpenBLAS is loaded with ``OPENBLAS_THREAD_TIMEOUT`` =
``OPENBLAS_TIMEOUT`` (2**16 cycles, tens of microseconds), unless the user
set it (or ``GOTO_THREAD_TIMEOUT``).

Both libraries read these variables once, when they are loaded, so the
policy must be in the environment before that; it is removed again afterwards
so that child processes see the environment the user set.
"""
import os
import sys

SPIN_COUNT = "1000"
OPENBLAS_TIMEOUT = "16"

_USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_USER_OPENBLAS_SETTINGS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")


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
    chosen = policy()
    os.environ.update(chosen)
    try:
        return load()
    finally:
        for name in chosen:
            os.environ.pop(name, None)
