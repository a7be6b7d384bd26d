"""Lambda: a layer from a function written with :mod:`cnnc.ops`."""
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
    """

    _needs_custom_objects = True

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable, got {function!r}")
        if mask is not None:
            raise ValueError("Lambda: masks are not supported by cnnc")
        self.function = function
        self.arguments = dict(arguments or {})
        self._output_shape = output_shape

    def call(self, inputs):
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
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        name = config.pop("function")
        function = (custom_objects or {}).get(name)
        if function is None:
            raise ValueError(f"Lambda: the function {name!r} is not known; pass "
                             f"custom_objects={{{name!r}: function}}")
        return cls(function, **config)
