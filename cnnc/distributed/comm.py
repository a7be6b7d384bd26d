"""Collectives over MPI with a deadline, and the job-wide abort.

Every collective cnnc.distributed runs is non-blocking (``Iallreduce``,
``Ibcast``, ...) and waited for by polling with a deadline: a rank whose
peer died or hangs does not wait forever but aborts the whole job with a
message naming the operation. Only MPI-3 calls common to Open MPI and
MPICH are used.
"""
import json
import os
import sys
import time

import numpy as np

# Non-blocking collectives advance only inside MPI calls, so a wait polls
# continuously (yielding the core between polls, for oversubscribed nodes)
# for this long, then sleeps between polls: past it the peer is late (a
# straggler, a hung or dead rank) and polling fast gains nothing.
_FAST_POLL_SECONDS = 1.0
_SLOW_POLL_SLEEP = 1e-3
_ABORT_GRACE_SECONDS = 0.5


def import_mpi():
    """mpi4py's MPI module, or an ImportError that says what to install."""
    try:
        import mpi4py  # noqa: F401
    except ImportError as exc:
        raise ImportError("cnnc.distributed needs mpi4py and an MPI library: "
                          "pip install 'cnnc[mpi]' (with Open MPI or MPICH installed, e.g. "
                          "apt-get install openmpi-bin libopenmpi-dev, or mpich libmpich-dev)"
                          ) from exc
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:
        # The binary mpi4py wheels load libmpi.so.40 (Open MPI) or
        # libmpi.so.12 (MPICH ABI) at run time; Debian's and Ubuntu's MPICH
        # names its library libmpich.so.12, which they cannot find.
        raise ImportError(f"cnnc.distributed: mpi4py is installed but cannot load an MPI "
                          f"library ({exc}). With Debian's or Ubuntu's MPICH, build mpi4py "
                          f"against it: MPICC=mpicc.mpich pip install --no-binary mpi4py "
                          f"--no-cache-dir --force-reinstall mpi4py; or install MPICH from PyPI "
                          f"(pip install mpich) or Open MPI (apt-get install openmpi-bin)"
                          ) from exc
    return MPI


class Communicator:
    """An MPI communicator whose collectives give up after ``timeout``
    seconds by aborting the job (``MPI_Abort``) with a clear message."""

    def __init__(self, comm, timeout):
        self.MPI = import_mpi()
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = float(timeout)

    def abort(self, message, code=1):
        """Print ``message`` and stop every rank of the job."""
        sys.stderr.write(f"cnnc.distributed: rank {self.rank} of {self.size}: {message}\n")
        sys.stderr.flush()
        # MPICH's launcher forwards a rank's output asynchronously and may
        # drop what is still in the pipe when an abort tears the job down;
        # a moment's wait lets the message reach the user first.
        time.sleep(_ABORT_GRACE_SECONDS)
        self.MPI.COMM_WORLD.Abort(code)

    def wait(self, requests, what):
        """Wait for ``requests`` (a list), aborting the job past the deadline."""
        Request = self.MPI.Request
        if Request.Testall(requests):
            return
        start = time.monotonic()
        deadline = start + self.timeout
        while not Request.Testall(requests):
            now = time.monotonic()
            if now > deadline:
                self.abort(f"{what} did not complete within {self.timeout:g} s: another rank "
                           f"has probably died, hangs, or runs different code; aborting the job")
            if now - start < _FAST_POLL_SECONDS:
                os.sched_yield()
            else:
                time.sleep(_SLOW_POLL_SLEEP)

    def progress(self, requests):
        """Let MPI advance pending requests (no waiting)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def iallreduce(self, array):
        """Start an in-place sum of ``array`` (contiguous) over the ranks."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)

    def allreduce(self, array, what, op=None):
        """Sum (or ``op``) of ``array`` over the ranks, in place; returns it."""
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=op or self.MPI.SUM)
        self.wait([request], what)
        return array

    def broadcast(self, array, what, root=0):
        """Overwrite ``array`` (contiguous) with ``root``'s copy."""
        self.wait([self.comm.Ibcast(array, root=root)], what)
        return array

    def barrier(self, what):
        self.wait([self.comm.Ibarrier()], what)

    def allgather_json(self, value, what):
        """Every rank's ``value`` (a JSON-serializable object), as a list by
        rank; sent as UTF-8 bytes (no pickling)."""
        data = np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8)
        lengths = np.zeros(self.size, np.int64)
        mine = np.array([data.size], np.int64)
        self.wait([self.comm.Iallgather(mine, lengths)], what)
        out = np.empty(int(lengths.sum()), np.uint8)
        displacements = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        counts = [int(n) for n in lengths]
        self.wait([self.comm.Iallgatherv(data, [out, counts, [int(d) for d in displacements],
                                                self.MPI.BYTE])], what)
        return [json.loads(out[d:d + n].tobytes().decode())
                for d, n in zip(displacements, counts)]
