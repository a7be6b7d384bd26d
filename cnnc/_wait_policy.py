"""How cnnc's OpenMP worker threads wait between parallel regions.

By default libgomp spins for about 300,000 pause instructions (up to
milliseconds) before a waiting thread sleeps. That is fastest on a machine
cnnc has to itself and collapses when other processes or thread pools want
the cores: a spinning worker takes the core from the thread everybody waits
for. cnnc therefore asks for a short bounded spin (``SPIN_COUNT``, tens of
microseconds: long enough to bridge the gaps between the regions of one
training step) and then sleep, unless the user chose a policy with
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.

libgomp reads these variables once, when it is loaded, so the policy must be
in the environment before the C library loads; it is removed again afterwards
so that child processes see the environment the user set.
"""
import os

SPIN_COUNT = "1000"

_USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def load_with_policy(load):
    """Call ``load()`` (the import of the C extension) with the bounded-spin
    policy in the environment unless the user set one; returns its result."""
    if any(name in os.environ for name in _USER_SETTINGS):
        return load()
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        return load()
    finally:
        os.environ.pop("GOMP_SPINCOUNT", None)
