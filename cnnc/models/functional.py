"""The functional model: a directed acyclic graph of layer calls.

``Model(inputs, outputs)`` walks the graph recorded by the layers' symbolic
calls from ``outputs`` back to ``inputs`` and sorts it topologically.
Running it forward keeps every node's outputs for the duration of the call;
backward visits the nodes in reverse order and sums the gradients of tensors
that feed several nodes (skip connections) into buffers reused from step to
step.

Each layer object may appear in only one node of a model: a layer keeps the
state of its last forward pass for its backward, so calling one layer twice
in a graph (shared layers, as in siamese networks) is refused with a clear
error at construction. Use two layers and copy weights with
``set_weights`` when needed.

A Model is itself a Layer: it can be called on symbolic tensors inside
another model (nested models, transfer learning) and trained as a whole.
"""
import numpy as np

from cnnc import ops
from cnnc.layers.base import Layer, SymbolicTensor, unique_name
from cnnc.models.training import Trainer


class _Step:
    """One node of the sorted graph: slot indices of its inputs/outputs."""

    __slots__ = ("layer", "node", "inputs", "outputs", "multi_in", "multi_out", "backward",
                 "needs_dx", "index")

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


def _is_input_node(node):
    return node is not None and not node.inputs


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

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        self._steps = []
        self._layers = []
        Layer.__init__(self, trainable=trainable, name=name or unique_name("functional"),
                       **kwargs)
        Trainer.__init__(self)
        self._graph_ready = False
        if inputs is None and outputs is None:
            return
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
        seen_layers = {}
        for node in order:
            layer = node.layer
            if id(layer) in seen_layers:
                raise ValueError(
                    f"layer {layer.name!r} is called more than once in this model; cnnc models "
                    f"do not support shared layers (a layer keeps its last forward pass for "
                    f"backward). Create one layer per call and copy weights with set_weights.")
            seen_layers[id(layer)] = layer
            steps.append(_Step(len(steps), layer, node, [slot(t) for t in node.inputs],
                               [slot(t) for t in node.outputs]))
        for tensor in out_tensors:
            slot(tensor)

        input_layers = [t.node.layer if _is_input_node(t.node) else None for t in in_tensors]
        layers = [layer for layer in input_layers if layer is not None]
        layers.extend(step.layer for step in steps)
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
        self._producer = {}
        for step in steps:
            for s in step.outputs:
                self._producer[s] = step
        self._grad_buffers = {}
        self._backward_key = None
        self._compiled_outputs = None  # outputs changed: resolve losses/metrics again
        self._input_layers = input_layers
        self._graph_ready = True
        self.built = True
        if self.trainable is False:
            self.trainable = False

    @staticmethod
    def _check_connected(tensor, input_ids):
        if tensor.node is None or _is_input_node(tensor.node):
            raise ValueError(f"graph disconnected: {tensor} is needed to compute the outputs but "
                             f"is not among the model inputs")

    def _require_graph(self):
        if not self._graph_ready:
            raise ValueError(f"model {self.name!r} has no graph yet: give it inputs and outputs "
                             f"(or, for a Sequential, an input shape or a first batch of data)")

    # -- structure -----------------------------------------------------------
    @property
    def layers(self):
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
        return [layer.name if layer is not None else f"input_{i}"
                for i, layer in enumerate(self._input_layers)]

    def _check_input(self, i, x):
        shape = self._input_tensors[i].shape
        if x.ndim != len(shape) or any(e is not None and e != d for e, d in zip(shape, x.shape)):
            raise ValueError(f"model {self.name!r}: input {i} expects arrays of shape {shape}, "
                             f"got {x.shape}")

    @property
    def output_names(self):
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
        for layer in getattr(self, "_layers", []):
            layer.trainable = self._trainable

    @property
    def weights(self):
        seen = set()
        out = []
        for layer in self._layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out = []
        for layer in self._layers:
            out.extend(layer.trainable_weights)
        return out

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        return [w.value.copy() for w in self.weights]

    def set_weights(self, weights):
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise ValueError(f"model {self.name!r} has {len(own)} weight arrays, got "
                             f"{len(weights)}")
        for w, new in zip(own, weights):
            new = np.asarray(new)
            if new.shape != w.value.shape:
                raise ValueError(f"weight {w.name!r} has shape {w.value.shape}, got {new.shape}")
        for w, new in zip(own, weights):
            w.value[...] = new

    def get_gradients(self):
        return [w.grad for w in self.weights]

    def count_params(self):
        return int(sum(w.value.size for w in self.weights))

    @property
    def losses(self):
        out = []
        for layer in self._layers:
            out.extend(layer.losses)
        return out

    # -- running the graph --------------------------------------------------------
    def _run_forward(self, xs, training, logits_steps=()):
        values = [None] * self._n_slots
        for i, (slot, layer, x) in enumerate(zip(self._input_slots, self._input_layers, xs)):
            if layer is not None:
                values[slot] = layer.forward(x)
            else:
                self._check_input(i, x)
                values[slot] = x
        for step in self._steps:
            if step.multi_in:
                arg = [values[s] for s in step.inputs]
            else:
                arg = values[step.inputs[0]]
            if step.index in logits_steps:
                y = step.layer.forward_logits(arg, training=training)
            else:
                y = step.layer.forward(arg, training=training)
            if step.multi_out:
                for s, v in zip(step.outputs, y):
                    values[s] = v
            else:
                values[step.outputs[0]] = y
        self._values = values if training else None
        return [values[s] for s in self._output_slots]

    def _configure_backward(self, need_input_gradients):
        """Decide which steps run backward: those with trainable weights and
        those upstream of them; tell each layer whether its dx is needed."""
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

    def _accumulate(self, grads, slot, d):
        current = grads[slot]
        if current is None:
            grads[slot] = d
            return
        buffer = self._grad_buffers.get(slot)
        if buffer is None or buffer.shape != d.shape:
            buffer = np.empty(d.shape, np.float32)
            self._grad_buffers[slot] = buffer
        if current.shape != d.shape:
            raise ValueError(f"gradients of different shapes {current.shape} and {d.shape} "
                             f"reach the same tensor")
        ops.add(current, d, out=buffer)
        grads[slot] = buffer

    def _run_backward(self, output_grads, need_input_gradients=False):
        """Backward from d(loss)/d(outputs); returns the input gradients
        (None where not needed)."""
        self._configure_backward(need_input_gradients)
        grads = [None] * self._n_slots
        for slot, d in zip(self._output_slots, output_grads):
            if d is not None:
                self._accumulate(grads, slot, d)
        values = self._values
        for step in reversed(self._steps):
            if not step.backward:
                continue
            if step.multi_out:
                dy = [grads[s] if grads[s] is not None else np.zeros_like(values[s])
                      for s in step.outputs]
                if all(grads[s] is None for s in step.outputs):
                    dy = None
            else:
                dy = grads[step.outputs[0]]
            if dy is None:
                # Nothing downstream depends on this node: its weights get no gradient.
                for w in step.layer.trainable_weights:
                    w.grad.fill(0.0)
                if self._backward_hook is not None:
                    self._backward_hook(step.layer)
                continue
            # Set at every step: the layer may also belong to another model
            # (a sub-model sharing layers) that configured it differently.
            step.layer.need_input_gradient = step.needs_dx
            dx = step.layer.backward(dy)
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
        return [grads[s] for s in self._input_slots]

    # -- the Layer contract (a model inside a model) --------------------------------
    def build(self, input_shape):
        self._require_graph()
        self.built = True

    def compute_output_shape(self, input_shape):
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

    def forward(self, x, training=False):
        self._require_graph()
        outs = self._run_forward(self._as_input_list(x), training)
        return outs[0] if self._single_output else outs

    def backward(self, dy):
        dys = [dy] if self._single_output else list(dy)
        dxs = self._run_backward(dys, need_input_gradients=self.need_input_gradient)
        if not self.need_input_gradient:
            return None
        return dxs[0] if self._single_input else dxs

    def __call__(self, inputs, training=False):
        if not self._graph_ready and hasattr(self, "_build_from_data"):
            self._build_from_data(inputs)
        return Layer.__call__(self, inputs, training=training)

    # -- serialization -------------------------------------------------------------
    def get_config(self):
        self._require_graph()
        from cnnc.saving import serialize_layer
        names = {}
        for step in self._steps:
            for i, slot in enumerate(step.outputs):
                names[slot] = [step.layer.name, 0, i]
        for slot, layer in zip(self._input_slots, self._input_layers):
            if layer is None:
                raise ValueError("only models whose inputs come from cnnc.layers.Input can "
                                 "be serialized")
            names[slot] = [layer.name, 0, 0]
        layers = []
        for layer in self._input_layers:
            layers.append(dict(serialize_layer(layer), name=layer.name, inbound_nodes=[]))
        for step in self._steps:
            layers.append(dict(serialize_layer(step.layer), name=step.layer.name,
                               inbound_nodes=[[names[s] for s in step.inputs]]))
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": [names[s] for s in self._input_slots],
                "output_layers": [names[s] for s in self._output_slots],
                "single_input": self._single_input, "single_output": self._single_output}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from cnnc.saving import deserialize_layer
        tensors = {}
        for entry in config["layers"]:
            layer = deserialize_layer(entry, custom_objects)
            inbound = entry.get("inbound_nodes") or []
            if not inbound:
                node = layer._inbound_nodes[0] if layer._inbound_nodes else None
                if node is None or node.inputs:
                    raise ValueError(f"layer {layer.name!r} has no inbound tensors in the config")
                tensors[(layer.name, 0)] = node.outputs[0]
                continue
            try:
                args = [tensors[(name, index)] for name, _, index in inbound[0]]
            except KeyError as exc:
                raise ValueError(f"layer {layer.name!r} refers to the unknown tensor {exc} "
                                 f"(layers must be listed in topological order)") from None
            out = layer(args if len(args) > 1 else args[0])
            outs = out if isinstance(out, list) else [out]
            for i, tensor in enumerate(outs):
                tensors[(layer.name, i)] = tensor
        inputs = [tensors[(name, index)] for name, _, index in config["input_layers"]]
        outputs = [tensors[(name, index)] for name, _, index in config["output_layers"]]
        model = cls(inputs=inputs[0] if config.get("single_input", True) and len(inputs) == 1
                    else inputs,
                    outputs=outputs[0] if config.get("single_output", True) and len(outputs) == 1
                    else outputs, name=config.get("name"))
        if not config.get("trainable", True):
            model.trainable = False
        return model

    # -- display -------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False):
        """Print a table of layers, output shapes and parameter counts."""
        from cnnc.models.summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      show_trainable=show_trainable)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
