"""One flat buffer for the parameters, gradients and slots of an optimizer.

An update then runs as one kernel call (one parallel region) over every
parameter instead of one per weight. Each weight's ``value`` and ``grad``
become views into the flat buffers (their contents copied over), and each
weight's slots are views into one flat array per slot name, so layers,
saving and ``Optimizer.slots`` keep seeing one array per weight.
"""
import numpy as np

# Each weight starts on a 64-byte boundary of the buffers, as the C kernels'
# vector loops prefer; no weight views the gaps, so what an update leaves
# there is never read.
_ALIGN = 16


class _FlatWeight:
    """Stands in for a weight in ``Optimizer._create_slots`` so that the
    slots it creates cover the whole flat buffer."""

    def __init__(self, value):
        self.value = value
        self.name = "flat"


class FlatState:
    """Weights packed into shared buffers, in order, with their slots."""

    def __init__(self, weights, create_slots, old_slots):
        """``create_slots(weight)`` makes the slots of one weight;
        ``old_slots`` maps id(weight) to slots to carry over (per-weight
        arrays, or views into an earlier FlatState)."""
        self.weights = list(weights)
        self.offsets, total = [], 0
        for w in self.weights:
            self.offsets.append(total)
            total += -(-w.size // _ALIGN) * _ALIGN
        self.size = total
        self.value = np.zeros(total, np.float32)
        self.grad = np.zeros(total, np.float32)
        self.slots = create_slots(_FlatWeight(self.value))
        self.weight_slots = {}
        for w, start in zip(self.weights, self.offsets):
            view = self._view(self.value, w, start)
            view[...] = w.value
            w.value = view
            view = self._view(self.grad, w, start)
            if w.has_grad:  # else the zeros stand for it, with no copy made
                view[...] = w.grad
            w.grad = view
            mine = {name: self._view(flat, w, start) for name, flat in self.slots.items()}
            for name, array in (old_slots.get(id(w)) or {}).items():
                if name in mine:
                    mine[name][...] = array
            self.weight_slots[id(w)] = mine
        self._key = tuple(map(id, self.weights))

    @staticmethod
    def _view(flat, weight, start):
        return flat[start:start + weight.size].reshape(weight.shape)

    def holds(self, weights):
        """Whether these weights, in this order, still live in the buffers
        (another optimizer may have packed them since)."""
        if tuple(map(id, weights)) != self._key:
            return False
        return all(w.value.base is self.value and w.has_grad and w.grad.base is self.grad
                   for w in weights)

    def span(self, first, last):
        """[begin, end) of the buffers covering weights first..last."""
        w = self.weights[last]
        return self.offsets[first], self.offsets[last] + w.size
