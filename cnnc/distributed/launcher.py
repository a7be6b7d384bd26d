"""Which MPI a job runs on, what its launcher told this process, and the
command that starts ranks on this machine.

Two families of MPI matter, each with its own launcher and its own
environment variables for the processes it starts:

- Open MPI: ``mpirun``/``mpiexec`` set ``OMPI_COMM_WORLD_RANK``,
  ``OMPI_COMM_WORLD_SIZE``, ``OMPI_COMM_WORLD_LOCAL_RANK`` and
  ``OMPI_COMM_WORLD_LOCAL_SIZE``; it refuses more ranks than cores unless
  given ``--oversubscribe``, binds ranks to cores by default, and refuses to
  run as root without ``OMPI_ALLOW_RUN_AS_ROOT``.
- MPICH and the libraries built on it (Intel MPI, MVAPICH): the Hydra
  launcher (``mpiexec``, ``mpiexec.hydra``) sets ``PMI_RANK``, ``PMI_SIZE``,
  ``MPI_LOCALRANKID`` and ``MPI_LOCALNRANKS``; it starts any number of ranks
  and does not bind them unless asked (``-bind-to``; Intel MPI pins by
  default, ``I_MPI_PIN=off`` stops it).

mpi4py is bound to one MPI library (built against it, or, for the binary
wheels on PyPI, loaded at run time). A launcher of the other family still
starts the processes, but each initializes MPI alone, as a job of one rank:
``DataParallel`` refuses that state with the fix rather than let every
process train (and write) by itself.

Nothing here imports mpi4py at module level.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

OPEN_MPI = "Open MPI"
MPICH = "MPICH"

# (family, rank, size, local rank, local size) variables each launcher sets.
_LAUNCHER_VARIABLES = (
    (OPEN_MPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
    (MPICH, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
)

# How to start ranks on this machine, per family: launcher names tried in
# order (Debian installs both families side by side, suffixed), and the
# flags for more ranks than cores, unbound (one machine, shared).
_LAUNCHER_NAMES = {
    OPEN_MPI: ("mpirun.openmpi", "mpiexec.openmpi", "mpirun", "mpiexec"),
    MPICH: ("mpiexec.mpich", "mpirun.mpich", "mpiexec.hydra", "mpiexec", "mpirun"),
}
_LOCAL_FLAGS = {OPEN_MPI: ("--oversubscribe", "--bind-to", "none"), MPICH: ()}

# What to tell a user whose ranks are bound to fewer cores than they could use.
UNBIND_HINT = {OPEN_MPI: "--bind-to none (or --map-by ppr:1:socket:pe=N for N cores per rank)",
               MPICH: "-bind-to none (Hydra) or I_MPI_PIN=off (Intel MPI)"}


class LauncherMismatchError(RuntimeError):
    """The launcher started several processes that MPI runs as separate
    one-rank jobs (mpi4py and the launcher belong to different MPIs)."""


@dataclass(frozen=True)
class LaunchedAs:
    """This process's place in the job, as its launcher announced it."""
    family: str
    rank: int
    size: int
    local_rank: int = None
    local_size: int = None


def launched_as(environ=None):
    """What an Open MPI or an MPICH-family launcher told this process
    (a :class:`LaunchedAs`), or None when no launcher set its variables."""
    environ = os.environ if environ is None else environ
    for family, rank, size, local_rank, local_size in _LAUNCHER_VARIABLES:
        try:
            values = [int(environ[rank]), int(environ[size])]
        except (KeyError, ValueError):
            continue
        for name in (local_rank, local_size):
            try:
                values.append(int(environ[name]))
            except (KeyError, ValueError):
                values.append(None)
        return LaunchedAs(family, *values)
    return None


def family_of(version_text):
    """OPEN_MPI, MPICH or None, from ``MPI_Get_library_version``'s text or
    a launcher's ``--version`` output."""
    text = version_text or ""
    if "Open MPI" in text or "OpenRTE" in text or "Open RTE" in text:
        return OPEN_MPI
    if any(mark in text for mark in ("MPICH", "HYDRA", "Hydra", "Intel(R) MPI", "MVAPICH")):
        return MPICH
    return None


def mismatch_message(launched, comm_size, library_version):
    """The error for a process a launcher placed in a job of
    ``launched.size`` ranks that MPI sees as a job of ``comm_size``."""
    library = (library_version or "an unknown MPI").strip().splitlines()[0]
    library = library.split(", package")[0].strip()
    library_family = family_of(library)
    if library_family in (launched.family, None):
        cause = "mpi4py's MPI library is not the launcher's"
    else:
        cause = f"mpi4py uses {library_family}, the launcher is {launched.family}'s"
    start = {OPEN_MPI: "start the job with Open MPI's mpirun (mpirun.openmpi on Debian)",
             MPICH: "start the job with MPICH's mpiexec (mpiexec.mpich on Debian)"}
    rebuild = {OPEN_MPI: "MPICC=mpicc.openmpi", MPICH: "MPICC=mpicc.mpich"}
    return (f"cnnc.distributed: the launcher ({launched.family}) started {launched.size} "
            f"processes, but MPI sees a job of {comm_size} rank(s): {cause} "
            f"(mpi4py: {library}). Either "
            f"{start.get(library_family, 'start the job with the launcher of the MPI mpi4py uses')}"
            f", or build mpi4py for the launcher's MPI: {rebuild[launched.family]} "
            f"pip install --no-binary mpi4py --no-cache-dir --force-reinstall mpi4py")


def library_version(python=None, timeout=60):
    """``MPI_Get_library_version`` of the mpi4py that ``python`` imports,
    read in a child process without initializing MPI; None when mpi4py
    cannot be imported there."""
    code = ("import mpi4py; mpi4py.rc.initialize = False\n"
            "from mpi4py import MPI; print(MPI.Get_library_version())")
    try:
        done = subprocess.run([python or sys.executable, "-c", code], capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout.strip() else None


def mpi4py_family(python=None):
    """The family (OPEN_MPI or MPICH) of the MPI that ``python``'s mpi4py
    uses; RuntimeError when mpi4py is missing or the MPI is unknown."""
    python = python or sys.executable
    version = library_version(python)
    if version is None:
        raise RuntimeError(f"mpi4py cannot be imported by {python}")
    family = family_of(version)
    if family is None:
        raise RuntimeError(f"unknown MPI library: {version.strip().splitlines()[0]}")
    return family


def _launcher_candidates(family, python):
    # Launchers installed beside the interpreter (the MPI wheels on PyPI put
    # them in the environment's bin), then on the PATH.
    here = os.path.dirname(os.path.abspath(python))
    for name in _LAUNCHER_NAMES[family]:
        beside = os.path.join(here, name)
        if os.access(beside, os.X_OK):
            yield beside
    for name in _LAUNCHER_NAMES[family]:
        found = shutil.which(name)
        if found:
            yield found


def find_launcher(family, python=None):
    """The path of a launcher of ``family`` (checked with ``--version``),
    or None."""
    for candidate in dict.fromkeys(_launcher_candidates(family, python or sys.executable)):
        try:
            shown = subprocess.run([candidate, "--version"], capture_output=True, text=True,
                                   timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if family_of(shown.stdout + shown.stderr) == family:
            return candidate
    return None


def local_launch(ranks, python=None, family=None):
    """``(command prefix, environment additions)`` that start ``ranks``
    ranks on this machine, however many cores it has and unbound, e.g.
    ``(["/usr/bin/mpiexec.mpich", "-n", "2"], {})``; with the launcher of
    ``family``, by default the family of the MPI that ``python``'s mpi4py
    uses. Raises RuntimeError when mpi4py or the launcher is missing."""
    python = python or sys.executable
    family = family or mpi4py_family(python)
    launcher = find_launcher(family, python)
    if launcher is None:
        raise RuntimeError(f"no {family} launcher found ({', '.join(_LAUNCHER_NAMES[family])})")
    env = {}
    if family == OPEN_MPI and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    return [launcher, *_LOCAL_FLAGS[family], "-n", str(int(ranks))], env
