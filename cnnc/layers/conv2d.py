"""2-D convolution layer."""
from cnnc import _kernels as ops
from cnnc.layers.base_conv import BaseConv


class Conv2D(BaseConv):
    """2-D convolution over ``(N, H, W, C)`` inputs, as Keras's Conv2D.

    filters: output channels; kernel_size, strides, dilation_rate: int or
    (h, w); padding: "valid", "same" (TensorFlow's rule: the odd pixel is
    padded bottom/right) or explicit: an int, ``(ph, pw)`` or ``((top,
    bottom), (left, right))``; groups: grouped convolution. Output
    ``(N, OH, OW, filters)``. Weights: kernel ``(KH, KW, C // groups,
    filters)``, bias ``(filters,)``.
    """

    rank = 2

    def _conv(self, x, w, b):
        return ops.conv2d(x, w, b, strides=self.strides,
                          padding=self._kernel_padding(),
                          dilation=self.dilation_rate, groups=self.groups)

    def _conv_backward(self, x, w, dz, need_dx):
        return ops.conv2d_backward(x, w, dz, strides=self.strides,
                                   padding=self._kernel_padding(),
                                   dilation=self.dilation_rate, groups=self.groups,
                                   need_dx=need_dx, need_db=self.use_bias)
