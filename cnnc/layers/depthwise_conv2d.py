"""Depthwise 2-D convolution layer."""
import numbers

from cnnc import _kernels as ops
from cnnc.layers.base_conv import BaseConv


class DepthwiseConv2D(BaseConv):
    """Each input channel convolved with its own ``depth_multiplier`` filters.

    x ``(N, H, W, C)`` -> ``(N, OH, OW, C * depth_multiplier)``; output channel
    ``c * depth_multiplier + m`` comes from input channel ``c``. Weights:
    depthwise_kernel ``(KH, KW, C, depth_multiplier)``, bias
    ``(C * depth_multiplier,)``.
    """

    rank = 2
    kernel_name = "depthwise_kernel"

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, **kwargs):
        if (not isinstance(depth_multiplier, numbers.Integral) or isinstance(depth_multiplier, bool)
                or depth_multiplier <= 0):
            raise ValueError(f"depth_multiplier must be a positive integer, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        super().__init__(None, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, groups=1,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer, **kwargs)

    @property
    def depthwise_kernel(self):
        return self.kernel

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels, self.depth_multiplier)

    def _out_channels(self, in_channels):
        return in_channels * self.depth_multiplier

    def _grouped_kernel(self, w):
        kh, kw, c, m = w.shape
        return w.reshape(kh, kw, 1, c * m)

    def _conv(self, x, w, b):
        return ops.conv2d(x, self._grouped_kernel(w), b, strides=self.strides,
                          padding=self._kernel_padding(),
                          dilation=self.dilation_rate, groups=w.shape[2])

    def _conv_backward(self, x, w, dz, need_dx):
        return ops.conv2d_backward(x, self._grouped_kernel(w), dz, strides=self.strides,
                                   padding=self._kernel_padding(), dilation=self.dilation_rate,
                                   groups=w.shape[2], need_dx=need_dx)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "groups"):
            del config[key]
        config["depth_multiplier"] = self.depth_multiplier
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        config["depthwise_regularizer"] = config.pop("kernel_regularizer")
        return config
