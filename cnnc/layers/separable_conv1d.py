"""Depthwise-separable 1-D convolution layer."""
from cnnc import _kernels as ops
from cnnc.layers.base_separable_conv import BaseSeparableConv


class SeparableConv1D(BaseSeparableConv):
    """A depthwise 1-D convolution then a pointwise (size-1) one, as Keras's
    SeparableConv1D.

    x ``(N, L, C)`` -> ``(N, OL, filters)``. The depthwise step convolves
    each input channel ``c`` with ``depth_multiplier`` filters (kernel_size,
    strides, padding "valid"/"same"/"causal", dilation_rate) into channels
    ordered ``c * depth_multiplier + m``; the pointwise step mixes them into
    ``filters`` channels, then the bias and ``activation``. Weights:
    depthwise_kernel ``(K, C, depth_multiplier)``, pointwise_kernel
    ``(1, C * depth_multiplier, filters)``, bias ``(filters,)``.
    """

    rank = 1
    paddings = ("valid", "same", "causal")

    def _conv(self, x, w, b, pointwise):
        if pointwise:
            return ops.conv1d(x, w, b)
        return ops.conv1d(x, w, b, stride=self.strides[0], padding=self.padding,
                          dilation=self.dilation_rate[0], groups=x.shape[-1])

    def _conv_backward(self, x, w, dz, need_dx, pointwise, need_dw=True):
        if pointwise:
            return ops.conv1d_backward(x, w, dz, need_dx=need_dx, need_dw=need_dw)
        return ops.conv1d_backward(x, w, dz, stride=self.strides[0], padding=self.padding,
                                   dilation=self.dilation_rate[0], groups=x.shape[-1],
                                   need_dx=need_dx, need_dw=need_dw)
