"""Apply an activation function as a layer."""
from cnnc import activations
from cnnc.layers.base import Layer


class Activation(Layer):
    """``y = activation(x)``, any shape; activation: a name ("relu",
    "softmax", ...) or a :mod:`cnnc.activations` function."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self._ran = False

    def writes_in_place(self):
        # an activation whose backward reads only its output
        return not self.activation.uses_input

    def is_plain_relu(self):
        return self.activation is activations.relu

    def forward(self, x, training=False):
        self._ran = training
        return self._activate(x, training, owned=self._may_overwrite(x))

    def backward(self, dy):
        if not self._ran:
            raise RuntimeError(f"Activation {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        return self._activate_backward(dy)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config
