"""The global source of randomness of cnnc.

Initializers and dropout layers that are not given an explicit ``seed`` draw
from one process-wide NumPy generator, so that seeding it once
(``cnnc.random.set_seed(s)``, called by ``cnnc.utils.set_random_seed``) makes
weight initialization and dropout masks reproducible: building the same model
after the same seed gives the same weights, and each dropout layer gets its
own seed from which every training step derives a different mask.
"""
import numpy as np

_SEED_LIMIT = 2**31 - 1

_generator = np.random.default_rng()
_seed = None
_batch_position = None


def set_seed(seed):
    """Reset the global generator from ``seed`` (a non-negative int)."""
    global _generator, _seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)


def get_seed():
    """The seed last given to :func:`set_seed`, or None if never seeded."""
    return _seed


def get_seed_generator():
    """The global ``numpy.random.Generator`` (advances as it is used)."""
    return _generator


def draw_seed():
    """A fresh integer seed in [0, 2**31 - 1) from the global generator."""
    return int(_generator.integers(0, _SEED_LIMIT))


def make_generator(seed=None):
    """A generator for one initializer call: seeded from ``seed`` if given
    (the same values on every call, as Keras does), else from the global one."""
    if seed is None:
        return np.random.default_rng(draw_seed())
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def set_batch_position(rows_before, global_rows=None):
    """Declare that the batch being trained is rows ``rows_before ...`` of a
    global batch of ``global_rows`` rows split over processes (data-parallel
    training), or clear it with ``set_batch_position(None)``. Dropout then
    draws the mask of the global batch, the same as one process would."""
    global _batch_position
    _batch_position = None if rows_before is None else (int(rows_before), int(global_rows))


def batch_position(rows):
    """(rows before this batch, rows of the whole batch) in the global batch
    a ``rows``-row batch belongs to: ``(0, rows)`` outside data parallelism."""
    return (0, rows) if _batch_position is None else _batch_position
