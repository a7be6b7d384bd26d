"""Fully connected layer."""
from cnnc import _kernels as ops
from cnnc.layers.kernel_layer import KernelLayer, positive_int


class Dense(KernelLayer):
    """``y = activation(x @ kernel + bias)`` on the last axis of ``x``.

    x: ``(..., input_dim)`` -> y: ``(..., units)``. Weights (Keras order):
    kernel ``(input_dim, units)``, bias ``(units,)`` if ``use_bias``.
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         **kwargs)
        self.units = positive_int(units, "units")
        self._x2 = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs an input with a defined last axis, "
                             f"got shape {input_shape}")
        self._build_kernel((input_shape[-1], self.units), self.units)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def forward(self, x, training=False):
        in_dim = self.kernel.shape[0]
        if x.ndim < 2 or x.shape[-1] != in_dim:
            raise ValueError(f"Dense {self.name!r} expects inputs of shape (..., {in_dim}), "
                             f"got {x.shape}")
        x2 = x.reshape(-1, in_dim)
        z = ops.matmul(x2, self.kernel.value)
        if self.use_bias:
            ops.bias_add(z, self.bias.value, out=z)
        self._x2 = x2 if training else None
        self._x_shape = x.shape
        y = self._activate(z, training)
        return y.reshape(x.shape[:-1] + (self.units,))

    def backward(self, dy):
        if self._x2 is None:
            raise RuntimeError(f"Dense {self.name!r}: backward needs a forward(x, training=True) first")
        dz = self._activate_backward(dy.reshape(-1, self.units))
        if self.trainable:
            ops.matmul(self._x2, dz, trans_a=True, out=self.kernel.grad)
            if self.use_bias:
                self.bias.grad[...] = ops.bias_add_backward(dz)
        else:
            self._zero_grads()
        if not self.need_input_gradient:
            return None
        return ops.matmul(dz, self.kernel.value, trans_b=True).reshape(self._x_shape)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config
