"""What all convolution layers share: arguments, kernel and bias, the
activation, backward bookkeeping and the config."""
import numbers

from cnnc import activations, initializers, regularizers
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


class BaseConv(Layer):
    """A ``rank``-D convolution layer (channels last).

    Subclasses give the kernel shape (``_kernel_shape``), the output spatial
    size (``_output_spatial``) and the kernel calls (``_conv``,
    ``_conv_backward``).
    """

    rank = 2
    paddings = ("valid", "same")
    kernel_name = "kernel"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if filters is not None and (not isinstance(filters, numbers.Integral)
                                    or isinstance(filters, bool) or filters <= 0):
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = None if filters is None else int(filters)
        self.kernel_size = conv_utils.normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = conv_utils.normalize_tuple(strides, self.rank, "strides")
        self.padding = conv_utils.normalize_padding(padding, self.paddings)
        self.data_format = conv_utils.check_data_format(data_format)
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups <= 0:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        self.groups = int(groups)
        if self.filters is not None and self.filters % self.groups:
            raise ValueError(f"filters ({self.filters}) must be divisible by groups ({self.groups})")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None
        self._x = None

    # -- subclass hooks ------------------------------------------------------
    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels // self.groups, self.filters)

    def _out_channels(self, in_channels):
        return self.filters

    def _output_spatial(self, spatial):
        return tuple(conv_utils.conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _conv(self, x, w, b):
        raise NotImplementedError

    def _conv_backward(self, x, w, dz, need_dx):
        raise NotImplementedError

    # -- Layer contract ------------------------------------------------------
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs of rank "
                             f"{self.rank + 2} (batch, *spatial, channels), got shape {input_shape}")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the channel axis of the input "
                             f"must be defined, got shape {input_shape}")
        if channels % self.groups:
            raise ValueError(f"{type(self).__name__} {self.name!r}: input channels ({channels}) "
                             f"must be divisible by groups ({self.groups})")
        self._in_channels = channels
        self.kernel = self.add_weight(self.kernel_name, self._kernel_shape(channels),
                                      self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self._out_channels(channels),),
                                        self.bias_initializer, self.bias_regularizer)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        spatial = self._output_spatial(input_shape[1:-1])
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input shape {input_shape} is "
                             f"too small for kernel_size={self.kernel_size}, "
                             f"dilation_rate={self.dilation_rate}")
        return (input_shape[0],) + spatial + (self._out_channels(input_shape[-1]),)

    def forward(self, x, training=False):
        conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
        conv_utils.check_channels(self, x, self._in_channels)
        self.compute_output_shape(x.shape)  # clear error for inputs too small
        z = self._conv(x, self.kernel.value, self.bias.value if self.use_bias else None)
        self._x = x if training else None
        return self._activate(z, training)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        dz = self._activate_backward(dy)
        dx, dw, db = self._conv_backward(self._x, self.kernel.value, dz, self.need_input_gradient)
        if self.trainable:
            self.kernel.grad[...] = dw.reshape(self.kernel.grad.shape)
            if self.use_bias:
                self.bias.grad[...] = db
        else:
            self._zero_grads()
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        })
        return config
