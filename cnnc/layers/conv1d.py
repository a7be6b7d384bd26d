"""1-D convolution layer."""
from cnnc import _kernels as ops
from cnnc.layers.base_conv import BaseConv


class Conv1D(BaseConv):
    """1-D convolution over ``(N, L, C)`` inputs, as Keras's Conv1D.

    padding: "valid", "same" or "causal" (left padding only, so output step
    t sees inputs up to t), or explicit: an int or ``(left, right)``. Output ``(N, OL, filters)``. Weights: kernel
    ``(K, C // groups, filters)``, bias ``(filters,)``.
    """

    rank = 1
    paddings = ("valid", "same", "causal")

    def _conv(self, x, w, b):
        return ops.conv1d(x, w, b, stride=self.strides[0], padding=self._kernel_padding(),
                          dilation=self.dilation_rate[0], groups=self.groups)

    def _conv_backward(self, x, w, dz, need_dx):
        return ops.conv1d_backward(x, w, dz, stride=self.strides[0],
                                   padding=self._kernel_padding(),
                                   dilation=self.dilation_rate[0], groups=self.groups,
                                   need_dx=need_dx, need_db=self.use_bias)
