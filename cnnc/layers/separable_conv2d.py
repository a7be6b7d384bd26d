"""Depthwise-separable 2-D convolution layer."""
from cnnc import _kernels as ops
from cnnc.layers.base_separable_conv import BaseSeparableConv


class SeparableConv2D(BaseSeparableConv):
    """A depthwise 2-D convolution then a pointwise (1x1) one, as Keras's
    SeparableConv2D.

    x ``(N, H, W, C)`` -> ``(N, OH, OW, filters)``. The depthwise step
    convolves each input channel ``c`` with ``depth_multiplier`` filters
    (kernel_size, strides, padding "valid"/"same", dilation_rate), giving
    ``C * depth_multiplier`` channels ordered ``c * depth_multiplier + m``;
    the pointwise step mixes them into ``filters`` channels, then the bias
    and ``activation``. Weights: depthwise_kernel ``(KH, KW, C,
    depth_multiplier)``, pointwise_kernel ``(1, 1, C * depth_multiplier,
    filters)``, bias ``(filters,)``.
    """

    rank = 2

    def _conv(self, x, w, b, pointwise):
        if pointwise:
            return ops.conv2d(x, w, b)
        return ops.conv2d(x, w, b, strides=self.strides, padding=self.padding,
                          dilation=self.dilation_rate, groups=x.shape[-1])

    def _conv_backward(self, x, w, dz, need_dx, pointwise, need_dw=True):
        if pointwise:
            return ops.conv2d_backward(x, w, dz, need_dx=need_dx, need_dw=need_dw)
        return ops.conv2d_backward(x, w, dz, strides=self.strides, padding=self.padding,
                                   dilation=self.dilation_rate, groups=x.shape[-1],
                                   need_dx=need_dx, need_dw=need_dw)
