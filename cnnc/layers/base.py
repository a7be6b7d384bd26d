"""The layer contract every cnnc layer keeps, and the symbolic tensors of the
functional API.

A layer is used in two ways:

* eagerly: ``y = layer(x)`` (builds on first use, then ``forward``), and
  ``dx = layer.backward(dy)`` after a ``forward(x, training=True)``;
* symbolically: ``y = layer(t)`` where ``t`` is a :class:`SymbolicTensor`
  (from :func:`cnnc.layers.Input` or another layer), which records a
  :class:`Node` of the graph that ``cnnc.models.Model`` later runs.

Shapes include the batch axis as ``None`` (e.g. ``(None, 28, 28, 1)``).
Weights are :class:`Weight` objects whose ``value`` arrays are float32 and
C-contiguous; optimizers update them in place, so layers must never rebind
``value``. ``backward`` *overwrites* each trainable weight's ``grad``.

Conventions a trainer relies on:

* ``backward`` returns arrays that may alias ``dy`` (Add returns ``dy`` itself
  for every input): never modify them in place.
* A frozen layer (``trainable = False``) still returns ``dx``; its grads are
  zeros. A frozen BatchNormalization normalizes with its moving statistics
  even when ``training=True``, as Keras does.
* ``need_input_gradient = False`` (set by a model on layers fed directly by
  its inputs) lets ``backward`` skip computing ``dx`` and return None.
* Layers ending in an activation expose ``activation_name`` (e.g.
  "softmax"); ``forward_logits(x, training)`` runs the layer without that
  activation and the following ``backward(dz)`` takes the gradient with
  respect to those logits, so a trainer can fuse softmax with the
  cross-entropy.
* Regularization: ``losses`` lists the weight penalties; the gradients of the
  penalties are not added by ``backward`` (see :mod:`cnnc.regularizers`).
"""
import re

import numpy as np

from cnnc import _weight_limit

_name_counters = {}


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """Keras-style automatic names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counters.get(prefix, 0)
    _name_counters[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def reset_names():
    """Restart automatic naming (used by set_random_seed and tests)."""
    _name_counters.clear()


class Weight:
    """A named parameter array and its gradient.

    value: float32 C-contiguous ndarray, updated in place by optimizers.
    grad:  same shape; written by the owning layer's backward().
    """

    __slots__ = ("name", "value", "grad", "trainable", "regularizer", "constraint")

    def __init__(self, name, value, trainable=True, regularizer=None, constraint=None):
        self.name = name
        self.value = np.ascontiguousarray(value, dtype=np.float32)
        self.grad = np.zeros_like(self.value)
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"<Weight {self.name} shape={self.value.shape} trainable={self.trainable}>"


class Node:
    """One call of a layer on symbolic tensors: the edges of a model graph."""

    def __init__(self, layer, inputs, outputs):
        self.layer = layer
        self.inputs = inputs      # list of SymbolicTensor
        self.outputs = outputs    # list of SymbolicTensor


class SymbolicTensor:
    """A placeholder for a batch of tensors flowing through a model graph.

    shape: tuple with ``None`` for the batch axis. ``node`` is the Node that
    produced it and ``index`` its position among that node's outputs.
    """

    def __init__(self, shape, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.node = node
        self.index = index
        self.name = name

    @property
    def layer(self):
        return self.node.layer if self.node is not None else None

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from={getattr(self.layer, 'name', None)}>"


def _is_symbolic(inputs):
    if isinstance(inputs, SymbolicTensor):
        return True
    return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(
        isinstance(t, SymbolicTensor) for t in inputs)


class Layer:
    """Base class of all layers.

    Subclasses implement ``build(input_shape)`` (create weights with
    ``add_weight``), ``compute_output_shape(input_shape)``,
    ``forward(x, training=False)``, ``backward(dy)`` and ``get_config()``
    (calling ``super().get_config()``). Layers with several inputs take and
    return lists of arrays/shapes.
    """

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None,
                 batch_input_shape=None, input_dim=None, batch_size=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"cnnc layers compute in float32; dtype={dtype!r} is not supported")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.built = False
        self._weights = []
        self._inbound_nodes = []
        self.need_input_gradient = True
        self._logits_mode = False
        self._act_state = None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    # -- weights ---------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None,
                   trainable=True, constraint=None):
        """Create, register and return a Weight initialized by ``initializer``
        (a name, a callable ``f(shape) -> array``, or an initializer object)."""
        from cnnc import initializers, regularizers
        init = initializers.get(initializer)
        shape = tuple(int(s) for s in shape)
        _weight_limit.check(shape, f"{self.name}/{name}")
        value = np.asarray(init(shape), dtype=np.float32)
        weight = Weight(f"{self.name}/{name}", value, trainable=trainable,
                        regularizer=regularizers.get(regularizer), constraint=constraint)
        self._weights.append(weight)
        return weight

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return [w for w in self._weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return list(self._weights)
        return [w for w in self._weights if not w.trainable]

    def get_weights(self):
        """Copies of the weight arrays, in Keras order."""
        return [w.value.copy() for w in self._weights]

    def set_weights(self, weights):
        """Copy arrays into the weights (in place), checking count and shapes."""
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"layer {self.name!r} expects {len(self._weights)} weight arrays, "
                             f"got {len(weights)}")
        for w, new in zip(self._weights, weights):
            new = np.asarray(new)
            if new.shape != w.value.shape:
                raise ValueError(f"weight {w.name!r} has shape {w.value.shape}, got {new.shape}")
            w.value[...] = new

    def get_gradients(self):
        """Gradient arrays aligned with get_weights() (zeros for weights that
        are not trained), as left by the last backward()."""
        return [w.grad for w in self._weights]

    def count_params(self):
        return int(sum(w.value.size for w in self._weights))

    @property
    def losses(self):
        """The regularization penalties of this layer's weights (floats)."""
        return [w.regularizer(w.value) for w in self._weights if w.regularizer is not None]

    def _zero_grads(self):
        for w in self._weights:
            w.grad.fill(0.0)

    def _trains(self, weight):
        """Whether backward must compute this weight's gradient."""
        return self.trainable and weight.trainable

    # -- output activation ---------------------------------------------------
    @property
    def activation_name(self):
        """Name of the activation this layer ends with (None if it has none)."""
        act = getattr(self, "activation", None)
        if act is None or getattr(act, "is_linear", False):
            return None
        return getattr(act, "name", None)

    def forward_logits(self, x, training=False):
        """``forward`` without the final activation; the next ``backward``
        takes the gradient with respect to this (pre-activation) output."""
        if self.activation_name is None:
            raise ValueError(f"layer {self.name!r} has no activation to leave out")
        self._logits_mode = True
        try:
            return self(x, training=training)
        finally:
            self._logits_mode = False

    def _activate(self, z, training, owned=True):
        """Apply ``self.activation`` to the pre-activation ``z``, remembering
        what its backward needs. ``owned``: z is a fresh buffer of this layer
        and may be overwritten."""
        act = self.activation
        if self._logits_mode or act.is_linear:
            self._act_state = None
            return z
        if act.uses_input:
            y = act.forward(z)
            self._act_state = (z, y) if training else None
        else:
            y = act.forward(z, inplace=owned)
            self._act_state = (None, y) if training else None
        return y

    def _activate_backward(self, dy):
        """Gradient with respect to the pre-activation, given dy = dL/dy."""
        if self._act_state is None:
            return dy
        z, y = self._act_state
        return self.activation.backward(z, y, dy)

    # -- computation -------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, x, training=False):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _ensure_built(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True

    def __call__(self, inputs, training=False):
        if _is_symbolic(inputs):
            return self._call_symbolic(inputs)
        if isinstance(inputs, (list, tuple)):
            arrays = [np.asarray(a, dtype=np.float32) for a in inputs]
            self._ensure_built([(None,) + a.shape[1:] for a in arrays])
            return self.forward(arrays, training=training)
        x = np.asarray(inputs, dtype=np.float32)
        self._ensure_built((None,) + x.shape[1:])
        return self.forward(x, training=training)

    def _call_symbolic(self, inputs):
        tensors = [inputs] if isinstance(inputs, SymbolicTensor) else list(inputs)
        shapes = tensors[0].shape if isinstance(inputs, SymbolicTensor) else [t.shape for t in tensors]
        self._ensure_built(shapes)
        out_shape = self.compute_output_shape(shapes)
        multi = isinstance(out_shape, list)
        out_shapes = out_shape if multi else [out_shape]
        node = Node(self, tensors, [])
        node.outputs = [SymbolicTensor(s, node, i, name=self.name) for i, s in enumerate(out_shapes)]
        self._inbound_nodes.append(node)
        return node.outputs if multi else node.outputs[0]

    # -- graph access (Keras's layer.input / layer.output) ---------------
    def _single_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic input, "
                                 f"so it has no {what}")
        return self._inbound_nodes[0]

    @property
    def input(self):
        node = self._single_node("input")
        return node.inputs[0] if len(node.inputs) == 1 else node.inputs

    @property
    def output(self):
        node = self._single_node("output")
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    @property
    def input_shape(self):
        inp = self.input
        return inp.shape if isinstance(inp, SymbolicTensor) else [t.shape for t in inp]

    @property
    def output_shape(self):
        out = self.output
        return out.shape if isinstance(out, SymbolicTensor) else [t.shape for t in out]

    # -- serialization -----------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
