"""The data-parallel strategy in effect, importable without MPI.

Models capture the strategy at ``compile`` time (inside
``DataParallel.scope()``); layers that cooperate across ranks
(SyncBatchNormalization) ask for it while they run. Nothing here imports
mpi4py, so the rest of cnnc can consult it at no cost.
"""

_scoped = []
_active = None


def current_strategy():
    """The strategy of the innermost ``scope()``, else None."""
    return _scoped[-1] if _scoped else None


def running_strategy():
    """The strategy running a training or evaluation step now, else None."""
    return _active


def push_scope(strategy):
    _scoped.append(strategy)


def pop_scope(strategy):
    if not _scoped or _scoped[-1] is not strategy:
        raise RuntimeError("DataParallel scopes must be left in the order they were entered")
    _scoped.pop()


def set_running(strategy):
    """Mark ``strategy`` (or None) as the one running the current step."""
    global _active
    _active = strategy
