"""Which rows of each global batch a rank holds.

All ranks draw the same permutation of the samples each epoch (from a seed
rank 0 shares) and cut it into global batches of ``batch_size`` rows, as one
process would. Each global batch, the last short one included, is split into
``size`` contiguous parts whose lengths differ by at most one: rank r holds
rows ``[r*n//size, (r+1)*n//size)`` of an n-row batch. So every sample is
used exactly once per epoch, nothing is padded or dropped, and the step
count is the one of a single process.

When the last batch has fewer rows than there are ranks, some ranks hold no
row of it. Such a rank runs a stand-in step on one row of the batch whose
contributions are weighted zero (gradients, synchronized batch statistics)
and whose metric updates and per-rank layer state are undone, so that it
still takes part in every collective.
"""
import numpy as np

from cnnc.data import Dataset
from cnnc.models import data_adapter


def shard_bounds(rows, size, rank):
    """(start, stop) of ``rank``'s part of a ``rows``-row global batch."""
    return rows * rank // size, rows * (rank + 1) // size


class BatchPosition:
    """Where a rank's rows sit in the current global batch."""

    __slots__ = ("start", "stop", "rows")

    def __init__(self, start, stop, rows):
        self.start, self.stop, self.rows = start, stop, rows

    @property
    def local_rows(self):
        return self.stop - self.start

    @property
    def weight(self):
        """The share of the global batch this rank holds: its gradients,
        computed as local means, count this much in the global mean."""
        return self.local_rows / self.rows


class ShardedData:
    """The local parts of the global batches of arrays or of a
    ``cnnc.data.Dataset``; ``position`` and ``stand_in`` describe the batch
    last yielded. ``training`` data yields a one-row stand-in for an empty
    part; evaluation data yields the empty part (the step is skipped)."""

    def __init__(self, source, rank, size, training):
        self.rank, self.size, self.training = rank, size, training
        self.position = None
        self.stand_in = False
        if isinstance(source, data_adapter.ArrayData):
            self._arrays = source
            self._dataset = self._dataset_shard = None
            self.num_samples = source.num_samples
            self.batch_size = source.batch_size
            self.steps = source.steps
        elif isinstance(source, data_adapter.IterableData) and isinstance(source.source, Dataset):
            dataset = source.source
            self._arrays = None
            self._dataset = dataset
            self._dataset_shard = _DatasetShard(dataset, self._selections)
            self.num_samples = dataset.num_samples
            self.batch_size = dataset.batch_size
            self.steps = len(dataset) if source.steps is None else min(len(dataset), source.steps)
        else:
            raise TypeError("data-parallel training shards arrays or a cnnc.data.Dataset; "
                            "another iterable of batches cannot be split into the same global "
                            "batches on every rank")
        if self.batch_size < size:
            raise ValueError(f"the global batch size {self.batch_size} is smaller than the "
                             f"number of ranks {size}: every rank needs at least one row")

    @property
    def is_dataset(self):
        return self._dataset is not None

    def describe(self):
        """What must agree across ranks (compared at the start of fit)."""
        info = {"samples": self.num_samples, "batch_size": self.batch_size, "steps": self.steps}
        if self._arrays is not None:
            a = self._arrays
            info["x"] = [[list(x.shape[1:]), x.dtype.str] for x in a.xs]
            info["y"] = None if a.ys is None else [[list(y.shape[1:]), y.dtype.str] for y in a.ys]
            info["sample_weight"] = a.sample_weight is not None
            info["shuffle"] = bool(a.shuffle)
        else:
            d = self._dataset
            info["x"] = [list(d.sample_shape), d.x.dtype.str]
            info["y"] = None if d.y is None else [list(d.y.shape[1:]), d.y.dtype.str]
            info["shuffle"] = d.shuffle
            info["dataset_seed"] = d.seed
            info["drop_remainder"] = d.drop_remainder
        return info

    def _layout(self, b):
        """(position, first row, stop row, stand-in) of global batch ``b``;
        the rows index the epoch's order."""
        first = b * self.batch_size
        rows = min(self.batch_size, self.num_samples - first)
        position = BatchPosition(*shard_bounds(rows, self.size, self.rank), rows)
        lo, hi = position.start, position.stop
        stand_in = hi == lo and self.training
        if stand_in:
            lo, hi = 0, 1
        return position, first + lo, first + hi, stand_in

    def _selections(self, order):
        """This rank's rows of each global batch: a slice, or an index array
        into the samples when ``order`` is given."""
        for b in range(self.steps):
            _, lo, hi, _ = self._layout(b)
            yield slice(lo, hi) if order is None else order[lo:hi]

    def batches(self, rng=None):
        """Yield (xs, ys, sample_weight) per global batch: this rank's part;
        ``position`` and ``stand_in`` describe the batch last yielded."""
        if self._dataset is not None:
            items = iter(self._dataset_shard)
            self._dataset.epoch = self._dataset_shard.epoch
        else:
            a = self._arrays
            order = rng.permutation(a.num_samples) if a.shuffle and rng is not None else None
            items = (a.gather(selection, _count(selection))
                     for selection in self._selections(order))
        for b, item in enumerate(items):
            self.position, _, _, self.stand_in = self._layout(b)
            if self._dataset is not None:
                item = (item[0], item[1], None) if isinstance(item, tuple) else (item, None, None)
            yield item


def _count(selection):
    return selection.stop - selection.start if isinstance(selection, slice) else len(selection)


class _DatasetShard(Dataset):
    """A copy of a Dataset whose batches are one rank's parts of the global
    batches (gathered, converted and augmented ahead in the Dataset's
    background thread, as whole batches would be)."""

    def __init__(self, dataset, selections):  # noqa: super().__init__ would check again
        self.__dict__.update(dataset.__dict__)
        self._selections = selections

    def _batches(self, epoch):
        """(position, this rank's sample indices) of each global batch."""
        count = len(self)
        for b, selection in enumerate(self._selections(self.order(epoch))):
            yield epoch * count + b, (np.arange(selection.start, selection.stop)
                                      if isinstance(selection, slice) else selection)
