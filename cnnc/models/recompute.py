"""Recomputation (gradient checkpointing) for graph models.

``model.compile(..., recompute=True)`` cuts the graph into segments at block
boundaries: points of the forward pass where a single tensor carries
everything later layers read (a ResNet block's output; any layer's output
in a plain stack). A training forward keeps each segment's input and drops
what its layers kept for backward once the segment is done; backward, on
reaching a segment, runs its forward again from that input, then its
backward. At most one segment's activations are alive at a time beside the
boundaries, at the cost of a second forward pass of every segment but the
last.

The second forward reproduces the first exactly: every layer is put back
in the state it had before the first (a dropout layer's position in its
random stream, an augmentation layer's call count), and the weights a
forward updates (batch norm's moving statistics) are restored after it, so
they are updated once per step. Gradients equal those of a step without
recomputation to the last bit.

``recompute=True`` picks boundaries about sqrt(steps) layers apart;
``recompute=[layer names]`` makes those layers' outputs the boundaries
(each must be a block boundary). Segments with a shared layer or with a
model output run as without recomputation.
"""
import math


def check_spec(spec):
    """``spec`` as False, True or a tuple of layer names (else ValueError)."""
    if spec is None or spec is False:
        return False
    if spec is True:
        return True
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(n, str) for n in spec):
        return tuple(spec)
    raise ValueError(f"recompute must be True, False or a list of layer names, got {spec!r}")


class Segment:
    """Steps ``steps`` (consecutive, in forward order) whose forward runs
    again in backward; ``input_slots``: the tensors they read from before."""

    def __init__(self, steps, input_slots):
        self.steps = steps
        self.input_slots = input_slots
        self.inputs = None
        self.states = None

    def begin(self, values):
        """Before the segment's forward: keep its inputs and its layers'
        states."""
        self.inputs = {s: values[s] for s in self.input_slots}
        self.states = [step.layer._save_state() for step in self.steps]

    def end(self):
        """After the segment's forward: drop what its layers kept for
        backward (the replay makes it again)."""
        for step in self.steps:
            step.layer.release_backward_state()

    def replay(self, model):
        """Run the segment's forward again, as the first time."""
        if self.inputs is None:
            raise RuntimeError("recomputation: backward needs a training forward first")
        for step, state in zip(self.steps, self.states):
            step.layer._restore_state(state)
        updated = [(w, w.value.copy()) for step in self.steps
                   for w in step.layer.forward_updated_weights()]
        values = [None] * model._n_slots
        for s, v in self.inputs.items():
            values[s] = v
        self.inputs = self.states = None
        shapes = {}
        for step in self.steps:
            model._forward_step(step, values, True, (), shapes, in_place=False)
        if shapes:
            model._multi_out_shapes.update(shapes)
        for w, value in updated:  # updated once per step, by the first forward
            w.value[...] = value

    def release(self):
        self.inputs = self.states = None


class Plan:
    """The segments of a model: ``ends`` maps a segment's last step index to
    it, ``starts`` its first; ``keep_inputs``: steps that must not write over
    their input, a segment's input kept for its replay."""

    def __init__(self, segments):
        self.ends = {seg.steps[-1].index: seg for seg in segments}
        self.starts = {seg.steps[0].index: seg for seg in segments}
        self.keep_inputs = {step.index for seg in segments for step in seg.steps
                            if any(step.inputs[i] in seg.input_slots for i in step.overwrite)}

    def release(self):
        for seg in self.ends.values():
            seg.release()


def plan(model, spec, logits_steps=()):
    """The Plan of ``model`` (a graph model) for ``spec`` (see check_spec)."""
    steps = model._steps
    n = len(steps)
    outputs = set(model._output_slots)
    inputs = set(model._input_slots)
    last_read = {}
    for step in steps:
        for s in step.inputs:
            last_read[s] = step.index
    # Tensors crossing the cut after step p: made at or before p, read after.
    crossing = []
    live = set(s for s in inputs if last_read.get(s, -1) >= 0)
    for step in steps:
        live.update(step.outputs)
        live = {s for s in live if last_read.get(s, -1) > step.index or s in outputs}
        crossing.append(live - outputs - inputs)
    cuttable = {}
    for step in steps:
        carried = crossing[step.index]
        if len(carried) == 1 and next(iter(carried)) in step.outputs and step.index < n - 1:
            cuttable[step.index] = next(iter(carried))
    if spec is True:
        gap = max(2, round(math.sqrt(n)))
        cuts, last = [], -1
        for p in sorted(cuttable):
            if p - last >= gap:
                cuts.append(p)
                last = p
    else:
        by_name = {}
        for step in steps:
            by_name.setdefault(step.layer.name, []).append(step.index)
        cuts = []
        for name in spec:
            if name not in by_name:
                raise ValueError(f"recompute names the layer {name!r}, which is not in model "
                                 f"{model.name!r}")
            for p in by_name[name]:
                if p not in cuttable:
                    raise ValueError(f"recompute: the output of layer {name!r} is not a block "
                                     f"boundary (other tensors made before it are read after "
                                     f"it), so it cannot bound a recomputed segment")
                cuts.append(p)
        cuts = sorted(set(cuts))
    segments = []
    start = 0
    for p in cuts:
        chunk = steps[start:p + 1]
        produced = {s for step in chunk for s in step.outputs}
        reads = sorted({s for step in chunk for s in step.inputs if s not in produced})
        if len(chunk) >= 2 and not any(
                step.shared or step.index in logits_steps or set(step.outputs) & outputs
                for step in chunk):
            segments.append(Segment(chunk, reads))
        start = p + 1
    return Plan(segments)
