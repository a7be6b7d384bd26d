"""DataParallel: synchronous data-parallel training over MPI ranks."""
import contextlib
import numbers
import os
import sys
import warnings
import zlib

import numpy as np

from cnnc import random as cnnc_random
from cnnc.distributed import _context
from cnnc.distributed.buckets import GradientBuckets
from cnnc.distributed.comm import Communicator, import_mpi
from cnnc.distributed.launcher import (UNBIND_HINT, LauncherMismatchError, launched_as,
                                       mismatch_message)
from cnnc.distributed.state import all_layers, reduced_metrics, restore_states, snapshot_states
from cnnc.distributed.sharding import ShardedData

# Callbacks that print or write files run on rank 0 only; the others (early
# stopping, learning-rate schedules) run on every rank on the reduced logs,
# so every rank takes the same decisions.
_RANK_ZERO_CALLBACKS = ("ProgbarLogger", "ModelCheckpoint", "CSVLogger")


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class DataParallel:
    """Synchronous data parallelism over the ranks of an MPI job.

    ``mpirun -np 4 python train.py`` with, in train.py::

        strategy = cnnc.distributed.DataParallel()
        with strategy.scope():
            model = ...
            model.compile(...)
        model.fit(x, y, batch_size=256, epochs=10)   # 256 = the GLOBAL batch

    Every rank holds the whole model and the whole data set in memory and
    trains on its part of each global batch (see
    :mod:`cnnc.distributed.sharding`); gradients are averaged by allreduce
    while backward runs, and every rank applies the same update, so the
    weights stay identical. Metrics and validation are reduced over the
    ranks; only rank 0 prints and writes (progress bar, ModelCheckpoint,
    CSVLogger). ``fit`` starts by checking that all ranks run the same model
    on data of the same shapes, and by copying rank 0's weights, dropout
    seeds and shuffling seed to the others.

    Arguments:
        comm: the MPI communicator (default ``MPI.COMM_WORLD``).
        threads: kernel threads per rank; default: the cores of the node
            divided by the ranks on that node (``OMP_NUM_THREADS``, when
            set, wins); None leaves the setting alone.
        check_every: every this many steps compare checksums of the
            trainable weights across ranks and raise if they differ (0: never).
        timeout: seconds a collective may wait before the job is aborted
            (a dead or hung rank).
        bucket_bytes: size of the gradient allreduce buckets.
        abort_on_error: an uncaught exception on any rank aborts the whole
            job (``MPI_Abort``) with a message, instead of leaving the other
            ranks waiting.
    """

    def __init__(self, comm=None, threads="auto", check_every=0, timeout=300.0,
                 bucket_bytes=4 << 20, abort_on_error=True):
        MPI = import_mpi()
        _check_launcher(MPI)
        world = MPI.COMM_WORLD if comm is None else comm
        if not float(timeout) > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if int(check_every) != check_every or check_every < 0:
            raise ValueError(f"check_every must be an integer >= 0, got {check_every!r}")
        if int(bucket_bytes) != bucket_bytes or bucket_bytes < 4:
            raise ValueError(f"bucket_bytes must be an integer >= 4, got {bucket_bytes!r}")
        # Separate communicators: gradient buckets in flight never interleave
        # with the other collectives (statistics, metrics, checks).
        self.comm = Communicator(world.Dup(), timeout)
        self.grad_comm = Communicator(world.Dup(), timeout)
        self.rank, self.size = self.comm.rank, self.comm.size
        node = world.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.check_every = int(check_every)
        self.bucket_bytes = int(bucket_bytes)
        self.threads = self._set_threads(threads)
        self.position = None
        self.steps = 0
        self._data = None
        self._buckets = None
        self._stepping = False
        if abort_on_error and self.size > 1:
            self._install_excepthook()

    # -- setup ---------------------------------------------------------------------
    def _set_threads(self, threads):
        import cnnc
        if threads is None:
            return cnnc.get_num_threads()
        if threads == "auto":
            if os.environ.get("OMP_NUM_THREADS"):
                return cnnc.get_num_threads()
            share = max(1, (os.cpu_count() or 1) // self.local_size)
            threads = min(_cpu_count(), share)
            if threads < share and self.local_rank == 0:
                launched = launched_as()
                hint = UNBIND_HINT.get(launched.family) if launched else None
                hint = hint or " or ".join(UNBIND_HINT.values())
                warnings.warn(f"cnnc.distributed: each rank is bound to {threads} core(s) of the "
                              f"{share} it could use; to run more threads per rank, launch with "
                              f"{hint}, or give each rank more cores", stacklevel=3)
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
            raise ValueError(f"threads must be 'auto', None or an integer >= 1, got {threads!r}")
        cnnc.set_num_threads(int(threads))
        return int(threads)

    def _install_excepthook(self):
        previous = sys.excepthook
        comm = self.comm

        def abort_job(kind, value, traceback):
            previous(kind, value, traceback)
            comm.abort(f"uncaught {kind.__name__}: {value}; aborting all ranks")

        sys.excepthook = abort_job

    @property
    def num_replicas_in_sync(self):
        """The number of ranks (Keras's name)."""
        return self.size

    @contextlib.contextmanager
    def scope(self):
        """Models compiled inside train with this strategy."""
        _context.push_scope(self)
        try:
            yield self
        finally:
            _context.pop_scope(self)

    # -- fit -----------------------------------------------------------------------
    def prepare_fit(self, model, data, val_data, callbacks, shuffle_root, settings):
        """Shard the data, check that the ranks agree, copy rank 0's state;
        returns (data, val_data, callbacks, shuffle_root)."""
        data = ShardedData(data, self.rank, self.size, training=True)
        if val_data is not None:
            val_data = ShardedData(val_data, self.rank, self.size, training=False)
        self._agree(model, {"training data": data.describe(), "fit": settings,
                            "validation data": None if val_data is None else val_data.describe()})
        self._copy_from_rank0(model)
        root = self.comm.broadcast(np.array([shuffle_root], np.int64), "sharing the shuffle seed")
        self._data = data
        self._buckets = GradientBuckets(self.grad_comm, model.trainable_weights,
                                        self.bucket_bytes)
        return data, val_data, self.rank_callbacks(callbacks), int(root[0])

    def prepare_evaluate(self, model, data, callbacks):
        """Shard evaluation data (each rank evaluates its part; the metrics
        are reduced); returns (data, callbacks)."""
        data = ShardedData(data, self.rank, self.size, training=False)
        self._agree(model, {"evaluation data": data.describe()})
        return data, self.rank_callbacks(callbacks)

    def rank_callbacks(self, callbacks):
        if self.rank == 0:
            return list(callbacks)
        return [cb for cb in callbacks if not getattr(cb, "rank_zero_only", False)
                and type(cb).__name__ not in _RANK_ZERO_CALLBACKS]

    def _agree(self, model, extra):
        """Raise on every rank when the ranks differ in model or data."""
        mine = {"model": self.model_signature(model), **extra}
        everyone = self.comm.allgather_json(mine, "comparing the ranks' models and data")
        problems = []
        for rank, theirs in enumerate(everyone[1:], start=1):
            for key, value, reference in _differences(theirs, everyone[0]):
                problems.append(f"{key}: {_summary(value)} on rank {rank}, "
                                f"{_summary(reference)} on rank 0")
        if problems:
            raise ValueError("cnnc.distributed: the ranks do not run the same training:\n  " +
                             "\n  ".join(problems))

    @staticmethod
    def model_signature(model):
        """Layer types and weight shapes, the loss, the optimizer and its
        step count: what every rank must share."""
        optimizer = model.optimizer
        opt = None if optimizer is None else [type(optimizer).__name__,
                                              int(getattr(optimizer, "iterations", 0))]
        loss = model._compile_args["loss"] if model._compile_args else None
        return {"layers": [type(layer).__name__ for layer in all_layers(model)],
                "weights": [[w.name.split("/")[-1], list(w.shape), bool(w.trainable)]
                            for w in model.weights],
                "loss": loss if isinstance(loss, (str, type(None))) else repr(type(loss).__name__),
                "optimizer": opt}

    def _copy_from_rank0(self, model):
        weights = model.weights
        if weights:
            flat = np.concatenate([w.value.reshape(-1) for w in weights]).astype(np.float32)
            self.comm.broadcast(flat, "copying rank 0's weights")
            offset = 0
            for w in weights:
                n = w.size
                w.value[...] = flat[offset:offset + n].reshape(w.shape)
                offset += n
        from cnnc.layers.dropout import Dropout
        droppers = [layer for layer in all_layers(model) if isinstance(layer, Dropout)]
        if droppers:
            states = [layer.random_state() for layer in droppers]
            flat = np.array([[s["seed"], s["offset"]] for s in states], np.int64)
            self.comm.broadcast(flat, "copying rank 0's dropout seeds")
            for layer, (seed, offset) in zip(droppers, flat):
                layer.set_random_state({"seed": int(seed), "offset": int(offset)})

    # -- steps ---------------------------------------------------------------------
    def train_step(self, model, xs, ys, sample_weight):
        """One training step on this rank's part of the global batch."""
        data = self._data
        position = data.position
        saved = snapshot_states(model) if data.stand_in else None
        self._buckets.begin(position.weight)
        self.position = position
        cnnc_random.set_batch_position(position.start, position.rows)
        model._backward_hook = self._buckets.layer_done
        _context.set_running(self)
        self._stepping = True
        try:
            model._train_batch(xs, ys, sample_weight)
        finally:
            self._stepping = False
            _context.set_running(None)
            model._backward_hook = None
            cnnc_random.set_batch_position(None)
            self.position = None
        if saved is not None:
            restore_states(model, saved)
        self.steps += 1
        if self.check_every and self.steps % self.check_every == 0:
            self.check_weights(model)

    def finish_gradients(self):
        """Called between backward and the update: the averaged gradients."""
        if self._stepping:
            self._buckets.finish()

    @property
    def comm_wait_seconds(self):
        """Time spent waiting for gradient allreduces (since the last fit)."""
        return 0.0 if self._buckets is None else self._buckets.wait_seconds

    def logs_context(self, model):
        """While open, the model's metrics hold their sums over all ranks."""
        return reduced_metrics(model, self.comm)

    def end_epoch(self, model):
        """Average the non-trainable weights (per-rank batch-norm moving
        statistics) so that every rank validates and saves the same model."""
        weights = [w for w in model.non_trainable_weights if w.dtype.kind == "f"]
        if not weights:
            return
        # float64 sums: identical values come back exactly (P * v / P == v).
        flat = np.concatenate([w.value.reshape(-1).astype(np.float64) for w in weights])
        self.comm.allreduce(flat, "averaging the non-trainable weights")
        flat /= self.size
        offset = 0
        for w in weights:
            n = w.size
            w.value[...] = flat[offset:offset + n].reshape(w.shape)
            offset += n

    def check_weights(self, model):
        """Raise on every rank if the trainable weights differ across ranks."""
        weights = model.trainable_weights
        sums = np.array([zlib.crc32(np.ascontiguousarray(w.value).view(np.uint8))
                         for w in weights], np.int64)
        reference = self.comm.broadcast(sums.copy(), "comparing weight checksums")
        differ = [w.name for w, a, b in zip(weights, sums, reference) if a != b]
        everyone = self.comm.allgather_json(differ, "comparing weight checksums")
        bad = {rank: names for rank, names in enumerate(everyone) if names}
        if bad:
            detail = "; ".join(f"rank {r}: {', '.join(n[:5])}" for r, n in bad.items())
            raise RuntimeError(f"cnnc.distributed: after step {self.steps} the weights differ "
                               f"from rank 0's ({detail})")

    # -- collectives for layers ------------------------------------------------------
    def allreduce(self, array, what):
        """Sum of ``array`` over the ranks, in place (for layers such as
        SyncBatchNormalization)."""
        return self.comm.allreduce(array, what)


def _check_launcher(MPI):
    """Refuse a process that its launcher placed in a job of several ranks
    but that MPI runs alone: mpi4py uses another MPI than the launcher's,
    and every process would train (and write its outputs) by itself."""
    launched = launched_as()
    size = MPI.COMM_WORLD.Get_size()
    if launched is not None and launched.size > 1 and size == 1:
        raise LauncherMismatchError(mismatch_message(launched, size, MPI.Get_library_version()))


def _differences(mine, reference, prefix=""):
    """(key path, value, reference value) where two descriptions differ."""
    for key in sorted(set(mine) | set(reference)):
        a, b = mine.get(key), reference.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", a, b


def _summary(value, limit=160):
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
