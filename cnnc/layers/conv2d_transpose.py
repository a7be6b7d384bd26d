"""Transposed 2-D convolution layer."""
from cnnc import _kernels as ops
from cnnc.layers import conv_utils
from cnnc.layers.base_conv import BaseConv


class Conv2DTranspose(BaseConv):
    """The gradient of a Conv2D with respect to its input, used as a layer
    (learned upsampling), as Keras's Conv2DTranspose.

    x ``(N, H, W, C)`` -> ``(N, OH, OW, filters)`` with Keras's output size:
    without output_padding, ``H * s + max(k - s, 0)`` ("valid") or ``H * s``
    ("same"); with it, ``(H - 1) * s + k - 2 * pad + output_padding`` (pad =
    k // 2 for "same"), k the dilated kernel size; explicit padding
    ``((top, bottom), (left, right))`` crops ``(H - 1) * s + k - top - bottom
    + output_padding``. groups splits the channels as in a grouped
    convolution. Weights: kernel ``(KH, KW, filters // groups, C)`` (Keras's
    layout), bias ``(filters,)``.
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), groups=1,
                 activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         **kwargs)
        if output_padding is not None:
            output_padding = conv_utils.normalize_tuple(output_padding, 2, "output_padding",
                                                        allow_zero=True)
            for p, s, d in zip(output_padding, self.strides, self.dilation_rate):
                if p >= max(s, d):
                    raise ValueError(f"output_padding {output_padding} must be smaller than the "
                                     f"strides {self.strides} (or the dilation_rate)")
        self.output_padding = output_padding

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (self.filters // self.groups, in_channels)

    def _output_spatial(self, spatial):
        pads = self.output_padding or (None,) * 2
        return tuple(conv_utils.deconv_output_length(n, k, mode, p, s, d)
                     for n, k, mode, p, s, d in zip(spatial, self.kernel_size,
                                                    self._axis_paddings(), pads, self.strides,
                                                    self.dilation_rate))

    def _conv(self, x, w, b):
        return ops.conv2d_transpose(x, w, b, strides=self.strides,
                                    padding=self._kernel_padding(),
                                    output_padding=self.output_padding,
                                    dilation=self.dilation_rate, groups=self.groups)

    def _conv_backward(self, x, w, dz, need_dx):
        return ops.conv2d_transpose_backward(x, w, dz, strides=self.strides,
                                             padding=self._kernel_padding(),
                                             output_padding=self.output_padding,
                                             dilation=self.dilation_rate, groups=self.groups,
                                             need_dx=need_dx)

    def get_config(self):
        config = super().get_config()
        config["output_padding"] = (None if self.output_padding is None
                                    else list(self.output_padding))
        return config
