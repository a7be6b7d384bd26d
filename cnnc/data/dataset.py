"""Shuffled mini-batches prepared in a background thread.

Each epoch draws a permutation of the sample indices and gathers each batch
into one of a few preallocated buffers, so that the data set is never copied
as a whole and no large buffer is allocated per step. Gathering,
conversion to float32 and augmentation of the next batch run in a
background thread (the NumPy gathers and cnnc's C kernels release the GIL)
while the current batch trains.
"""
import queue
import threading

import numpy as np


class _Failure:
    def __init__(self, exc):
        self.exc = exc


_DONE = object()


class Dataset:
    """An iterable of ``(x_batch, y_batch)`` mini-batches over arrays.

    x: array (N, ...), e.g. uint8 images (N, 28, 28); y: array (N, ...) or
    None (batches are then ``x_batch`` alone). Each ``iter()`` is one epoch;
    ``len()`` is the number of batches per epoch.

    Arguments:
        batch_size: samples per batch; the last batch is smaller unless
            ``drop_remainder``.
        shuffle: draw a new permutation every epoch, from ``seed`` and the
            epoch number (the same seed gives the same batches).
        seed: integer; None draws one from NumPy's global generator (so
            ``cnnc.utils.set_random_seed`` makes runs repeatable).
        scale, offset: x batches are ``float32(x) * scale + offset`` (e.g.
            ``scale=1/255`` for uint8 images); with the default None and
            float32 x, batches are plain gathers.
        sample_shape: reshape each sample, e.g. ``(28, 28, 1)`` to add the
            channel axis of (N, 28, 28) images (a view: no copy).
        augment: optional ``f(x_batch) -> x_batch`` run on every training
            batch in the background thread (a cnnc preprocessing layer or
            model works: it is called with ``training=True``). The random
            layers it holds (itself, or found through ``.layers``) draw
            batch k of epoch e from the position ``(e, k)`` of their
            streams, so an epoch cut short (``fit(steps_per_epoch=...)``,
            a loop that breaks) leaves the next epochs' augmentation as it
            would have been, whatever the background thread had prepared.
        prefetch: batches prepared ahead of the one being used (0: none,
            everything runs in the caller's thread).
        reuse_buffers: batches live in a ring of ``prefetch + 2`` reused
            buffers, so a yielded batch stays valid only until the next
            one is requested: copy it to keep it. False allocates every batch.
    """

    def __init__(self, x, y=None, batch_size=32, shuffle=True, seed=None, scale=None, offset=0.0,
                 sample_shape=None, augment=None, prefetch=1, drop_remainder=False,
                 reuse_buffers=True):
        x = np.asarray(x)
        if x.ndim < 1 or len(x) == 0:
            raise ValueError(f"x must hold at least one sample, got shape {x.shape}")
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(prefetch) != prefetch or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        if augment is not None and not callable(augment):
            raise TypeError("augment must be callable")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else int(seed)
        self.scale = scale
        self.offset = float(offset)
        if sample_shape is not None:
            sample_shape = tuple(int(s) for s in sample_shape)
            if int(np.prod(sample_shape)) != int(np.prod(x.shape[1:])):
                raise ValueError(f"sample_shape {sample_shape} does not hold samples of shape {x.shape[1:]}")
        self.sample_shape = sample_shape or tuple(x.shape[1:])
        self.augment = augment
        self.prefetch = int(prefetch)
        self.drop_remainder = bool(drop_remainder)
        self.reuse_buffers = bool(reuse_buffers)
        self.epoch = 0
        self._streams = None  # [(random layer, first call, calls per batch)], found on the first batch
        self._convert = scale is not None or offset != 0.0 or x.dtype != np.float32
        if len(self) == 0:
            raise ValueError(f"{len(x)} samples make no full batch of {batch_size} with drop_remainder=True")

    @property
    def num_samples(self):
        return len(self.x)

    def __len__(self):
        n = len(self.x)
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    @property
    def x_shape(self):
        """Shape of one x batch, batch axis None: e.g. (None, 28, 28, 1)."""
        return (None,) + self.sample_shape

    def order(self, epoch):
        """Sample indices of an epoch, in the order batches take them."""
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    # -- producing one batch ---------------------------------------------
    def _new_buffers(self):
        n = self.batch_size
        raw = np.empty((n,) + self.x.shape[1:], self.x.dtype) if self._convert else None
        xb = np.empty((n,) + self.sample_shape, np.float32 if self._convert else self.x.dtype)
        yb = None if self.y is None else np.empty((n,) + self.y.shape[1:], self.y.dtype)
        return raw, xb, yb

    def _fill(self, index, buffers, position=None):
        raw, xb, yb = buffers if buffers is not None else self._new_buffers()
        n = len(index)
        xb, raw = xb[:n], None if raw is None else raw[:n]
        flat = xb.reshape((n,) + self.x.shape[1:])
        if raw is None:
            np.take(self.x, index, axis=0, out=flat)
        else:
            np.take(self.x, index, axis=0, out=raw)
            if self.scale is not None:
                np.multiply(raw, np.float32(self.scale), out=flat, casting="unsafe")
            else:
                flat[...] = raw
            if self.offset:
                flat += np.float32(self.offset)
        if self.augment is not None:
            xb = self._augment_batch(xb, position)
        if yb is None:
            return xb
        yb = yb[:n]
        np.take(self.y, index, axis=0, out=yb)
        return xb, yb

    def _augment_batch(self, xb, position):
        """Augment the batch at ``position`` (epoch * batches + batch)."""
        if position is None:
            return self._apply_augment(xb)
        if self._streams is None:
            # The first augmentation, run from the streams' starts, tells how
            # many draws a batch takes (one per layer call; a callable may
            # call a layer more than once). A first batch past position 0
            # (an epoch set by hand, a shard) is then drawn again from its own
            # place, the probe's result being thrown away.
            layers = _random_layers(self.augment)
            starts = [layer.random_state()["calls"] for layer in layers]
            probe = self._apply_augment(xb.copy() if position else xb)
            self._streams = [(layer, start, layer.random_state()["calls"] - start)
                             for layer, start in zip(layers, starts)]
            if not position:
                return probe
        for layer, start, per_batch in self._streams:
            layer.set_random_state(dict(layer.random_state(), calls=start + position * per_batch))
        return self._apply_augment(xb)

    def _apply_augment(self, xb):
        from cnnc.layers.base import Layer
        if isinstance(self.augment, Layer) or hasattr(self.augment, "layers"):
            out = self.augment(xb, training=True)
        else:
            out = self.augment(xb)
        out = np.asarray(out)
        if out.shape[0] != xb.shape[0]:
            raise ValueError(f"augment returned {out.shape[0]} samples for a batch of {xb.shape[0]}")
        return out

    def _batches(self, epoch):
        """(position, sample indices) of each batch of an epoch."""
        order = self.order(epoch)
        count = len(self)
        for b in range(count):
            yield epoch * count + b, order[b * self.batch_size:(b + 1) * self.batch_size]

    # -- iteration ---------------------------------------------------------
    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        if self.prefetch == 0:
            return self._iter_inline(epoch)
        return _PrefetchIterator(self, epoch)

    def _iter_inline(self, epoch):
        buffers = self._new_buffers() if self.reuse_buffers else None
        for position, index in self._batches(epoch):
            yield self._fill(index, buffers, position)

    def __repr__(self):
        return (f"<Dataset {len(self.x)} samples of {self.sample_shape}, batch_size={self.batch_size}, "
                f"{len(self)} batches, shuffle={self.shuffle}>")


def _random_layers(augment):
    """The random augmentation layers ``augment`` holds: itself, or those
    found through ``.layers`` (a Sequential, a list-holding callable)."""
    from cnnc.layers.preprocessing.base_random import BaseRandomLayer
    found, seen, todo = [], set(), [augment]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, BaseRandomLayer):
            found.append(obj)
        inner = getattr(obj, "layers", None)
        if isinstance(inner, (list, tuple)):
            todo.extend(reversed(inner))
    return found


class _PrefetchIterator:
    """Runs Dataset._fill in a worker thread, ``prefetch`` batches ahead.

    Buffer ``k % ring`` holds batch k; the worker may fill it only once the
    consumer has moved past batch ``k - ring + 1``, which a semaphore counts.
    """

    def __init__(self, dataset, epoch):
        self.dataset = dataset
        ring = dataset.prefetch + 2
        self.buffers = [dataset._new_buffers() for _ in range(ring)] if dataset.reuse_buffers else None
        self.free = threading.Semaphore(ring - 1)
        self.ready = queue.Queue()
        self.stop = threading.Event()
        self.finished = False
        self.holding = False
        self.thread = threading.Thread(target=self._work, args=(epoch,), daemon=True,
                                       name="cnnc-prefetch")
        self.thread.start()

    def _work(self, epoch):
        try:
            for k, (position, index) in enumerate(self.dataset._batches(epoch)):
                while not self.free.acquire(timeout=0.1):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                buffers = None if self.buffers is None else self.buffers[k % len(self.buffers)]
                self.ready.put(self.dataset._fill(index, buffers, position))
            self.ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self.ready.put(_Failure(exc))

    def __iter__(self):
        return self

    def __next__(self):
        if self.finished:
            raise StopIteration
        if self.holding:
            self.free.release()  # the previous batch's buffer may be refilled
        item = self.ready.get()
        self.holding = True
        if item is _DONE:
            self.finished = True
            self.thread.join()
            raise StopIteration
        if isinstance(item, _Failure):
            self.finished = True
            self.thread.join()
            raise item.exc
        return item

    def close(self):
        """Stop the worker (also done when the iterator is dropped)."""
        if not self.finished:
            self.finished = True
            self.stop.set()
            self.thread.join()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
