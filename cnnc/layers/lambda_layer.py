"""Lambda: a layer from a function written with :mod:`cnnc.ops`."""
from cnnc.autodiff.layer_call import has_parameter
from cnnc.layers.base import Layer


class Lambda(Layer):
    """``Lambda(function, output_shape=None, arguments=None)``: the layer
    computes ``function(inputs, **arguments)``; its gradient comes from
    automatic differentiation.

    output_shape: the output shape without the batch axis, or a function of
    the input shape (with it); by default found by running ``function`` on
    a small batch. Saving keeps the function's name only: load with
    ``custom_objects={name: function}`` (a ``lambda`` cannot be saved, as
    nothing from a file is ever run as code).

    mask: None (the layer drops an incoming mask) or a function
    ``mask(inputs, mask) -> mask`` giving the output's mask (saved by name
    as ``function``). A ``function`` with a ``mask`` parameter receives the
    mask of its input, as in Keras.
    """

    _needs_custom_objects = True

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable, got {function!r}")
        if mask is not None and not callable(mask):
            raise ValueError("Lambda: mask must be None or a function mask(inputs, mask); a "
                             "fixed mask array is not supported")
        self.function = function
        self.arguments = dict(arguments or {})
        self._output_shape = output_shape
        self.mask = mask
        self.supports_masking = mask is not None

    def _takes_mask(self):
        return has_parameter(self.function, "mask")

    def compute_mask(self, inputs, mask=None):
        return None if self.mask is None else self.mask(inputs, mask)

    def call(self, inputs, mask=None):
        if self._takes_mask():
            return self.function(inputs, mask=mask, **self.arguments)
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return self._traced_output_shape(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        first = input_shape[0] if isinstance(input_shape, list) else input_shape
        return (tuple(first)[0],) + tuple(self._output_shape)

    def get_config(self):
        name = getattr(self.function, "__name__", "<lambda>")
        if name == "<lambda>":
            raise ValueError(f"Lambda {self.name!r}: a lambda cannot be saved; give the layer a "
                             f"named function and load with custom_objects={{name: function}}")
        config = super().get_config()
        output_shape = self._output_shape
        if callable(output_shape):
            raise ValueError(f"Lambda {self.name!r}: an output_shape function cannot be saved")
        config.update({"function": name, "arguments": self.arguments,
                       "output_shape": None if output_shape is None else list(output_shape)})
        if self.mask is not None:
            mask_name = getattr(self.mask, "__name__", "<lambda>")
            if mask_name == "<lambda>":
                raise ValueError(f"Lambda {self.name!r}: a lambda mask function cannot be saved; "
                                 f"give a named function")
            config["mask"] = mask_name
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        function = cls._named(config.pop("function"), custom_objects)
        if config.get("mask") is not None:
            config["mask"] = cls._named(config["mask"], custom_objects)
        return cls(function, **config)

    @staticmethod
    def _named(name, custom_objects):
        function = (custom_objects or {}).get(name)
        if function is None:
            raise ValueError(f"Lambda: the function {name!r} is not known; pass "
                             f"custom_objects={{{name!r}: function}}")
        return function
