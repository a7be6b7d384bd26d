"""Gradient averaging over flat buckets, overlapped with the backward pass.

The trainable weights are grouped, in the order backward produces their
gradients (last layer first), into flat float32 buckets of about
``bucket_bytes``. As each layer's backward finishes, its gradients are
copied into their bucket, scaled by the rank's share of the global batch;
a complete bucket starts a non-blocking ``Iallreduce`` (sum) while backward
goes on with the layers below. ``finish`` waits for the last buckets and
copies the sums back into ``weight.grad``, so the optimizer sees the
gradient of the global batch on every rank.

Buckets start in bucket order on every rank (a bucket waits for the ones
before it), as MPI requires collectives to be called in the same order.
"""
import time

import numpy as np


class GradientBuckets:
    def __init__(self, comm, weights, bucket_bytes):
        self.comm = comm
        self.weights = list(weights)
        limit = max(1, int(bucket_bytes) // 4)
        # Backward produces the last layers' gradients first.
        order = list(reversed(self.weights))
        groups, current, size = [], [], 0
        for w in order:
            if current and size + w.size > limit:
                groups.append(current)
                current, size = [], 0
            current.append(w)
            size += w.size
        if current:
            groups.append(current)
        self.buffers = []
        self.slot = {}          # id(weight) -> (bucket, offset)
        self.members = []
        for b, group in enumerate(groups):
            total = sum(w.size for w in group)
            self.buffers.append(np.empty(total, np.float32))
            self.members.append(group)
            offset = 0
            for w in group:
                self.slot[id(w)] = (b, offset)
                offset += w.size
        self.total_floats = sum(buf.size for buf in self.buffers)
        self.wait_seconds = 0.0
        self._reset()

    def _reset(self):
        self.missing = [len(m) for m in self.members]
        self.seen = set()
        self.requests = []
        self.started = 0

    def begin(self, scale):
        """Start a step whose gradients count ``scale`` in the global mean."""
        self._reset()
        self.scale = np.float32(scale)

    def layer_done(self, layer):
        """``layer``'s backward is over: queue its weights' gradients."""
        for w in layer.trainable_weights:
            key = id(w)
            where = self.slot.get(key)
            if where is None or key in self.seen:
                continue
            self.seen.add(key)
            b, offset = where
            n = w.size
            np.multiply(w.grad.reshape(-1), self.scale, out=self.buffers[b][offset:offset + n])
            self.missing[b] -= 1
        self._start_ready()
        self.comm.progress(self.requests)

    def _start_ready(self):
        while self.started < len(self.buffers) and self.missing[self.started] == 0:
            self.requests.append(self.comm.iallreduce(self.buffers[self.started]))
            self.started += 1

    def finish(self):
        """Wait for every bucket's sum; write them to the weights' grad."""
        # Weights no backward reached (not connected to the loss) have a zero
        # gradient on every rank; the layers below them already zeroed it.
        for b, group in enumerate(self.members):
            if self.missing[b]:
                for w in group:
                    if id(w) not in self.seen:
                        self.seen.add(id(w))
                        _, offset = self.slot[id(w)]
                        np.multiply(w.grad.reshape(-1), self.scale,
                                    out=self.buffers[b][offset:offset + w.size])
                self.missing[b] = 0
        self._start_ready()
        start = time.perf_counter()
        self.comm.wait(self.requests, "the gradient allreduce")
        self.wait_seconds += time.perf_counter() - start
        for b, group in enumerate(self.members):
            buffer = self.buffers[b]
            offset = 0
            for w in group:
                n = w.size
                w.grad[...] = buffer[offset:offset + n].reshape(w.grad.shape)
                offset += n
