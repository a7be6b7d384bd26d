"""A bound on the weights that layers may create, for loading files.

Rebuilding a model from a file's architecture creates (and initializes) its
weights before the file's tensors are copied in; a hostile architecture could
declare ``Dense(units=5_000_000)`` in a few bytes. While loading, the model's
weights are bounded by the tensors the file actually holds (every weight must
be matched by one of them): :func:`check` runs before each weight's
allocation.
"""
import contextlib
import contextvars

_limit = contextvars.ContextVar("cnnc_weight_limit", default=None)


class _Limit:
    __slots__ = ("total", "largest", "error", "used")

    def __init__(self, total, largest, error):
        self.total = total
        self.largest = largest
        self.error = error
        self.used = 0


@contextlib.contextmanager
def weights_within(total, largest, error):
    """Within the block, creating a weight of more than ``largest`` elements,
    or weights of more than ``total`` elements in all, raises
    ``error(message)`` before anything is allocated."""
    token = _limit.set(_Limit(int(total), int(largest), error))
    try:
        yield
    finally:
        _limit.reset(token)


def check(shape, name):
    """Account for a weight of ``shape`` about to be created (no-op outside
    :func:`weights_within`)."""
    limit = _limit.get()
    if limit is None:
        return
    count = 1
    for s in shape:
        count *= max(int(s), 0)
    if count > limit.largest:
        raise limit.error(f"weight {name!r} of shape {tuple(shape)} has {count} elements, more "
                          f"than the file can hold ({limit.largest})")
    limit.used += count
    if limit.used > limit.total:
        raise limit.error(f"the architecture's weights need more than the {limit.total} "
                          f"elements of the file's weight tensors (at weight {name!r})")


def check_computed(count, what):
    """Bound an array that rebuilding an architecture computes rather than
    reads (the shape inference of a layer written with ``call()`` runs it on
    two zero samples): within :func:`weights_within`, more elements than the
    file's largest tensor or 2**22, whichever is larger, raise ``error``."""
    limit = _limit.get()
    if limit is None:
        return
    bound = max(limit.largest, 1 << 22)
    if count > bound:
        raise limit.error(f"{what} needs {count} elements while loading, more than {bound}")
