"""Feeding fit/evaluate/predict: arrays sliced into batches (reusing one
buffer per batch size when rows must be gathered or converted), or any
iterable of ready-made batches."""
import collections.abc
import math

import numpy as np


def _as_array(a, what):
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - report what could not be converted
        raise TypeError(f"{what} must be an array, got {type(a).__name__}: {exc}") from None


def to_list(data, names, what):
    """Arrays for each name: accepts an array, a list/tuple (one per name) or
    a dict keyed by name. Returns None for None."""
    if data is None:
        return None
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{what}: missing entries {missing}; got keys {sorted(data)}")
        return [_as_array(data[n], what) for n in names]
    # As Keras: a list of arrays is one array per model input/output.
    if isinstance(data, (list, tuple)) and (len(names) > 1 or (
            data and all(isinstance(d, np.ndarray) for d in data))):
        if len(data) != len(names):
            kind = "input" if what.startswith("x") else "output"
            raise ValueError(f"{what}: the model expects {len(names)} {kind} array(s), "
                             f"got a list of {len(data)}")
        return [_as_array(d, what) for d in data]
    if len(names) > 1:
        raise ValueError(f"{what}: the model has {len(names)} of them; pass a list or a dict")
    return [_as_array(data, what)]


def is_array_like(data):
    if data is None or isinstance(data, (np.ndarray, dict)):
        return True
    if isinstance(data, (list, tuple)):
        return all(isinstance(d, np.ndarray) for d in data) or not any(
            hasattr(d, "__next__") for d in data)
    return hasattr(data, "__array__") or isinstance(data, (int, float))


class ArrayData:
    """Batches of arrays; all arrays share their first (sample) axis."""

    def __init__(self, xs, ys=None, sample_weight=None, batch_size=32, shuffle=False):
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        arrays = list(xs) + list(ys or []) + ([sample_weight] if sample_weight is not None else [])
        lengths = {int(a.shape[0]) if a.ndim else -1 for a in arrays}
        if len(lengths) != 1 or -1 in lengths:
            raise ValueError(f"all input, target and sample-weight arrays must have the same "
                             f"number of samples; got lengths "
                             f"{[a.shape[0] if a.ndim else 'scalar' for a in arrays]}")
        self.num_samples = lengths.pop()
        if self.num_samples == 0:
            raise ValueError("no samples: the input arrays are empty")
        self.xs = xs
        self.ys = ys
        self.sample_weight = sample_weight
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.steps = math.ceil(self.num_samples / self.batch_size)
        self._buffers = {}

    def _take(self, key, array, selection, count, as_float):
        if isinstance(selection, slice):
            part = array[selection]
            if not as_float or (part.dtype == np.float32 and part.flags.c_contiguous):
                return part
        dtype = np.float32 if as_float else array.dtype
        buffer = self._buffers.get((key, count))
        if buffer is None:
            buffer = np.empty((count,) + array.shape[1:], dtype)
            self._buffers[(key, count)] = buffer
        if isinstance(selection, slice):
            np.copyto(buffer, array[selection], casting="unsafe")
        elif array.dtype == dtype:
            np.take(array, selection, axis=0, out=buffer)
        else:
            np.copyto(buffer, array[selection], casting="unsafe")
        return buffer

    def batches(self, rng=None):
        """Yield (xs, ys, sample_weight) per batch; rows in a permutation
        drawn from ``rng`` when shuffling."""
        order = rng.permutation(self.num_samples) if self.shuffle and rng is not None else None
        for i in range(self.steps):
            start = i * self.batch_size
            stop = min(start + self.batch_size, self.num_samples)
            selection = slice(start, stop) if order is None else order[start:stop]
            yield self.gather(selection, stop - start)

    def gather(self, selection, count):
        """(xs, ys, sample_weight) of the ``count`` rows a slice or an index
        array selects (float inputs; integer targets kept as they are)."""
        xs = [self._take(("x", j), x, selection, count, True) for j, x in enumerate(self.xs)]
        ys = None if self.ys is None else [
            self._take(("y", j), y, selection, count, y.dtype.kind not in "iub")
            for j, y in enumerate(self.ys)]
        sw = None if self.sample_weight is None else self._take(
            ("w", 0), self.sample_weight, selection, count, True)
        return xs, ys, sw


class IterableData:
    """Batches from an iterable (a generator, a loader, a list of batches):
    each item is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.
    ``steps`` limits an epoch; by default an epoch ends with the iterable (or
    after ``len(source)`` batches). An iterator (a generator, an ``iter()``
    result) continues where the previous epoch stopped; any other iterable is
    iterated afresh each epoch, exactly once."""

    def __init__(self, source, steps=None):
        self.source = source
        if steps is None and hasattr(source, "__len__"):
            steps = len(source)
        self.steps = steps
        self.num_samples = None
        self.batch_size = None
        self._iterator = None
        # Decided once, without calling iter(): on a re-iterable source each
        # iter() starts an epoch (a cnnc Dataset advances its epoch counter
        # and its prefetch thread runs augmentation at once), so a probe
        # would consume batches and random streams nobody trains on.
        self._continues = isinstance(source, collections.abc.Iterator)

    def batches(self, rng=None):
        if self._iterator is None or not self._continues:
            self._iterator = iter(self.source)
        step = 0
        while self.steps is None or step < self.steps:
            try:
                item = next(self._iterator)
            except StopIteration:
                self._iterator = None
                if step == 0:
                    raise ValueError("the data iterable produced no batches") from None
                return
            if isinstance(item, tuple):
                if not 1 <= len(item) <= 3:
                    raise ValueError(f"a batch must be x, (x, y) or (x, y, sample_weight); got a "
                                     f"tuple of {len(item)}")
                item = item + (None,) * (3 - len(item))
            else:
                item = (item, None, None)
            step += 1
            yield item
