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
* ``layer(t, training=False)`` on symbolic tensors records a call that
  behaves as in inference while the model trains, but keeps what backward
  needs: layers whose behaviour depends on the mode ask
  :func:`cnnc._inference_mode.behaves_as_training`.
* ``need_input_gradient = False`` (set by a model on layers fed directly by
  its inputs) lets ``backward`` skip computing ``dx`` and return None.
* Layers ending in an activation expose ``activation_name`` (e.g.
  "softmax"); ``forward_logits(x, training)`` runs the layer without that
  activation and the following ``backward(dz)`` takes the gradient with
  respect to those logits, so a trainer can fuse softmax with the
  cross-entropy.
* Regularization: ``losses`` lists the weight penalties; the gradients of the
  penalties are not added by ``backward`` (see :mod:`cnnc.regularizers`).
* Masks (Keras's): in a model graph, a layer whose ``supports_masking`` is
  true passes on ``compute_mask(inputs, mask)`` (by default the mask of its
  input); any other layer drops an incoming mask. A layer whose ``forward``
  (or traced ``call``) takes a ``mask`` argument receives its input's mask
  there (see :mod:`cnnc.models.masking`).

A layer may instead write Keras's ``call(inputs)`` with :mod:`cnnc.ops`
functions and operators (a *traced* layer, see :mod:`cnnc.autodiff`):
``forward``/``backward`` then come from automatic differentiation, and the
layers it holds as attributes (directly or in lists, tuples and dicts) are
tracked for ``weights`` and saving. Inside another traced ``call()``, a
built-in layer records one tape node whose backward is its own fused
``backward``; the same layer may be called several times (its state is
saved per call and its weight gradients are summed).
"""
import re

import numpy as np

from cnnc import _weight_limit
from cnnc.autodiff import layer_call
from cnnc.autodiff.operators import ArrayValue, Operators
from cnnc.autodiff.tensor import Tensor, trace_state

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


_weight_writes = [0]  # bumped whenever any Weight may have changed


class Weight(ArrayValue):
    """A named parameter array and its gradient (Keras's Variable).

    value: float32 C-contiguous ndarray, updated in place by optimizers.
    grad:  same shape; written by the owning layer's backward(). Allocated
    (zeros) when first used, so a model that only runs inference holds its
    weights once.
    Operators and :mod:`cnnc.ops` functions take a Weight as an array; inside
    a traced ``call()`` they also route its gradient into ``grad``.

    Change tracking (what lets predict reuse its C model without rereading
    the weights): every hand-out of the array (``value``, ``np.asarray``)
    counts as a possible write and bumps ``version``; :meth:`freeze` makes the
    array read-only until the next hand-out, so an array obtained before a
    freeze and written after it raises instead of changing unseen.
    """

    __slots__ = ("name", "_value", "_version", "_frozen", "_grad", "trainable", "regularizer",
                 "constraint")
    _is_cnnc_weight = True
    __array_ufunc__ = None

    def __init__(self, name, value, trainable=True, regularizer=None, constraint=None):
        self.name = name
        self._frozen = False
        self._version = 0
        self.value = np.ascontiguousarray(value, dtype=np.float32)
        self._grad = None
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def value(self):
        self.touch()
        return self._value

    @value.setter
    def value(self, array):
        self._frozen = False
        self._value = array
        self.touch()

    def touch(self):
        """Record that the array may have changed (and make it writable
        again if :meth:`freeze` made it read-only)."""
        if self._frozen:
            self._frozen = False
            self._value.flags.writeable = True
        self._version += 1
        _weight_writes[0] += 1

    def freeze(self):
        """Make the array read-only until it is next handed out; returns the
        current ``version``."""
        if self._value.flags.writeable:
            self._value.flags.writeable = False
            self._frozen = True
        return self._version

    @property
    def version(self):
        """Increases whenever the array may have been changed."""
        return self._version

    @property
    def shape(self):
        return self._value.shape

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def dtype(self):
        return self._value.dtype

    @property
    def size(self):
        return self._value.size

    @property
    def nbytes(self):
        return self._value.nbytes

    @property
    def grad(self):
        if self._grad is None:
            self._grad = np.zeros(self._value.shape, np.float32)
        return self._grad

    @grad.setter
    def grad(self, array):
        self._grad = array

    @property
    def has_grad(self):
        """Whether the gradient array exists yet (without allocating it)."""
        return self._grad is not None

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self._value.astype(dtype)

    def assign(self, value):
        """Copy ``value`` into the weight (in place, shape checked)."""
        value = np.asarray(value)
        if value.shape != self.shape:
            raise ValueError(f"weight {self.name!r} has shape {self.shape}, got "
                             f"{value.shape}")
        self.value[...] = value

    def __repr__(self):
        return f"<Weight {self.name} shape={self._value.shape} trainable={self.trainable}>"


class Node:
    """One call of a layer on symbolic tensors: the edges of a model graph."""

    def __init__(self, layer, inputs, outputs, training=None):
        self.layer = layer
        self.inputs = inputs      # list of SymbolicTensor
        self.outputs = outputs    # list of SymbolicTensor
        # False: the call said training=False (the layer behaves as in
        # inference even while the model trains); None: the model's mode.
        self.training = training


class SymbolicTensor(Operators):
    """A placeholder for a batch of tensors flowing through a model graph.

    shape: tuple with ``None`` for the batch axis. ``node`` is the Node that
    produced it and ``index`` its position among that node's outputs.
    ``cnnc.ops`` functions and Python operators on symbolic tensors add an
    :class:`cnnc.layers.OpLayer` node (as Keras does with KerasTensors).
    """

    _is_symbolic_tensor = True

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


def check_graph_training(name, training):
    """The ``training`` argument of a call on symbolic tensors, as a graph
    node records it: None (the model's mode) or False (inference behaviour,
    Keras's ``base(x, training=False)``). A graph runs with the model's
    mode or in inference, which is all that predict, the C runtime and ONNX
    export know, so ``training=True`` is refused."""
    if training is None:
        return None
    if isinstance(training, (bool, np.bool_)):
        if not training:
            return False
        raise ValueError(f"layer {name!r}: training=True cannot be recorded in a model graph "
                         f"(the graph runs in the model's mode); call it without training, "
                         f"or with training=False to keep it in inference mode")
    raise TypeError(f"layer {name!r}: training must be None, True or False, got {training!r}")


def _is_traced_input(inputs):
    if type(inputs) is Tensor:
        return True
    if isinstance(inputs, (list, tuple)):
        return any(type(t) is Tensor for t in inputs)
    return False


def _sublayers(value, path, found):
    """``(attribute path, layer)`` for the layers held by an attribute value,
    in order (lists, tuples and dicts add the index or key to the path)."""
    if isinstance(value, Layer):
        if not any(value is layer for _, layer in found):
            found.append((path, value))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _sublayers(v, f"{path}/{i}", found)
    elif isinstance(value, dict):
        for k, v in value.items():
            _sublayers(v, f"{path}/{k}", found)


def _defining_class(cls, name, skip=None):
    for klass in cls.__mro__:
        if name in klass.__dict__ and klass.__dict__[name] is not skip:
            return klass
    return None


def _is_symbolic(inputs):
    if isinstance(inputs, SymbolicTensor):
        return True
    return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(
        isinstance(t, SymbolicTensor) for t in inputs)


def merge_weights(own, layers, attribute):
    """``own`` then each layer's ``attribute`` list, each weight once (a
    shared layer or weight appears at its first place)."""
    out = list(own)
    seen = {id(w) for w in out}
    for layer in layers:
        for w in getattr(layer, attribute):
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


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
        self._input_mask = None
        if type(self).compute_mask is not Layer.compute_mask and \
                _defining_class(type(self), "supports_masking") is Layer:
            self.supports_masking = True
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A class that writes call() below the last hand-written forward is
        # traced: forward/backward come from automatic differentiation.
        call_owner = _defining_class(cls, "call")
        forward_owner = _defining_class(cls, "forward", skip=Layer._traced_forward)
        traced = (call_owner is not Layer and call_owner is not forward_owner
                  and issubclass(call_owner, forward_owner))
        cls._traced = traced
        if traced and "forward" not in cls.__dict__:
            cls.forward = Layer._traced_forward
            cls.backward = Layer._traced_backward

    _traced = False

    #: Keras's ``supports_masking``: the layer passes a mask on to the layers
    #: after it (``compute_mask``). A subclass that writes its own
    #: ``compute_mask`` supports masking unless it says otherwise (as Keras).
    supports_masking = False

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output, given its inputs and the mask of
        its input (a list of masks for a list of inputs): by default the
        input's mask, passed on unchanged. Used only when
        ``supports_masking`` is true."""
        return mask

    def _takes_mask(self):
        """Whether ``forward`` (a traced layer: ``call``) takes a ``mask``."""
        cls = type(self)
        takes = cls.__dict__.get("_forward_takes_mask")
        if takes is None:
            takes = layer_call.has_parameter(self.call if self._traced else self.forward, "mask")
            cls._forward_takes_mask = takes
        return takes

    def _may_make_mask(self):
        """Whether the output may carry a mask even when the input has none."""
        return self.supports_masking and type(self).compute_mask is not Layer.compute_mask

    # -- weights ---------------------------------------------------------
    def add_weight(self, *args, **kwargs):
        """Create, register and return a Weight.

        Keras 3's signature ``add_weight(shape=None, initializer=None,
        dtype=None, trainable=True, regularizer=None, constraint=None,
        name=None)`` (initializer: a name, a callable ``f(shape) -> array`` or
        an initializer object; default "glorot_uniform" as Keras), and the
        older ``add_weight(name, shape, initializer="zeros", regularizer=None,
        trainable=True, constraint=None)`` when the first argument is a name.
        """
        if args and isinstance(args[0], str):
            return self._add_weight_named(*args, **kwargs)
        return self._add_weight_keras(*args, **kwargs)

    def _add_weight_keras(self, shape=None, initializer=None, dtype=None, trainable=True,
                          autocast=True, regularizer=None, constraint=None, aggregation="none",
                          name=None, overwrite_with_gradient=False):
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"cnnc weights are float32; dtype={dtype!r} is not supported")
        if name is None:
            name = "variable" if not self._weights else f"variable_{len(self._weights)}"
        return self._add_weight_named(name, () if shape is None else shape,
                                      "glorot_uniform" if initializer is None else initializer,
                                      regularizer, trainable, constraint)

    def _add_weight_named(self, name, shape, initializer="zeros", regularizer=None,
                          trainable=True, constraint=None):
        from cnnc import initializers, regularizers
        init = initializers.get(initializer)
        shape = tuple(int(s) for s in shape)
        _weight_limit.check(shape, f"{self.name}/{name}")
        value = np.asarray(init(shape), dtype=np.float32)
        weight = Weight(f"{self.name}/{name}", value, trainable=trainable,
                        regularizer=regularizers.get(regularizer), constraint=constraint)
        self._weights.append(weight)
        return weight

    def _tracked_items(self):
        """``(attribute path, layer)`` for the layers a traced layer holds as
        attributes, in assignment order."""
        if not self._traced:
            return []
        found = []
        for key, value in vars(self).items():
            if not key.startswith("_tape") and value is not self:
                _sublayers(value, key, found)
        return found

    def _tracked_layers(self):
        return [layer for _, layer in self._tracked_items()]

    @property
    def weights(self):
        return merge_weights(self._weights, self._tracked_layers(), "weights")

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return merge_weights([w for w in self._weights if w.trainable], self._tracked_layers(),
                             "trainable_weights")

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self):
        """Copies of the weight arrays, in Keras order."""
        return [w._value.copy() for w in self.weights]

    def set_weights(self, weights):
        """Copy arrays into the weights (in place), checking count and shapes
        of all of them before any is written."""
        weights = list(weights)
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"{type(self).__name__} {self.name!r} expects {len(own)} weight arrays, "
                             f"got {len(weights)}")
        weights = [np.asarray(new) for new in weights]
        for w, new in zip(own, weights):
            if new.shape != w.shape:
                raise ValueError(f"weight {w.name!r} has shape {w.shape}, got {new.shape}")
        for w, new in zip(own, weights):
            w.value[...] = new

    def get_gradients(self):
        """Gradient arrays aligned with get_weights() (zeros for weights that
        are not trained), as left by the last backward()."""
        return [w.grad for w in self.weights]

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    @property
    def losses(self):
        """The regularization penalties of this layer's weights (floats)."""
        return [w.regularizer(w.value) for w in self.weights if w.regularizer is not None]

    def _zero_grads(self):
        for w in self.weights:
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
            if type(x) is np.ndarray and x.dtype == np.float32 and self.built:
                return self.forward(x, training=training)  # a model's step: no tracing checks
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
        if self._traced:
            return self._traced_output_shape(input_shape)
        return input_shape

    def _traced_output_shape(self, input_shape):
        """The output shape of ``call()``, found by running it on a batch of
        two zero samples (the batch axis then reads None)."""
        multi = isinstance(input_shape, list)
        shapes = input_shape if multi else [input_shape]
        if any(d is None for s in shapes for d in tuple(s)[1:]):
            raise ValueError(f"layer {self.name!r}: give compute_output_shape() to use call() on "
                             f"inputs of unknown size {input_shape}")
        for s in shapes:
            _weight_limit.check_computed(2 * int(np.prod(tuple(s)[1:], dtype=np.float64)),
                                         f"layer {self.name!r}")
        arrays = [np.zeros((2,) + tuple(s)[1:], np.float32) for s in shapes]
        with np.errstate(all="ignore"):
            self.forward(arrays if multi else arrays[0], training=False)
        return self._last_output_shape

    def call(self, inputs, training=None):
        """Keras's entry point. Built-in layers run ``forward`` as one node of
        the tape (their fused ``backward`` is its gradient); traced layers
        override it."""
        if self._traced:
            raise TypeError(f"{type(self).__name__}.call: a built-in layer's call cannot be "
                            f"extended through super().call(); hold the built-in layer as an "
                            f"attribute and call it from call()")
        return self(inputs, training=training)

    def forward(self, x, training=False):
        raise NotImplementedError(f"{type(self).__name__} implements neither forward nor call")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _traced_forward(self, x, training=False):
        return layer_call.traced_forward(self, x, training)

    def _traced_backward(self, dy):
        return layer_call.traced_backward(self, dy)

    # Positions of the inputs a model lets the next forward overwrite with
    # its output (the model sets it around one call, for tensors no one else
    # reads; see ``writes_in_place``).
    _overwrite_inputs = ()

    def _may_overwrite(self, inputs, position=0):
        """Whether forward may write over ``inputs[position]`` (or the single
        input): the model allows it and the array takes a kernel's output
        (float32, C-contiguous, writeable)."""
        if position not in self._overwrite_inputs:
            return False
        x = inputs[position] if isinstance(inputs, (list, tuple)) else inputs
        return (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous
                and x.flags.writeable)

    def writes_in_place(self):
        """Whether ``forward`` can write its output over an input listed in
        ``_overwrite_inputs`` (an activation, a residual sum)."""
        return False

    def forward_updated_weights(self):
        """The weights a training ``forward`` updates (batch norm's moving
        statistics): a forward run again for recomputation puts them back."""
        return []

    def backward_reads_output(self):
        """Whether ``backward`` reads the array the training ``forward``
        returned: only when it does not may the next layer overwrite that
        array in place."""
        return True

    # Where a training forward keeps what its backward needs (subclasses keep
    # these names, or extend the tuple).
    _backward_state = ("_x", "_x2", "_y", "_inputs", "_cache", "_sync", "_mask", "_keep",
                       "_indices", "_act_state", "_ran", "_tape", "_input_mask")

    def release_backward_state(self):
        """Drop what the last ``forward(x, training=True)`` kept for its
        backward, so activations are not held between training steps; a
        ``backward`` then needs a new training forward first."""
        state = self.__dict__
        for name in self._backward_state:
            if state.get(name) is not None:
                state[name] = None

    def _save_state(self):
        """What a call leaves for its backward (restored for shared layers)."""
        return dict(self.__dict__)

    def _restore_state(self, state):
        self.__dict__.update(state)

    def _ensure_built(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True

    def __call__(self, inputs, *args, training=None, **kwargs):
        if _is_symbolic(inputs):
            if args or kwargs:
                raise TypeError(f"layer {self.name!r}: extra call arguments are not recorded "
                                f"in a functional model graph")
            return self._call_symbolic(inputs, check_graph_training(self.name, training))
        state = trace_state()
        if state.depth > 0 or _is_traced_input(inputs):
            if training is None:
                training = state.training
            if self._traced:
                return layer_call.call_inline(self, inputs, bool(training), args, kwargs)
            if args or kwargs:
                raise TypeError(f"{type(self).__name__}: unexpected call arguments")
            return layer_call.call_builtin(self, inputs, bool(training))
        training = bool(training)
        if not args and set(kwargs) == {"mask"} and not self._traced and self._takes_mask():
            # Keras's layer(x, mask=m) on arrays.
            x = np.asarray(inputs, dtype=np.float32)
            self._ensure_built((None,) + x.shape[1:])
            return self.forward(x, training=training, mask=kwargs["mask"])
        if args or kwargs:
            if not self._traced:
                raise TypeError(f"{type(self).__name__}: unexpected call arguments")
            return layer_call.traced_forward(self, inputs, training, args, kwargs)
        if isinstance(inputs, (list, tuple)):
            arrays = [np.asarray(a, dtype=np.float32) for a in inputs]
            self._ensure_built([(None,) + a.shape[1:] for a in arrays])
            return self.forward(arrays, training=training)
        x = np.asarray(inputs, dtype=np.float32)
        self._ensure_built((None,) + x.shape[1:])
        return self.forward(x, training=training)

    def _call_symbolic(self, inputs, training=None):
        tensors = [inputs] if isinstance(inputs, SymbolicTensor) else list(inputs)
        shapes = tensors[0].shape if isinstance(inputs, SymbolicTensor) else [t.shape for t in tensors]
        self._ensure_built(shapes)
        out_shape = self.compute_output_shape(shapes)
        multi = isinstance(out_shape, list)
        out_shapes = out_shape if multi else [out_shape]
        node = Node(self, tensors, [], training)
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
