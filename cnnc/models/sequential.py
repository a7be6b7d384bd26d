"""Sequential: a plain stack of single-input, single-output layers."""
import numpy as np

from cnnc.layers.base import Layer, SymbolicTensor, unique_name
from cnnc.models.functional import Model


class Sequential(Model):
    """``Sequential([layer, ...])`` or ``Sequential()`` then ``add(layer)``.

    The input shape comes from an ``Input``/``InputLayer`` given first, from
    the first layer's ``input_shape=``, from ``build(input_shape)``, or from
    the first batch of data given to fit/evaluate/predict. ``layers`` lists
    the added layers (without the input layer, as Keras).
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self._stack = []
        self._input_tensor = None
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or, first, an ``Input`` tensor / ``InputLayer``)."""
        from cnnc.layers import InputLayer
        if isinstance(layer, InputLayer):
            layer = layer._inbound_nodes[0].outputs[0]
        if isinstance(layer, SymbolicTensor):
            if self._stack or self._input_tensor is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            if layer.node is None or layer.node.inputs:
                raise ValueError("Sequential takes an Input tensor here, not a layer output")
            self._input_tensor = layer
            self._rebuild()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a cnnc Layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self._stack):
            raise ValueError(f"layer {layer.name!r} is already in this Sequential")
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(f"all layer names in a model must be unique; {layer.name!r} "
                             f"is already used")
        self._stack.append(layer)
        try:
            self._rebuild()
        except Exception:
            self._stack.pop()
            self._rebuild()
            raise

    def pop(self):
        """Remove the last layer."""
        if not self._stack:
            raise TypeError("there are no layers in this Sequential to pop")
        layer = self._stack.pop()
        self._rebuild()
        return layer

    def _stack_input_shape(self):
        if self._input_tensor is not None:
            return self._input_tensor.shape
        if self._stack and getattr(self._stack[0], "_batch_input_shape", None) is not None:
            return self._stack[0]._batch_input_shape
        return getattr(self, "_deferred_shape", None)

    def _rebuild(self):
        shape = self._stack_input_shape()
        if shape is None or not self._stack:
            self._graph_ready = False
            self._layers = list(self._stack)
            self._steps = []
            return
        from cnnc.layers import Input
        x = self._input_tensor if self._input_tensor is not None else Input(batch_shape=shape)
        inputs = x
        for layer in self._stack:
            x = layer(x)
            if isinstance(x, list):
                raise ValueError(f"layer {layer.name!r} has several outputs; use the "
                                 f"functional Model for it")
        self._init_graph(inputs, x)
        self._layers = list(self._stack)

    def build(self, input_shape=None):
        """Build for inputs of ``input_shape`` (with the batch axis)."""
        if input_shape is not None and not self._graph_ready:
            self._deferred_shape = tuple(input_shape)
            self._rebuild()
        self._require_graph()
        self.built = True

    def _build_from_data(self, x):
        if self._graph_ready:
            return
        if isinstance(x, (list, tuple)) and len(x) == 1:
            x = x[0]
        if isinstance(x, SymbolicTensor):
            self._deferred_shape = x.shape
        else:
            self._deferred_shape = (None,) + tuple(np.shape(x)[1:])
        self._rebuild()

    @property
    def layers(self):
        return list(self._stack)

    def get_config(self):
        from cnnc.saving import serialize_layer
        return {"name": self.name, "trainable": self.trainable,
                "batch_input_shape": (list(self._stack_input_shape())
                                      if self._stack_input_shape() is not None else None),
                "layers": [serialize_layer(layer) for layer in self._stack]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from cnnc.layers import Input
        from cnnc.saving import deserialize_layer
        model = cls(name=config.get("name"))
        if config.get("batch_input_shape") is not None:
            model.add(Input(batch_shape=tuple(config["batch_input_shape"])))
        for entry in config["layers"]:
            model.add(deserialize_layer(entry, custom_objects))
        if not config.get("trainable", True):
            model.trainable = False
        return model
