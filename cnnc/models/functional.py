"""The functional model: a directed acyclic graph of layer calls.

``Model(inputs, outputs)`` walks the graph recorded by the layers' symbolic
calls from ``outputs`` back to ``inputs`` and sorts it topologically.
Running it forward drops each tensor after its last reader (a layer whose
backward needs a tensor keeps it), and lets an activation or a residual sum
write over an input no other layer reads; backward visits the nodes in
reverse order, sums the gradients of tensors that feed several nodes (skip
connections), and drops each gradient, and what each layer kept, once used.
With ``compile(recompute=...)`` segments of the forward pass run again in
backward (:mod:`cnnc.models.recompute`).

A layer may be called several times in a graph (shared layers, as in
siamese networks): it keeps the state of its last forward pass for its
backward, so the state each call leaves is saved after its forward pass and
restored before its backward pass, and the gradients of its weights are
summed over the calls.

Subclassing Model and writing ``call()`` (instead of giving inputs and
outputs) makes a subclassed model (see :mod:`cnnc.models.subclassed`).

A Model is itself a Layer: it can be called on symbolic tensors inside
another model (nested models, transfer learning) and trained as a whole.
"""
import contextlib

import numpy as np

from cnnc import _kernels as ops
from cnnc._inference_mode import inference_behaviour
from cnnc.autodiff.tensor import Tensor
from cnnc.layers.base import Layer, SymbolicTensor, _snake_case, merge_weights, unique_name
from cnnc.models import masking, subclassed
from cnnc.models.training import Trainer


class _Step:
    """One node of the sorted graph: slot indices of its inputs/outputs."""

    __slots__ = ("layer", "node", "inputs", "outputs", "multi_in", "multi_out", "backward",
                 "needs_dx", "index", "shared", "overwrite", "inference")

    def __init__(self, index, layer, node, inputs, outputs):
        self.index = index
        self.layer = layer
        self.node = node
        self.inputs = inputs
        self.outputs = outputs
        self.multi_in = len(inputs) > 1
        self.multi_out = len(outputs) > 1
        self.backward = True
        self.needs_dx = True
        self.shared = False
        self.overwrite = ()  # input positions forward may write its output over
        # Called with training=False: inference behaviour in a training pass.
        self.inference = node.training is False


def _flatten_tensors(structure, what):
    if isinstance(structure, SymbolicTensor):
        return [structure], True
    if isinstance(structure, dict):
        structure = list(structure.values())
    if isinstance(structure, (list, tuple)) and structure and all(
            isinstance(t, SymbolicTensor) for t in structure):
        return list(structure), False
    raise TypeError(f"Model {what} must be a symbolic tensor (from cnnc.layers.Input or a layer "
                    f"call) or a list of them, got {structure!r}")


def _call_training(entry, name, calls):
    """The ``training`` argument of each of a config entry's ``calls``
    (None, or False from its ``call_kwargs``)."""
    kwargs = entry.get("call_kwargs")
    if kwargs is None:
        return [None] * calls
    if not isinstance(kwargs, list) or len(kwargs) != calls:
        raise ValueError(f"layer {name!r}: call_kwargs must be a list of one dict per inbound "
                         f"node ({calls}), got {str(kwargs)[:100]}")
    for call in kwargs:
        if not isinstance(call, dict) or set(call) - {"training"} or not (
                call.get("training") is None or call["training"] is False):
            raise ValueError(f"layer {name!r}: a call's kwargs may only hold training=false, "
                             f"got {str(call)[:100]}")
    return [call.get("training") for call in kwargs]


def _is_input_node(node):
    return node is not None and not node.inputs


def _subclass_prefix(cls):
    return _snake_case(cls.__name__)


def _is_symbolic_input(inputs):
    if isinstance(inputs, (list, tuple)):
        return any(isinstance(t, SymbolicTensor) for t in inputs)
    return isinstance(inputs, SymbolicTensor)


def _values(inputs):
    """Arrays behind inputs that may be traced tensors."""
    if isinstance(inputs, (list, tuple)):
        return [t.value if type(t) is Tensor else t for t in inputs]
    return inputs.value if type(inputs) is Tensor else inputs


class _SharedGrads:
    """One backward pass over a graph with shared layers: puts back the
    state each call of a shared layer left before its backward, and sums
    the weight gradients of its calls (each backward overwrites them)."""

    def __init__(self, model):
        self.model = model
        self.sums = {}
        self.owner = {key: steps[-1].index for key, steps in model._shared_steps.items()}

    def restore(self, step):
        key = id(step.layer)
        if self.owner[key] != step.index:
            step.layer._restore_state(self.model._snapshots[step.index])
            self.owner[key] = step.index

    def collect(self, step, dx):
        for w in step.layer.trainable_weights:
            entry = self.sums.get(id(w))
            if entry is None:
                self.sums[id(w)] = [w, w.grad.copy()]
            else:
                entry[1] += w.grad
        # The layer's next backward may reuse the buffers it returned.
        if dx is None:
            return None
        if isinstance(dx, (list, tuple)):
            return [None if d is None else d.copy() for d in dx]
        return dx.copy()

    def finish(self):
        for steps in self.model._shared_steps.values():
            layer = steps[-1].layer
            for w in layer.trainable_weights:
                entry = self.sums.get(id(w))
                if entry is None:
                    w.grad.fill(0.0)
                else:
                    w.grad[...] = entry[1]
            self.restore(steps[-1])
            if self.model._backward_hook is not None:
                self.model._backward_hook(layer)


class Model(Trainer, Layer):
    """A model from symbolic ``inputs`` to ``outputs`` (each a tensor or a
    list of tensors): ``Model(inputs=x_in, outputs=y)``.

    Properties: ``layers`` (in topological order, input layers first),
    ``inputs``, ``outputs``, ``input_shape``, ``output_shape``, ``weights``.
    Training methods (``compile``, ``fit``, ``evaluate``, ``predict``, ...)
    come from :class:`cnnc.models.training.Trainer`.
    """

    # Called with each layer whose backward has finished (set by data-parallel training).
    _backward_hook = None
    # The segments recomputed in backward (cnnc.models.recompute), when compiled so,
    # and whether the last training forward ran them so.
    _recompute_plan = None
    _recompute_active = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._traced and "build" in cls.__dict__:
            subclassed.wrap_user_build(cls)

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        self._steps = []
        self._layers = []
        self._graph_ready = False
        self._output_masks = None
        Layer.__init__(self, trainable=trainable, name=name or unique_name(
            "functional" if not self._traced else _subclass_prefix(type(self))), **kwargs)
        Trainer.__init__(self)
        self._graph_ready = False
        if inputs is None and outputs is None:
            return
        if self._traced:
            raise ValueError(f"{type(self).__name__} writes call(): it takes no inputs/outputs")
        if inputs is None or outputs is None:
            raise ValueError("Model needs both inputs= and outputs=")
        self._init_graph(inputs, outputs)

    # -- graph construction --------------------------------------------------
    def _init_graph(self, inputs, outputs):
        in_tensors, self._single_input = _flatten_tensors(inputs, "inputs")
        out_tensors, self._single_output = _flatten_tensors(outputs, "outputs")
        slots = {}

        def slot(tensor):
            key = id(tensor)
            if key not in slots:
                slots[key] = len(slots)
                shapes.append(tensor.shape)
            return slots[key]

        shapes = []
        for tensor in in_tensors:
            if id(tensor) in slots:
                raise ValueError(f"the tensor {tensor} is given twice in the model inputs")
            slot(tensor)
        input_ids = set(slots)

        order = []
        done = set()
        for out in out_tensors:
            if id(out) in input_ids:
                continue
            self._check_connected(out, input_ids)
            stack = [(out.node, False)]
            while stack:
                node, expanded = stack.pop()
                if id(node) in done:
                    continue
                if expanded:
                    done.add(id(node))
                    order.append(node)
                    continue
                stack.append((node, True))
                for tensor in reversed(node.inputs):
                    if id(tensor) in input_ids:
                        continue
                    self._check_connected(tensor, input_ids)
                    if id(tensor.node) not in done:
                        stack.append((tensor.node, False))

        steps = []
        calls = {}
        for node in order:
            layer = node.layer
            step = _Step(len(steps), layer, node, [slot(t) for t in node.inputs],
                         [slot(t) for t in node.outputs])
            calls.setdefault(id(layer), []).append(step)
            steps.append(step)
        for tensor in out_tensors:
            slot(tensor)
        for layer_steps in calls.values():
            for step in layer_steps:
                step.shared = len(layer_steps) > 1

        input_layers = [t.node.layer if _is_input_node(t.node) else None for t in in_tensors]
        layers = [layer for layer in input_layers if layer is not None]
        layers.extend(steps[0].layer for steps in calls.values())
        names = {}
        for layer in layers:
            if layer.name in names:
                raise ValueError(f"all layer names in a model must be unique; {layer.name!r} "
                                 f"is used by two layers")
            names[layer.name] = layer

        self._input_tensors = in_tensors
        self._output_tensors = out_tensors
        self._input_slots = [slots[id(t)] for t in in_tensors]
        self._output_slots = [slots[id(t)] for t in out_tensors]
        self._n_slots = len(slots)
        self._slot_shapes = shapes
        self._steps = steps
        self._layers = layers
        self._consumers = [0] * len(slots)
        for step in steps:
            for s in step.inputs:
                self._consumers[s] += 1
        # Inference frees each tensor after its last reader (outputs excepted).
        last_reader = {}
        for step in steps:
            for s in step.inputs:
                last_reader[s] = step.index
        kept = set(self._output_slots)
        self._dead_after = [[] for _ in steps]
        for s, index in last_reader.items():
            if s not in kept:
                self._dead_after[index].append(s)
        self._producer = {}
        for step in steps:
            for s in step.outputs:
                self._producer[s] = step
        self._plan_in_place(steps)
        self._shared_steps = {id(steps[0].layer): steps for steps in calls.values()
                              if len(steps) > 1}
        self._snapshots = {}
        self._backward_key = None
        self._compiled_outputs = None  # outputs changed: resolve losses/metrics again
        self._recompute_plan = None
        self._input_layers = input_layers
        self._mask_plans = {}
        self._output_masks = None
        self._graph_ready = True
        self.built = True
        if self.trainable is False:
            self.trainable = False

    def _plan_in_place(self, steps):
        """Let a layer that can (an activation, a residual sum) write its
        output over an input that nothing else reads: not a model input or
        output, read by this step alone, and not kept by its producer for
        backward (batch norm and a convolution keep their input)."""
        outside = set(self._input_slots) | set(self._output_slots)
        for step in steps:
            if step.shared or not step.layer.writes_in_place():
                continue
            positions = []
            for i, s in enumerate(step.inputs):
                producer = self._producer.get(s)
                if (s in outside or self._consumers[s] != 1 or producer is None
                        or producer.shared or producer.multi_out
                        or producer.layer.backward_reads_output()):
                    continue
                positions.append(i)
            step.overwrite = tuple(positions)

    @staticmethod
    def _check_connected(tensor, input_ids):
        if tensor.node is None or _is_input_node(tensor.node):
            raise ValueError(f"graph disconnected: {tensor} is needed to compute the outputs but "
                             f"is not among the model inputs")

    def _require_graph(self):
        if not self._graph_ready:
            if self._traced:
                raise ValueError(f"model {self.name!r} is not built yet: call it on a batch, "
                                 f"fit/evaluate/predict it, or call build(input_shape)")
            raise ValueError(f"model {self.name!r} has no graph yet: give it inputs and outputs "
                             f"(or, for a Sequential, an input shape or a first batch of data)")

    def _build_from_data(self, x):
        if self._traced and not self._graph_ready:
            subclassed.build_from_data(self, x)

    # -- structure -----------------------------------------------------------
    @property
    def layers(self):
        if self._traced:
            return self._tracked_layers()
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by name or by index in ``layers``."""
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"index {index} is out of range: the model has "
                                 f"{len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self._layers]}")

    @property
    def inputs(self):
        self._require_graph()
        return list(self._input_tensors)

    @property
    def outputs(self):
        self._require_graph()
        return list(self._output_tensors)

    @property
    def input(self):
        self._require_graph()
        return self._input_tensors[0] if self._single_input else list(self._input_tensors)

    @property
    def output(self):
        self._require_graph()
        return self._output_tensors[0] if self._single_output else list(self._output_tensors)

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    @property
    def input_names(self):
        if getattr(self, "_call_input_keys", None) is not None:
            return list(self._call_input_keys)
        return [layer.name if layer is not None else f"input_{i}"
                for i, layer in enumerate(self._input_layers)]

    def _check_input(self, i, x):
        shape = self._input_tensors[i].shape
        if x.ndim != len(shape) or any(e is not None and e != d for e, d in zip(shape, x.shape)):
            raise ValueError(f"model {self.name!r}: input {i} expects arrays of shape {shape}, "
                             f"got {x.shape}")

    @property
    def output_names(self):
        if self._traced:
            self._require_graph()
            return [f"output_{i}" for i in range(len(self._output_tensors))]
        return [t.node.layer.name if t.node is not None else f"output_{i}"
                for i, t in enumerate(self.outputs)]

    # -- weights ---------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freezing a model freezes every layer in it (as Keras)."""
        self._trainable = bool(value)
        for layer in (self.layers if self._traced else getattr(self, "_layers", [])):
            layer.trainable = self._trainable

    @property
    def weights(self):
        if self._traced:
            return Layer.weights.fget(self)
        return merge_weights([], self._layers, "weights")

    @property
    def trainable_weights(self):
        if self._traced:
            return Layer.trainable_weights.fget(self)
        if not self.trainable:
            return []
        return merge_weights([], self._layers, "trainable_weights")

    def get_gradients(self):
        return [w.grad for w in self.weights]

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    @property
    def losses(self):
        if self._traced:
            return Layer.losses.fget(self)
        out = []
        for layer in self._layers:
            out.extend(layer.losses)
        return out

    def _save_state(self):
        return (dict(self.__dict__), [layer._save_state() for layer in self.layers])

    def _restore_state(self, state):
        own, inner = state
        self.__dict__.update(own)
        for layer, layer_state in zip(self.layers, inner):
            layer._restore_state(layer_state)

    # -- running the graph --------------------------------------------------------
    def _mask_plan(self, input_masks=None):
        """The graph's :class:`~cnnc.models.masking.MaskPlan` when the model
        inputs carry ``input_masks`` (None: none do); None without masks."""
        key = (tuple(m is not None for m in input_masks) if input_masks is not None
               else (False,) * len(self._input_slots))
        if key not in self._mask_plans:
            self._mask_plans[key] = masking.make_plan(self, key)
        return self._mask_plans[key]

    def _may_make_mask(self):
        if self._traced or not self._graph_ready:
            return False
        plan = self._mask_plan()
        return plan is not None and any(plan.outputs)

    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        """The masks of the outputs of the last forward pass."""
        masks = self._output_masks
        if masks is None:
            return None
        return masks[0] if self._single_output else list(masks)

    def _run_forward(self, xs, training, logits_steps=(), input_masks=None):
        self._output_masks = None
        if self._traced:
            return subclassed.run_forward(self, xs, training)
        plan = self._mask_plan(input_masks)
        masks = None
        if plan is not None:
            masks = [None] * self._n_slots
            for slot, m in zip(self._input_slots, input_masks or ()):
                masks[slot] = None if m is None else np.asarray(m, dtype=bool)
        values = [None] * self._n_slots
        shapes = {}
        for i, (slot, layer, x) in enumerate(zip(self._input_slots, self._input_layers, xs)):
            if layer is not None:
                values[slot] = layer.forward(x)
            else:
                self._check_input(i, x)
                values[slot] = x
        # Masks are not replayed: a model that carries them runs without
        # recomputation.
        recompute = self._recompute_plan if training and plan is None else None
        for step in self._steps:
            masked = masks if plan is not None and plan.steps[step.index] else None
            if recompute is None:
                self._forward_step(step, values, training, logits_steps, shapes, masked)
                continue
            segment = recompute.starts.get(step.index)
            if segment is not None:
                segment.begin(values)
            self._forward_step(step, values, training, logits_steps, shapes, masked,
                               in_place=step.index not in recompute.keep_inputs)
            segment = recompute.ends.get(step.index)
            if segment is not None:
                segment.end()
        self._multi_out_shapes = shapes if training else None
        self._recompute_active = recompute is not None
        if plan is not None and any(masks[s] is not None for s in self._output_slots):
            self._output_masks = [masks[s] for s in self._output_slots]
        return [values[s] for s in self._output_slots]

    def _forward_step(self, step, values, training, logits_steps, shapes, masks=None,
                      in_place=True):
        """Run one step's forward on ``values`` (slot -> array), dropping the
        tensors it was the last reader of; multi-output shapes go to
        ``shapes`` in training. ``masks``: the slots' masks, for a step that
        handles them (its input is then never overwritten: the output mask
        is computed from it)."""
        if step.multi_in:
            arg = [values[s] for s in step.inputs]
        else:
            arg = values[step.inputs[0]]
        layer = step.layer
        with inference_behaviour() if training and step.inference else contextlib.nullcontext():
            if masks is not None:
                y = masking.run_step(step, arg, masks, training, step.index in logits_steps)
            else:
                layer._overwrite_inputs = step.overwrite if in_place else ()
                try:
                    if step.index in logits_steps:
                        y = layer.forward_logits(arg, training=training)
                    else:
                        y = layer.forward(arg, training=training)
                finally:
                    layer._overwrite_inputs = ()
        arg = None
        if step.shared and training:
            self._snapshots[step.index] = layer._save_state()
        if step.multi_out:
            for s, v in zip(step.outputs, y):
                values[s] = v
                if training:
                    shapes[s] = v.shape
        else:
            values[step.outputs[0]] = y
        # A tensor is dropped after its last reader: what a backward needs,
        # its layer keeps.
        for s in self._dead_after[step.index]:
            values[s] = None

    def _configure_backward(self, need_input_gradients):
        """Decide which steps run backward: those with trainable weights and
        those upstream of them; tell each layer whether its dx is needed."""
        if self._traced:
            self.need_input_gradient = need_input_gradients
            self._backward_key = (need_input_gradients, self.trainable,
                                  tuple(w.trainable for w in self.weights),
                                  tuple(id(layer) for layer in self.layers))
            return
        key = (need_input_gradients, self.trainable,
               tuple(layer.trainable for layer in self._layers))
        if key == self._backward_key:
            return
        requires = [False] * self._n_slots
        for s in self._input_slots:
            requires[s] = need_input_gradients
        for step in self._steps:
            needs_dx = any(requires[s] for s in step.inputs)
            has_weights = bool(step.layer.trainable_weights) and self.trainable
            step.backward = needs_dx or has_weights
            step.needs_dx = needs_dx
            for s in step.outputs:
                requires[s] = step.backward
        self._requires = requires
        self._backward_key = key

    @staticmethod
    def _accumulate(grads, slot, d):
        current = grads[slot]
        if current is None:
            grads[slot] = d
            return
        if current.shape != d.shape:
            raise ValueError(f"gradients of different shapes {current.shape} and {d.shape} "
                             f"reach the same tensor")
        # A new array: either term may be a buffer its layer reuses, or be
        # aliased by another gradient (Add hands dy to all its inputs).
        grads[slot] = ops.add(current, d)

    def _run_backward(self, output_grads, need_input_gradients=False):
        """Backward from d(loss)/d(outputs); returns the input gradients
        (None where not needed)."""
        if self._traced:
            return subclassed.run_backward(self, output_grads)
        self._configure_backward(need_input_gradients)
        shared = _SharedGrads(self) if self._shared_steps else None
        grads = [None] * self._n_slots
        for slot, d in zip(self._output_slots, output_grads):
            if d is not None:
                self._accumulate(grads, slot, d)
        shapes = self._multi_out_shapes
        recompute = self._recompute_plan if self._recompute_active else None
        for step in reversed(self._steps):
            if recompute is not None:
                segment = recompute.ends.get(step.index)
                if segment is not None:
                    if any(st.backward for st in segment.steps):
                        segment.replay(self)
                    else:
                        segment.release()
            if not step.backward:
                continue
            if step.multi_out:
                dy = [grads[s] if grads[s] is not None else np.zeros(shapes[s], np.float32)
                      for s in step.outputs]
                if all(grads[s] is None for s in step.outputs):
                    dy = None
            else:
                dy = grads[step.outputs[0]]
            # Each output gradient has one reader, this step: drop it with dy.
            for s in step.outputs:
                grads[s] = None
            if dy is None:
                # Nothing downstream depends on this node: its weights get no gradient.
                # (A shared layer's gradients are final after all its calls: finish().)
                if not step.shared:
                    for w in step.layer.trainable_weights:
                        w.grad.fill(0.0)
                    if self._backward_hook is not None:
                        self._backward_hook(step.layer)
                continue
            if step.shared:
                shared.restore(step)
            # Set at every step: the layer may also belong to another model
            # (a sub-model sharing layers) that configured it differently.
            step.layer.need_input_gradient = step.needs_dx
            dx = step.layer.backward(dy)
            dy = None
            if step.shared:
                dx = shared.collect(step, dx)
            else:
                # What the layer kept for this backward is dead now.
                step.layer.release_backward_state()
                if self._backward_hook is not None:
                    # Data parallel: this layer's weight gradients are final, their
                    # allreduce can start while backward goes on.
                    self._backward_hook(step.layer)
            if dx is None:
                continue
            if step.multi_in:
                for s, d in zip(step.inputs, dx):
                    if d is not None and self._requires[s]:
                        self._accumulate(grads, s, d)
            elif self._requires[step.inputs[0]]:
                self._accumulate(grads, step.inputs[0], dx)
        if shared is not None:
            shared.finish()
        return [grads[s] for s in self._input_slots]

    def release_backward_state(self):
        """Drop the activations the last training forward kept for backward,
        in this model and every layer it holds (nested models included)."""
        super().release_backward_state()
        self._multi_out_shapes = None
        self._snapshots = {}
        if self._recompute_plan is not None:
            self._recompute_plan.release()
        for layer in self._layers:
            layer.release_backward_state()

    # -- the Layer contract (a model inside a model) --------------------------------
    def build(self, input_shape=None):
        if self._traced and not self._graph_ready:
            if input_shape is None:
                raise ValueError(f"model {self.name!r}: build() needs an input shape")
            subclassed.build_from_shapes(self, input_shape)
        self._require_graph()
        self.built = True

    def compute_output_shape(self, input_shape):
        if self._traced and not self._graph_ready:
            self.build(input_shape)
        self._require_graph()
        shapes = [t.shape for t in self._output_tensors]
        return shapes[0] if self._single_output else shapes

    def _as_input_list(self, x):
        if isinstance(x, dict):
            names = self.input_names
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(f"missing model inputs {missing}; got keys {sorted(x)}")
            x = [x[n] for n in names]
        elif not isinstance(x, (list, tuple)):
            x = [x]
        if len(x) != len(self._input_tensors):
            raise ValueError(f"model {self.name!r}: the model expects "
                             f"{len(self._input_tensors)} input array(s), got {len(x)}")
        out = []
        for array in x:
            array = np.asarray(array)
            if array.dtype != np.float32 or not array.flags.c_contiguous:
                array = np.ascontiguousarray(array, dtype=np.float32)
            out.append(array)
        return out

    def forward(self, x, training=False, mask=None):
        """The outputs for input ``x``; ``mask``: the masks of the inputs (a
        mask, or a list with one mask or None per input), as a model inside
        a model receives them."""
        self._require_graph()
        if mask is not None and not isinstance(mask, (list, tuple)):
            mask = [mask]
        if mask is not None and len(mask) != len(self._input_slots):
            raise ValueError(f"model {self.name!r}: {len(mask)} input masks for "
                             f"{len(self._input_slots)} inputs")
        outs = self._run_forward(self._as_input_list(x), training, input_masks=mask)
        return outs[0] if self._single_output else outs

    def backward(self, dy):
        dys = [dy] if self._single_output else list(dy)
        dxs = self._run_backward(dys, need_input_gradients=self.need_input_gradient)
        if not self.need_input_gradient:
            return None
        return dxs[0] if self._single_input else dxs

    def __call__(self, inputs, *args, training=None, **kwargs):
        if not self._graph_ready and not self._traced and hasattr(self, "_build_from_data"):
            self._build_from_data(inputs)
        if self._traced and not self._graph_ready and not _is_symbolic_input(inputs):
            if not isinstance(inputs, dict) and not args and not kwargs:
                subclassed.build_from_data(self, _values(inputs))
        return Layer.__call__(self, inputs, *args, training=training, **kwargs)

    # -- serialization -------------------------------------------------------------
    def get_config(self):
        self._require_graph()
        if self._traced:
            raise ValueError(f"model {self.name!r} is a subclassed model: its architecture is "
                             f"Python code, so save its weights with save_weights() and "
                             f"rebuild it from its class before load_weights()")
        from cnnc.saving import serialize_layer
        names = {}
        node_index = {}
        entries = {}
        order = []
        for slot, layer in zip(self._input_slots, self._input_layers):
            if layer is None:
                raise ValueError("only models whose inputs come from cnnc.layers.Input can "
                                 "be serialized")
            names[slot] = [layer.name, 0, 0]
        for layer in self._input_layers:
            entries[id(layer)] = dict(serialize_layer(layer), name=layer.name, inbound_nodes=[])
            order.append(id(layer))
        for step in self._steps:
            # A shared layer is listed once, with one inbound node per call
            # (node index k: its k-th call in this model).
            k = node_index.get(id(step.layer), 0)
            node_index[id(step.layer)] = k + 1
            for i, slot in enumerate(step.outputs):
                names[slot] = [step.layer.name, k, i]
            entry = entries.get(id(step.layer))
            if entry is None:
                entry = entries[id(step.layer)] = dict(serialize_layer(step.layer),
                                                       name=step.layer.name, inbound_nodes=[])
                order.append(id(step.layer))
            entry["inbound_nodes"].append([names[s] for s in step.inputs])
            if step.inference:
                # Keras's call keyword, one dict per inbound node (only when
                # some call has one: other files stay as they were).
                kwargs = entry.setdefault("call_kwargs", [{} for _ in range(k)])
                kwargs.append({"training": False})
            elif "call_kwargs" in entry:
                entry["call_kwargs"].append({})
        return {"name": self.name, "trainable": self.trainable,
                "layers": [entries[key] for key in order],
                "input_layers": [names[s] for s in self._input_slots],
                "output_layers": [names[s] for s in self._output_slots],
                "single_input": self._single_input, "single_output": self._single_output}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from cnnc.saving import deserialize_layer
        tensors = {}
        pending = []
        for entry in config["layers"]:
            layer = deserialize_layer(entry, custom_objects)
            # A custom layer's config may leave its name out: the entry's
            # name is the one tensors and saved weights are known by.
            name = entry.get("name") or layer.name
            layer.name = name
            inbound = entry.get("inbound_nodes") or []
            if not inbound:
                node = layer._inbound_nodes[0] if layer._inbound_nodes else None
                if node is None or node.inputs:
                    raise ValueError(f"layer {name!r} has no inbound tensors in the config")
                tensors[(name, 0, 0)] = node.outputs[0]
                continue
            calls = _call_training(entry, name, len(inbound))
            pending.extend((layer, name, k, node, training)
                           for k, (node, training) in enumerate(zip(inbound, calls)))
        # Calls in list order; a shared layer's later call may need tensors of
        # layers listed after it, so it waits until they exist.
        while pending:
            waiting = []
            for layer, name, k, node, training in pending:
                try:
                    args = [tensors[(ref, index, i)] for ref, index, i in node]
                except KeyError:
                    waiting.append((layer, name, k, node, training))
                    continue
                out = layer(args if len(args) > 1 else args[0], training=training)
                outs = out if isinstance(out, list) else [out]
                for i, tensor in enumerate(outs):
                    tensors[(name, k, i)] = tensor
            if len(waiting) == len(pending):
                layer, name, k, node, _ = waiting[0]
                raise ValueError(f"layer {name!r} (call {k}) refers to tensors that no "
                                 f"layer of the config produces: {node}")
            pending = waiting

        def find(refs):
            try:
                return [tensors[tuple(ref)] for ref in refs]
            except KeyError as exc:
                raise ValueError(f"the model config names the unknown tensor {exc}") from None
        inputs = find(config["input_layers"])
        outputs = find(config["output_layers"])
        model = cls(inputs=inputs[0] if config.get("single_input", True) and len(inputs) == 1
                    else inputs,
                    outputs=outputs[0] if config.get("single_output", True) and len(outputs) == 1
                    else outputs, name=config.get("name"))
        if not config.get("trainable", True):
            model.trainable = False
        return model

    # -- display -------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, batch_size=32):
        """Print a table of layers, output shapes and parameter counts, and
        the estimated peak memory of a training step and of inference on
        batches of ``batch_size`` (see ``cnnc.utils.estimate_memory``)."""
        from cnnc.models.summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      show_trainable=show_trainable, batch_size=batch_size)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
