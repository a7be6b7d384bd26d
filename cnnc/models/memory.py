"""Peak memory of a model's training step or inference pass, estimated from
its graph before any work is done (``cnnc.utils.estimate_memory``), and the
check that refuses a batch that cannot fit.

The estimate follows what the engine holds at its peak:

* training: the weights, their gradients and the optimizer's slots (and,
  on the first step, the copy an optimizer makes packing them); every
  tensor of the graph computed by the forward pass (the model keeps them all
  until backward ends, and each layer's backward reads its own input or
  output); the extra arrays some layers keep (a fused activation whose
  backward needs its input keeps the pre-activation too, a dropout mask); one gradient per
  tensor that backward reaches (gradients are held until backward ends), one
  more where several layers read a tensor (their gradients are summed); and
  the scratch: the kernels pack the largest weight array (or its gradient's
  partial) into a buffer of its size, and a layer's backward takes a
  temporary of up to the largest tensor's size;
* inference (``evaluate``, ``model(x, training=False)``): the weights, the
  tensors alive at the worst point of the forward pass (each is freed after
  its last reader) and the packed copy of the largest weight array.
  ``predict`` runs the C runtime, which also holds a folded copy of the
  weights.

The scratch terms were calibrated against the peak RSS measured on the
zoo models (``benchmarks/bench_models.py --check-estimate``).

Sizes are float32 (4 bytes per element); figures are bytes.
"""
import math
import os

import numpy as np

_FLOAT = 4


class MemoryEstimate:
    """An estimated peak in bytes, with its parts.

    weights, gradients, optimizer_slots: parameter memory (every weight has
    a gradient array from the moment it is built).
    activations: tensors kept for backward (training) or alive at the worst
    point of the forward pass (inference). gradients_of_activations: the
    backward pass's gradients (0 at inference). workspace: the kernels'
    scratch (a packed copy of the largest weight array; in training also
    one backward temporary of the largest tensor's size). runtime_weights:
    the C runtime's copy of the weights (predict only). packing: the copy of
    the trainable weights and gradients an optimizer makes when it first
    lays them into its flat buffers. ``total`` sums them.
    """

    _PARTS = ("weights", "gradients", "optimizer_slots", "activations",
              "gradients_of_activations", "workspace", "runtime_weights", "packing")

    def __init__(self, batch_size, training, **parts):
        self.batch_size = batch_size
        self.training = training
        for name in self._PARTS:
            setattr(self, name, int(parts.get(name, 0)))

    @property
    def total(self):
        # The packing copy is made and freed before the step's tensors exist.
        step = self.activations + self.gradients_of_activations + self.workspace
        return (self.weights + self.gradients + self.optimizer_slots + self.runtime_weights
                + max(step, self.packing))

    @property
    def working_set(self):
        """What a run adds to the model's weight and gradient arrays (which
        exist from the moment the model is built)."""
        return self.total - self.weights - self.gradients

    def __int__(self):
        return self.total

    def as_dict(self):
        return {name: getattr(self, name) for name in self._PARTS + ("total",)}

    def __repr__(self):
        kind = "training" if self.training else "inference"
        parts = ", ".join(f"{name}={format_bytes(getattr(self, name))}" for name in self._PARTS
                          if getattr(self, name))
        return (f"<MemoryEstimate {kind} batch={self.batch_size} total="
                f"{format_bytes(self.total)} ({parts})>")


def format_bytes(n):
    """``n`` bytes as a short human-readable figure (binary units)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024.0 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TiB"


def _elements(shape, batch_size):
    count = int(batch_size)
    for d in shape[1:]:
        if d is None:
            raise ValueError(f"cannot estimate memory: a tensor of shape {shape} has an "
                             f"unknown size other than the batch")
        count *= int(d)
    return count


def _optimizer_slot_count(optimizer):
    """How many weight-sized arrays the optimizer keeps per trainable weight."""
    if optimizer is None or isinstance(optimizer, str):
        return 0
    from cnnc.layers.base import Weight
    probe = Weight("probe", np.zeros(1, np.float32))
    slots = optimizer._create_slots(probe)
    return sum(1 for a in slots.values() if isinstance(a, np.ndarray))


def _packing_copy(optimizer, weights):
    """Bytes an optimizer that packs its weights into flat buffers copies at
    the start of training (values and gradients, while the per-weight arrays
    still exist): 0 once it holds these weights, or for one that updates
    weight by weight."""
    if optimizer is None or isinstance(optimizer, str) or not weights \
            or not getattr(optimizer, "_elementwise_slots", False):
        return 0
    flat = getattr(optimizer, "_flat", None)
    if flat is not None and flat.holds(weights):
        return 0
    return 2 * _weight_bytes(weights)


def _weight_bytes(weights):
    return sum(w.value.nbytes for w in weights)


# The matrix products pack the weight operand in blocks; beyond this size a
# weight is packed a block at a time.
_PACKED_WEIGHT_CAP = 16 << 20


def _largest_kernel(model):
    """Bytes of scratch for packing weights: the kernels pack a weight
    matrix (or its gradient's per-thread partial) into a buffer of about its
    size, up to a block, kept for reuse."""
    largest = max((w.value.nbytes for w in model.weights), default=0)
    return min(largest, _PACKED_WEIGHT_CAP)


def _walk(model, batch_size):
    """(input shapes, output shapes, layer) of every step of a graph model."""
    shapes = model._slot_shapes
    for step in model._steps:
        yield step, [shapes[s] for s in step.inputs], [shapes[s] for s in step.outputs]


def _extra_kept(layer, out_bytes):
    """Bytes a layer keeps for backward beyond its input and output tensors."""
    act = getattr(layer, "activation", None)
    extra = 0
    if layer.weights and act is not None and not getattr(act, "is_linear", True) \
            and getattr(act, "uses_input", False):
        # a fused activation whose backward needs its input keeps the
        # layer's own pre-activation buffer beside the output
        extra += out_bytes
    if getattr(layer, "rate", 0) and type(layer).__name__.endswith("Dropout"):
        extra += out_bytes // _FLOAT  # the mask, one byte per element
    return extra


def estimate_memory(model, batch_size, training=True, optimizer=None, runtime=False):
    """Estimated peak memory (a :class:`MemoryEstimate`, bytes in ``.total``)
    of one training step (``training=True``) or one inference pass of
    ``model`` on a batch of ``batch_size`` samples.

    optimizer: the optimizer to count slots for (default: the compiled one;
    none when the model is not compiled). runtime: inference through the C
    runtime (``predict``), which adds its copy of the weights.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model._require_graph()
    if getattr(model, "_traced", False):
        raise ValueError(f"model {model.name!r}: memory estimates need a graph model "
                         f"(functional or Sequential), not a subclassed one")
    batch_size = int(batch_size)
    weights = _weight_bytes(model.weights)
    workspace = _largest_kernel(model)
    outputs = {}
    for step, in_shapes, out_shapes in _walk(model, batch_size):
        for s, shape in zip(step.outputs, out_shapes):
            outputs[s] = _FLOAT * _elements(shape, batch_size)
    if not training:
        return MemoryEstimate(batch_size, False, weights=weights, gradients=weights,
                              activations=_inference_live_peak(model, outputs),
                              workspace=workspace,
                              runtime_weights=weights if runtime else 0)
    trainable_weights = model.trainable_weights
    trainable = _weight_bytes(trainable_weights)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    kept = sum(outputs.values())
    grads = 0
    for step, _, _ in _walk(model, batch_size):
        out_bytes = outputs[step.outputs[0]]
        kept += _extra_kept(step.layer, out_bytes)
        for s in step.outputs:
            grads += outputs[s]
            if model._consumers[s] > 1:
                grads += outputs[s]  # the buffer summing its readers' gradients
    return MemoryEstimate(batch_size, True, weights=weights, gradients=weights,
                          optimizer_slots=trainable * _optimizer_slot_count(optimizer),
                          packing=_packing_copy(optimizer, trainable_weights),
                          activations=kept, gradients_of_activations=grads,
                          workspace=workspace + max(outputs.values(), default=0))


def _inference_live_peak(model, outputs):
    """Largest sum of tensors alive at once in an inference forward pass
    (a tensor dies after its last reader; model outputs stay)."""
    live = 0
    peak = 0
    for step in model._steps:
        for s in step.outputs:
            live += outputs[s]
        peak = max(peak, live)
        for s in model._dead_after[step.index]:
            live -= outputs.get(s, 0)
    return peak


def _cgroup_limit():
    """The memory limit of this process's cgroup (v2 or v1), or None."""
    candidates = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                path = line.strip().split(":", 2)[-1]
                if path and path != "/":
                    candidates.insert(0, f"/sys/fs/cgroup{path}/memory.max")
    except OSError:
        pass
    for path in candidates:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text and text != "max":
            value = int(text)
            if value < 1 << 60:  # cgroup v1 writes a huge number for "no limit"
                return value
    return None


def _cgroup_usage():
    for path in ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes"):
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    return None


def available_memory():
    """Bytes this process can still allocate: the smaller of the system's
    MemAvailable and what the cgroup limit leaves; None when unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_limit()
    if limit is not None:
        usage = _cgroup_usage() or 0
        room = max(0, limit - usage)
        available = room if available is None else min(available, room)
    return available


def check_fits(model, data, training, what, runtime=False):
    """Raise MemoryError, before any work, when the estimated peak of
    ``what`` (fit / evaluate / predict) on the batches of ``data`` exceeds
    the memory still available. The weights and their gradient arrays
    already exist, so only the rest (``working_set``) counts.
    ``CNNC_SKIP_MEMORY_CHECK=1`` turns the check off."""
    if os.environ.get("CNNC_SKIP_MEMORY_CHECK", "") not in ("", "0"):
        return
    batch_size = getattr(data, "batch_size", None)
    if batch_size is None or getattr(model, "_traced", False) \
            or not getattr(model, "_graph_ready", False):
        return
    samples = getattr(data, "num_samples", None)
    if samples:
        batch_size = min(batch_size, samples)
    available = available_memory()
    if available is None:
        return
    try:
        estimate = estimate_memory(model, batch_size, training=training, runtime=runtime)
    except ValueError:  # a tensor of unknown size: nothing to check against
        return
    if estimate.working_set > available:
        raise MemoryError(
            f"{what} with batch_size={estimate.batch_size} needs an estimated "
            f"{format_bytes(estimate.total)} at its peak ({format_bytes(estimate.working_set)} "
            f"beyond the weights and gradients already allocated) but only "
            f"{format_bytes(available)} is available; use a smaller batch_size ({estimate!r})")
