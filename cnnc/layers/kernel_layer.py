"""What Dense and the convolutions share: a kernel, an optional bias, their
initializers and regularizers, and an output activation."""
import numbers

from cnnc import activations, initializers, regularizers
from cnnc.layers.base import Layer


def positive_int(value, name):
    """``value`` as an int > 0, else a ValueError naming ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class KernelLayer(Layer):
    """Base of layers computing ``activation(linear(x, kernel) + bias)``."""

    kernel_name = "kernel"

    def __init__(self, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def _build_kernel(self, kernel_shape, bias_size):
        self.kernel = self.add_weight(self.kernel_name, kernel_shape, self.kernel_initializer,
                                      self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (bias_size,), self.bias_initializer,
                                        self.bias_regularizer)
        self.built = True

    def backward_reads_output(self):
        # backward keeps the input; only a fused activation keeps the output
        return self.activation_name is not None

    def _store_gradients(self, dw, db):
        """Overwrite the grads (zeros when the layer is frozen)."""
        if not self.trainable:
            self._zero_grads()
            return
        self.kernel.grad[...] = dw.reshape(self.kernel.grad.shape)
        if self.use_bias:
            self.bias.grad[...] = db

    def get_config(self):
        config = super().get_config()
        config.update({
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        })
        return config
