"""What SeparableConv1D and SeparableConv2D share: a depthwise convolution
(each input channel with its own ``depth_multiplier`` filters) followed by a
pointwise (1x1) convolution, a bias and an activation."""
from cnnc import activations, initializers, regularizers
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer
from cnnc.layers.kernel_layer import positive_int


class BaseSeparableConv(Layer):
    """A ``rank``-D depthwise-separable convolution (channels last).

    Subclasses give the two convolution calls on the grouped (depthwise)
    and 1x1 (pointwise) kernels: ``_conv(x, w, b, pointwise)`` and
    ``_conv_backward(x, w, dz, need_dx, pointwise)``.
    """

    rank = 2
    paddings = ("valid", "same")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = conv_utils.normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = conv_utils.normalize_tuple(strides, self.rank, "strides")
        self.padding = conv_utils.normalize_padding(padding, self.paddings)
        self.data_format = conv_utils.check_data_format(data_format)
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_kernel = self.pointwise_kernel = self.bias = None
        self._cache = None
        self._checked_shape = None

    # -- Layer contract ------------------------------------------------------
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        conv_utils.check_input_rank(self, input_shape, self.rank + 2)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the channel axis of the input "
                             f"must be defined, got shape {input_shape}")
        self._in_channels = channels
        mid = channels * self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer, self.depthwise_regularizer)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1,) * self.rank + (mid, self.filters),
            self.pointwise_initializer, self.pointwise_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        self.bias_regularizer)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        spatial = tuple(conv_utils.conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
                        zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input shape {input_shape} is "
                             f"too small for kernel_size={self.kernel_size}, "
                             f"dilation_rate={self.dilation_rate}")
        return (input_shape[0],) + spatial + (self.filters,)

    def _grouped_depthwise(self):
        """The depthwise kernel as a grouped convolution kernel: output
        channel ``c * depth_multiplier + m`` reads input channel ``c``."""
        w = self.depthwise_kernel.value
        return w.reshape(self.kernel_size + (1, w.shape[-2] * w.shape[-1]))

    def forward(self, x, training=False):
        if x.shape != self._checked_shape:  # validate each new input shape once
            conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
            conv_utils.check_channels(self, x, self._in_channels)
            self.compute_output_shape(x.shape)
            self._checked_shape = x.shape
        mid = self._conv(x, self._grouped_depthwise(), None, pointwise=False)
        z = self._conv(mid, self.pointwise_kernel.value,
                       self.bias.value if self.use_bias else None, pointwise=True)
        self._cache = (x, mid) if training else None
        return self._activate(z, training)

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        x, mid = self._cache
        dz = self._activate_backward(dy)
        trains = self.trainable
        dmid, dpw, db = self._conv_backward(mid, self.pointwise_kernel.value, dz, True,
                                            pointwise=True, need_dw=trains)
        dx, ddw, _ = self._conv_backward(x, self._grouped_depthwise(), dmid,
                                         self.need_input_gradient, pointwise=False,
                                         need_dw=trains)
        if not trains:
            self._zero_grads()
        else:
            self.depthwise_kernel.grad[...] = ddw.reshape(self.depthwise_kernel.grad.shape)
            self.pointwise_kernel.grad[...] = dpw
            if self.use_bias:
                self.bias.grad[...] = db
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
            "depth_multiplier": self.depth_multiplier,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        })
        return config
