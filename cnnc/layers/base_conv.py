"""What all convolution layers share: arguments, kernel and bias, the
activation, backward bookkeeping and the config."""
from cnnc.layers import conv_utils
from cnnc.layers.kernel_layer import KernelLayer, positive_int


class BaseConv(KernelLayer):
    """A ``rank``-D convolution layer (channels last).

    Subclasses give the kernel shape (``_kernel_shape``), the output spatial
    size (``_output_spatial``) and the kernel calls (``_conv``,
    ``_conv_backward``).
    """

    rank = 2
    paddings = ("valid", "same")
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         **kwargs)
        self.filters = None if filters is None else positive_int(filters, "filters")
        self.kernel_size = conv_utils.normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = conv_utils.normalize_tuple(strides, self.rank, "strides")
        self.padding = conv_utils.normalize_conv_padding(padding, self.rank, self.paddings)
        self.data_format = conv_utils.check_data_format(data_format)
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        self.groups = positive_int(groups, "groups")
        if self.filters is not None and self.filters % self.groups:
            raise ValueError(f"filters ({self.filters}) must be divisible by groups ({self.groups})")
        self._x = None
        self._checked_shape = None

    # -- subclass hooks ------------------------------------------------------
    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels // self.groups, self.filters)

    def _out_channels(self, in_channels):
        return self.filters

    def _axis_paddings(self):
        """Per spatial axis: the mode name, or the explicit (before, after)."""
        if isinstance(self.padding, str):
            return (self.padding,) * self.rank
        return self.padding

    def _kernel_padding(self):
        """The padding argument of the ops kernels."""
        if isinstance(self.padding, str):
            return self.padding
        return self.padding[0] if self.rank == 1 else self.padding

    def _output_spatial(self, spatial):
        return tuple(conv_utils.conv_output_length(n, k, p, s, d) for n, k, p, s, d in
                     zip(spatial, self.kernel_size, self._axis_paddings(), self.strides,
                         self.dilation_rate))

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
        self._build_kernel(self._kernel_shape(channels), self._out_channels(channels))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        spatial = self._output_spatial(input_shape[1:-1])
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input shape {input_shape} is "
                             f"too small for kernel_size={self.kernel_size}, "
                             f"dilation_rate={self.dilation_rate}")
        return (input_shape[0],) + spatial + (self._out_channels(input_shape[-1]),)

    def forward(self, x, training=False):
        if x.shape != self._checked_shape:  # validate each new input shape once
            conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
            conv_utils.check_channels(self, x, self._in_channels)
            self.compute_output_shape(x.shape)  # clear error for inputs too small
            self._checked_shape = x.shape
        z = self._conv(x, self.kernel.value, self.bias.value if self.use_bias else None)
        self._x = x if training else None
        return self._activate(z, training)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        dz = self._activate_backward(dy)
        dx, dw, db = self._conv_backward(self._x, self.kernel.value, dz, self.need_input_gradient)
        self._store_gradients(dw, db)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": conv_utils.padding_config(self.padding),
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
        })
        return config
