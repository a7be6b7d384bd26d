"""Peak memory of a model's training step or inference pass, estimated from
its graph before any work is done (``cnnc.utils.estimate_memory``), and the
check that refuses a batch that cannot fit.

The estimate follows what the engine holds at its peak:

* training: the weights, their gradients and the optimizer's slots (on
  the first step, the optimizer's packing of the weights into its flat
  buffers comes first: the copy holds the values twice, but its new
  gradient buffer is zeros not yet written, so it peaks above the step only
  where gradient arrays existed already, which it copies too); the
  tensors and gradients alive at the worst moment of the step, following
  the engine's liveness (a tensor lives until its last reader in forward,
  or until the backward that reads it; an activation or residual sum
  written in place shares its input's bytes; a gradient lives from the
  backward of the tensor's last reader to that of its producer); the extra
  arrays some layers keep (a fused activation whose backward needs its
  input keeps the pre-activation too, a dropout mask); and the scratch: the
  kernels pack the largest weight array into a buffer of its size, and
  with two threads or more the second one's partial sums of its gradient
  take as much (both kept by the threads between calls). A warm step's tensors come from an arena planned
  from the first step (``cnnc._memory.StepArena``), whose size is that
  peak of live bytes;
* inference (``evaluate``, ``model(x, training=False)``): the weights, the
  tensors alive at the worst point of the forward pass (each is freed after
  its last reader) and the packed copy of the largest weight array.
  ``predict`` runs the C runtime, which reads the kernels in place and
  holds what its convolutions read instead: their packed panels (about the
  kernel's size), or a 3x3 kernel's Winograd transform (16/9 or 4 times
  it; where batch 1 takes the implicit GEMM, its panels, and the transform
  once a batch takes Winograd), with batch norm folded in; a dense layer's
  panels only once a call of more than ``_DENSE_INPLACE_ROWS`` rows made
  them (``_runtime_weight_bytes``); once loaded, at least its own count
  (``LoadedModel.weight_bytes``).

The scratch terms were calibrated against the peak RSS measured on the
zoo models (``benchmarks/bench_models.py --check-estimate``).

Sizes are float32 (4 bytes per element); figures are bytes.
"""
import math
import os
import time

import numpy as np

_FLOAT = 4


class MemoryEstimate:
    """An estimated peak in bytes, with its parts.

    weights, gradients, optimizer_slots: parameter memory (a weight's
    gradient array is made by the first training step: at inference,
    ``gradients`` counts only those that exist already).
    activations, gradients_of_activations: the tensors and their gradients
    alive at the worst moment of a training step (activations alone at
    inference). workspace: the kernels' scratch (in training a packed copy
    of the largest weight array, a second one for a thread's partial
    gradient, and a tensor-sized temporary; at inference blocks of about one L2 per
    thread, at most that copy, and outside the C runtime that copy too).
    runtime_weights:
    the C runtime's packed forms of the kernels (predict only). packing: a
    copy made and freed before the run's tensors exist: the trainable
    weights (and their gradients if they exist) an optimizer copies when it
    first lays them into its flat buffers, or the largest kernel, folded
    through a copy while the C runtime loads on the first ``predict``.
    ``total`` is the larger of the run's peak and the packing's: in
    training the weights, slots and either the gradients with the step's
    tensors, or the copy beside the gradients that existed before it (the
    gradient buffer the copy makes is zeros, resident only once written);
    at inference the weights, gradients, runtime weights and the larger of
    the copy and the pass's tensors.
    """

    _PARTS = ("weights", "gradients", "optimizer_slots", "activations",
              "gradients_of_activations", "workspace", "runtime_weights", "packing")

    def __init__(self, batch_size, training, resident=None, **parts):
        self.batch_size = batch_size
        self.training = training
        for name in self._PARTS:
            setattr(self, name, int(parts.get(name, 0)))
        # what exists before the run: the weights and any gradient arrays
        self.resident = int(self.weights + self.gradients if resident is None else resident)

    @property
    def total(self):
        # The packing copy is made and freed before the step's tensors exist.
        step = self.activations + self.gradients_of_activations + self.workspace
        if self.training:
            existing = self.resident - self.weights  # gradient arrays made before the run
            return (self.weights + self.optimizer_slots
                    + max(self.gradients + step, existing + self.packing))
        return (self.weights + self.gradients + self.optimizer_slots + self.runtime_weights
                + max(step, self.packing))

    @property
    def working_set(self):
        """What a run adds to the memory the model already holds (its
        weights, and the gradient arrays once a training step made them)."""
        return self.total - self.resident

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
    the start of training (the values, and the gradients that exist, while
    the per-weight arrays still exist): 0 once it holds these weights, or
    for one that updates weight by weight."""
    if optimizer is None or isinstance(optimizer, str) or not weights \
            or not getattr(optimizer, "_elementwise_slots", False):
        return 0
    flat = getattr(optimizer, "_flat", None)
    if flat is not None and flat.holds(weights):
        return 0
    return _weight_bytes(weights) + sum(w.nbytes for w in weights if w.has_grad)


def _weight_bytes(weights):
    return sum(w.nbytes for w in weights)


# The matrix products pack the weight operand in blocks; beyond this size a
# weight is packed a block at a time.
_PACKED_WEIGHT_CAP = 16 << 20


# An inference pass's convolutions work through their tiles in blocks of
# about one L2 per thread (the Winograd transforms and products: see
# src/conv/winograd.c), so that part of their scratch does not grow with
# the weights.
_FORWARD_SCRATCH_PER_THREAD = 1 << 20


def _forward_scratch(model, runtime):
    """Bytes of scratch of an inference pass through the layers: the blocks
    above and, outside the C runtime (which packs its kernels once, at
    load: ``runtime_weights``), the largest kernel packed for the call (the
    implicit GEMM's panels or the Winograd transform), kept by the calling
    thread (ResNet-18 at 64x64, batch 8: its 9 MiB 512x512 kernel, beside
    6 MiB of tensors)."""
    from cnnc import get_num_threads
    blocks = min(_largest_kernel(model), _FORWARD_SCRATCH_PER_THREAD * max(1, get_num_threads()))
    return blocks if runtime else blocks + _largest_kernel(model)


def _largest_kernel(model):
    """Bytes of scratch for packing weights: the kernels pack a weight
    matrix (or its gradient's per-thread partial) into a buffer of about its
    size, up to a block, kept for reuse."""
    largest = max((w.nbytes for w in model.weights), default=0)
    return min(largest, _PACKED_WEIGHT_CAP)


# The C runtime's Winograd choice (src/conv/select.c: winograd_chosen,
# winograd_tile, winograd_packed_tile): its thresholds and cost model.
_WINOGRAD_MIN_CHANNELS = 16
_WINOGRAD_MIN_TILES = 48
_WINOGRAD_KERNEL_TILES = 184.0


def _winograd_packed(cin, cout, oh, ow):
    """(planes of the transform the runtime keeps, the smallest batch that
    takes it) for a 3x3, stride-1 convolution it may run by Winograd;
    planes 0 for none. Below that batch the implicit GEMM runs, whose
    panels are packed at load; the transform is made by the first batch
    that takes it."""
    th, tw = -(-oh // 2), -(-ow // 2)
    if cin < _WINOGRAD_MIN_CHANNELS or cout < _WINOGRAD_MIN_CHANNELS or 2 * oh * ow < 4 * th * tw \
            or max(cin, cout) < 2 * _WINOGRAD_MIN_CHANNELS:
        return 0, 1
    n = -(-_WINOGRAD_MIN_TILES // (th * tw))
    f2 = 16 * (n * th * tw + _WINOGRAD_KERNEL_TILES)
    f4 = 36 * (n * -(-oh // 4) * -(-ow // 4) + _WINOGRAD_KERNEL_TILES)
    return (36 if f4 < f2 else 16), n


# Dense calls of at most this many rows read the kernel in place, and the
# first call of more packs it (src/model/plan.h: DENSE_INPLACE_ROWS).
_DENSE_INPLACE_ROWS = 2


def _runtime_weight_bytes(model, batch_size):
    """Bytes the C runtime holds for the weights once it ran batches of
    ``batch_size`` (see the module docstring): per convolution or dense
    layer the form its kernel is read in; the small arrays (biases,
    statistics) are copied; depthwise and transposed convolutions and
    embeddings read their arrays in place."""
    from cnnc.layers.base_conv import BaseConv
    from cnnc.layers.conv2d_transpose import Conv2DTranspose
    from cnnc.layers.dense import Dense
    from cnnc.layers.depthwise_conv2d import DepthwiseConv2D
    total = 0
    for step, _, out_shapes in _walk(model, 1):
        layer = step.layer
        if getattr(layer, "_steps", None) is not None:  # a nested graph model runs inlined
            total += _runtime_weight_bytes(layer, batch_size)
            continue
        for w in layer.weights:
            name = w.name.rsplit("/", 1)[-1]
            if name == "embeddings" or name == "depthwise_kernel" or \
                    isinstance(layer, (DepthwiseConv2D, Conv2DTranspose)) and name == "kernel":
                continue
            if name != "kernel" and name != "pointwise_kernel":
                total += w.nbytes
            elif isinstance(layer, BaseConv) and w.shape[:2] == (3, 3) and len(w.shape) == 4 \
                    and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1) \
                    and layer.groups == 1 and len(out_shapes[0]) == 4:
                planes, first = _winograd_packed(w.shape[2], w.shape[3], out_shapes[0][1],
                                                 out_shapes[0][2])
                total += planes * w.shape[2] * w.shape[3] * _FLOAT if batch_size >= first else 0
                total += w.nbytes if first > 1 or not planes else 0
            elif isinstance(layer, Dense):
                # read in place by calls of few rows; packed by the first of more
                rows = batch_size * math.prod(int(d) for d in out_shapes[0][1:-1])
                total += w.nbytes if rows > _DENSE_INPLACE_ROWS else 0
            elif isinstance(layer, BaseConv):
                total += w.nbytes
    return total


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
    # Gradient arrays are made by the first backward (or the optimizer's
    # packing); the ones that exist already are resident before the run.
    existing_grads = sum(w.nbytes for w in model.weights if w.has_grad)
    resident = weights + existing_grads
    if not training:
        workspace = _forward_scratch(model, runtime)
        entry = model.__dict__.get("_inference_entry")
        loaded = runtime and entry is not None and entry.loaded is not None
        held = 0
        if runtime:
            held = _runtime_weight_bytes(model, batch_size)
            if loaded:  # what it made for earlier batches too
                held = max(held, entry.loaded.weight_bytes)
        return MemoryEstimate(batch_size, False, weights=weights, gradients=existing_grads,
                              activations=_inference_live_peak(model, outputs),
                              workspace=workspace,
                              runtime_weights=held,
                              packing=_largest_kernel(model) if runtime and not loaded else 0,
                              resident=resident + (held if loaded else 0))
    trainable_weights = model.trainable_weights
    trainable = _weight_bytes(trainable_weights)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    activations, grads = _training_live_peak(model, outputs)
    for step, _, _ in _walk(model, batch_size):
        activations += _extra_kept(step.layer, outputs[step.outputs[0]])
    # one backward temporary of up to the largest tensor's size; with a
    # team, a second thread's partial sums of the largest weight gradient
    from cnnc import get_num_threads
    workspace += max(outputs.values(), default=0)
    if get_num_threads() > 1:
        workspace += _largest_kernel(model)
    return MemoryEstimate(batch_size, True, weights=weights, gradients=trainable,
                          optimizer_slots=trainable * _optimizer_slot_count(optimizer),
                          packing=_packing_copy(optimizer, trainable_weights),
                          activations=activations, gradients_of_activations=grads,
                          workspace=workspace, resident=resident)


def _training_live_peak(model, outputs):
    """(activation bytes, gradient bytes) alive at the worst moment of a
    training step, following the engine's liveness: a tensor lives from its
    layer's forward to its last forward reader, or, when a layer's backward
    reads it (the producer its output, a reader its input), to that
    backward; an output written in place over an input shares its bytes; a
    gradient lives from the backward of its last reader to the backward of
    its producer (one more array while a second reader's part is summed in)."""
    model._configure_backward(False)
    steps = model._steps
    n = len(steps)
    end_time = 2 * n  # past the last backward: the model's outputs live to here
    outside = set(model._input_slots)
    kept_to_end = set(model._output_slots)
    readers = {}
    for step in steps:
        for s in step.inputs:
            readers.setdefault(s, []).append(step)
    root = {}
    for step in steps:
        target = None
        if step.overwrite and not step.multi_out:
            position = next((i for i in step.overwrite if i < 2), None)
            if position is not None:
                target = root.get(step.inputs[position], step.inputs[position])
        for s in step.outputs:
            root[s] = target if target is not None else s
    act = [0] * (end_time + 2)
    grad = [0] * (end_time + 2)

    def live(array, start, stop, size):  # alive at times start..stop inclusive
        array[start] += size
        array[stop + 1] -= size

    # Recomputed segments (compile(recompute=...)): their layers let go of
    # what they keep when the segment's forward ends and keep it again from
    # the segment's replay, just before its backward; a segment's inputs are
    # held until then.
    segment_of = {}
    plan = getattr(model, "_recompute_plan", None)
    if plan is not None:
        for seg in plan.ends.values():
            bounds = (seg.steps[0].index, seg.steps[-1].index)
            for st in seg.steps:
                segment_of[st.index] = bounds
    spans = {}
    for step in steps:
        p = step.index
        for s in step.outputs:
            stop = p
            if s in kept_to_end:
                stop = end_time
            keepers = [p] if step.backward and step.layer.backward_reads_output() else []
            for c in readers.get(s, ()):
                stop = max(stop, c.index)
                if c.backward and not c.layer.writes_in_place():
                    keepers.append(c.index)
                bounds = segment_of.get(c.index)
                if bounds is not None and bounds[0] > p:  # a recomputed segment's input
                    stop = max(stop, 2 * n - 1 - bounds[1])
            r = root[s]
            intervals = spans.setdefault(r, [])
            for k in keepers:
                bounds = segment_of.get(k)
                if bounds is not None and bounds[0] <= p:
                    stop = max(stop, bounds[1])
                    intervals.append((2 * n - 1 - bounds[1], 2 * n - 1 - k))
                else:
                    stop = max(stop, 2 * n - 1 - k)
            intervals.append((p, stop))
            if not model._requires[s] or not step.backward:
                continue
            arrivals = sorted(2 * n - 1 - c.index for c in readers.get(s, ())
                              if c.backward and c.needs_dx)
            if s in kept_to_end:
                arrivals.insert(0, n)  # the loss's gradient, before any backward
            if arrivals:
                live(grad, arrivals[0], 2 * n - 1 - p, outputs[s])
                for t in arrivals[1:]:  # the sum of two parts, made while both exist
                    live(grad, t, t, outputs[s])
    if plan is not None:
        # a replay's passing tensors: about one of its largest at a time
        for seg in plan.ends.values():
            t = 2 * n - 1 - seg.steps[-1].index
            live(act, t, t, max(outputs[s] for st in seg.steps for s in st.outputs))
    for r, intervals in spans.items():
        if r in outside:
            continue
        intervals.sort()
        first, last = intervals[0]
        for start, stop in intervals[1:]:  # the union: an array is counted once
            if start > last + 1:
                live(act, first, last, outputs[r])
                first = start
            last = max(last, stop)
        live(act, first, last, outputs[r])
    best = (0, 0)
    a = g = 0
    for t in range(end_time + 1):
        a += act[t]
        g += grad[t]
        if a + g > sum(best):
            best = (a, g)
    return best


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


def _cached_estimate(model, batch_size, training, runtime):
    """estimate_memory, or None when it cannot tell; for inference,
    remembered on the model while its graph, the C runtime's copy and every
    weight stay the same (what makes repeated small predict calls cheap)."""
    from cnnc.layers.base import _weight_writes
    if training:
        try:
            return estimate_memory(model, batch_size, training=True, runtime=runtime)
        except ValueError:
            return None
    key = (model.__dict__.get("_steps"), model.__dict__.get("_inference_entry"),
           _weight_writes[0], batch_size, training, runtime)
    cached = model.__dict__.get("_memory_estimate")
    if cached is not None and len(cached[0]) == len(key) and all(
            a is b or a == b for a, b in zip(cached[0], key)):
        return cached[1]
    try:
        estimate = estimate_memory(model, batch_size, training=training, runtime=runtime)
    except ValueError:
        estimate = None
    model.__dict__["_memory_estimate"] = (key, estimate)
    return estimate


_last_available = [None, None, 0.0]  # (reader, bytes, monotonic time)


def _recent_available_memory(need):
    """available_memory(), reusing a reading under a second old while
    ``need`` is under half of it: reading /proc and the cgroup files costs
    about as much as a small model's whole inference."""
    reader = available_memory
    previous_reader, previous, when = _last_available
    now = time.monotonic()
    if previous_reader is reader and previous is not None and now - when < 1.0 \
            and need <= previous // 2:
        return previous
    available = reader()
    _last_available[:] = [reader, available, now]
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
    estimate = _cached_estimate(model, batch_size, training, runtime)
    if estimate is None:  # a tensor of unknown size: nothing to check against
        return
    available = _recent_available_memory(estimate.working_set)
    if available is None:
        return
    if estimate.working_set > available:
        raise MemoryError(
            f"{what} with batch_size={estimate.batch_size} needs an estimated "
            f"{format_bytes(estimate.total)} at its peak ({format_bytes(estimate.working_set)} "
            f"beyond the weights and gradients already allocated) but only "
            f"{format_bytes(available)} is available; use a smaller batch_size ({estimate!r})")
