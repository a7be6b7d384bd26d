"""Data-parallel training over MPI (``pip install 'cnnc[mpi]'``).

``DataParallel`` splits each global batch over the ranks of an MPI job,
averages the gradients with allreduce while backward runs, and keeps the
weights identical on every rank; ``SyncBatchNormalization`` computes batch
statistics over the global batch. See docs/distributed.md.

Importing this package does not import mpi4py; creating a ``DataParallel``
does (and so initializes MPI).
"""
from cnnc.distributed._context import current_strategy
from cnnc.distributed.strategy import DataParallel
from cnnc.layers.sync_batch_normalization import SyncBatchNormalization

__all__ = ["DataParallel", "SyncBatchNormalization", "current_strategy"]
