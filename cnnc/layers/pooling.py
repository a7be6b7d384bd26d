"""Max and average pooling over 1-D and 2-D windows."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers import conv_utils
from cnnc.layers.base import Layer


class BasePooling(Layer):
    """A pooling window of ``pool_size`` moved by ``strides`` (default:
    ``pool_size``) over the spatial axes.

    padding: "valid", "same" or explicit (an int, one int per axis, or one
    ``(before, after)`` pair per axis, each pad smaller than the pool's
    extent). ``dilation_rate`` spaces the window's taps (ONNX's and
    PyTorch's pooling ``dilations``): a window of ``k`` taps spans
    ``(k - 1) * dilation + 1`` input positions.
    Padded positions never win a max. An average leaves them out of the
    divisor (Keras's rule) unless ``count_include_pad`` (PyTorch's and ONNX's
    default), which counts the zeros of the explicit padding. ``ceil_mode``
    rounds the output size up (PyTorch and ONNX): the last window may run
    past the padded input, and that overhang is never counted.
    """

    rank = 2
    averages = False  # whether count_include_pad means anything

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 ceil_mode=False, count_include_pad=False, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = conv_utils.normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = (self.pool_size if strides is None
                        else conv_utils.normalize_tuple(strides, self.rank, "strides"))
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        self.padding = conv_utils.normalize_conv_padding(padding, self.rank)
        if not isinstance(self.padding, str) and any(
                p >= k for pair, k in zip(self.padding, self._extent) for p in pair):
            raise ValueError(f"padding {padding!r}: each pad must be smaller than the pool's "
                             f"extent {self._extent}")
        self.data_format = conv_utils.check_data_format(data_format)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self._x = None
        self._checked_shape = None
        self._plans = {}

    @property
    def _extent(self):
        """Input positions one window spans, per spatial axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.pool_size, self.dilation_rate))

    def _pads(self, spatial):
        """(before, after) per spatial axis, and the ceil-mode overhang after."""
        pads, overhang = [], []
        for n, k, s, mode in zip(spatial, self._extent, self.strides,
                                 (self.padding,) * self.rank if isinstance(self.padding, str)
                                 else self.padding):
            if n is None:
                pads.append((0, 0))
                overhang.append(0)
                continue
            if mode == "valid":
                pair = (0, 0)
            elif mode == "same":
                pair = ops.same_padding(n, k, s, 1)
            else:
                pair = tuple(mode)
            extra = 0
            if self.ceil_mode and n is not None:
                padded = n + pair[0] + pair[1]
                out = -(-(padded - k) // s) + 1
                if (out - 1) * s >= n + pair[0]:  # no window may start in the end padding
                    out -= 1
                extra = max((out - 1) * s + k - padded, 0)
            pads.append(pair)
            overhang.append(extra)
        return pads, overhang

    def _plan(self, spatial):
        """How to run the kernel for inputs of this spatial size: (explicit
        zero padding applied first or None, the kernel's padding)."""
        plan = self._plans.get(spatial)
        if plan is None:
            pads, overhang = self._pads(spatial)
            if isinstance(self.padding, str) and not any(overhang):
                pre, kernel = None, self.padding
            elif self.averages and self.count_include_pad and any(p for pair in pads for p in pair):
                pre = pads
                kernel = tuple((0, e) for e in overhang)
            else:
                pre = None
                kernel = tuple((b, a + e) for (b, a), e in zip(pads, overhang))
            if kernel != "valid" and not isinstance(kernel, str) and any(
                    p >= k for pair, k in zip(kernel, self.pool_size) for p in pair):
                raise ValueError(f"{type(self).__name__} {self.name!r}: with ceil_mode the "
                                 f"padding {kernel} reaches a whole pool {self.pool_size}")
            args = dict(pool_size=self.pool_size, strides=self.strides, padding=kernel)
            if self.rank == 1:
                args = dict(pool_size=self.pool_size[0], strides=self.strides[0],
                            padding=kernel if isinstance(kernel, str) else kernel[0])
            plan = self._plans[spatial] = (pre, args)
        return plan

    def _pooled(self, x, fn):
        if self.dilation_rate != (1,) * self.rank:
            return self._dilated(x)
        pre, args = self._plan(x.shape[1:-1])
        if pre is not None:
            x = np.pad(x, ((0, 0),) + tuple(pre) + ((0, 0),))
        return fn(x, args)

    def _pooled_backward(self, x, dy, fn):
        if self.dilation_rate != (1,) * self.rank:
            return self._dilated_backward(x, dy)
        pre, args = self._plan(x.shape[1:-1])
        if pre is None:
            return fn(x, dy, args)
        dx = fn(np.pad(x, ((0, 0),) + tuple(pre) + ((0, 0),)), dy, args)
        crop = (slice(None),) + tuple(slice(b, b + n) for (b, _), n in
                                      zip(pre, x.shape[1:-1])) + (slice(None),)
        return np.ascontiguousarray(dx[crop])

    # -- dilated windows: one strided view of the padded input per tap ------------------
    def _taps(self, x):
        """x as (N, H, W, C) padded with ``fill`` where windows may reach, the
        output size, and per tap its (row, column) offset, in row-major tap
        order (the order ties are broken in)."""
        x4 = x if self.rank == 2 else x[:, None]
        spatial = x.shape[1:-1]
        pads, overhang = self._pads(spatial)
        out = self.compute_output_shape(x.shape)[1:-1]
        if self.rank == 1:
            pads, overhang, out = [(0, 0)] + pads, [0] + overhang, (1,) + tuple(out)
        pool = (1,) * (2 - self.rank) + self.pool_size
        strides = (1,) * (2 - self.rank) + self.strides
        dilation = (1,) * (2 - self.rank) + self.dilation_rate
        widths = ((0, 0),) + tuple((b, a + e) for (b, a), e in zip(pads, overhang)) + ((0, 0),)
        taps = [(i * dilation[0], j * dilation[1]) for i in range(pool[0]) for j in range(pool[1])]
        return x4, widths, tuple(out), strides, taps

    @staticmethod
    def _window(padded, tap, out, strides):
        (r, c), (oh, ow), (sh, sw) = tap, out, strides
        return padded[:, r:r + (oh - 1) * sh + 1:sh, c:c + (ow - 1) * sw + 1:sw]

    def _divisor(self, x4, widths, out, strides, taps):
        """Per output position (OH, OW, 1): the taps an average divides by,
        those on the input (or, with count_include_pad, on the explicitly
        padded input, never the ceil-mode overhang)."""
        pads, _ = self._pads(x4.shape[1:-1] if self.rank == 2 else x4.shape[2:-1])
        if self.rank == 1:
            pads = [(0, 0)] + pads
        counts = []
        for axis in range(2):
            n, (before, _), s = x4.shape[1 + axis], pads[axis], strides[axis]
            low, high = (0, n + sum(pads[axis])) if self.count_include_pad else (before,
                                                                                 before + n)
            offsets = sorted({t[axis] for t in taps})
            start = np.arange(out[axis]) * s
            counts.append(sum(((start + o >= low) & (start + o < high)).astype(np.float32)
                              for o in offsets))
        return (counts[0][:, None] * counts[1][None, :])[..., None]

    def _dilated(self, x):
        x4, widths, out, strides, taps = self._taps(x)
        fill = np.float32(0.0 if self.averages else -np.inf)
        padded = np.pad(x4, widths, constant_values=fill)
        y = np.array(self._window(padded, taps[0], out, strides), dtype=np.float32)
        for tap in taps[1:]:
            (np.add if self.averages else np.maximum)(y, self._window(padded, tap, out, strides),
                                                      out=y)
        if self.averages:
            y /= self._divisor(x4, widths, out, strides, taps)
        return y if self.rank == 2 else y[:, 0]

    def _dilated_backward(self, x, dy):
        x4, widths, out, strides, taps = self._taps(x)
        dy4 = dy if self.rank == 2 else dy[:, None]
        grad = np.zeros(tuple(n + b + a for n, (b, a) in zip(x4.shape, widths)), np.float32)
        if self.averages:
            share = dy4 / self._divisor(x4, widths, out, strides, taps)
            for tap in taps:
                self._window(grad, tap, out, strides)[...] += share
        else:
            padded = np.pad(x4, widths, constant_values=np.float32(-np.inf))
            best = self._dilated(x)
            best = best if self.rank == 2 else best[:, None]
            open_ = np.ones(best.shape, bool)  # windows whose maximum is not yet given dy
            for tap in taps:
                v = self._window(padded, tap, out, strides)
                hit = open_ & ((v == best) | (np.isnan(v) & np.isnan(best)))
                self._window(grad, tap, out, strides)[...] += np.where(hit, dy4, np.float32(0))
                open_ &= ~hit
        crop = tuple(slice(b, b + n) for n, (b, _) in zip(x4.shape, widths))
        dx = np.ascontiguousarray(grad[crop])
        return dx if self.rank == 2 else dx[:, 0]

    def build(self, input_shape):
        conv_utils.check_input_rank(self, input_shape, self.rank + 2)
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        pads, overhang = self._pads(input_shape[1:-1])
        spatial = tuple(conv_utils.conv_output_length(n, k, (p[0], p[1] + e), s)
                        for n, k, p, e, s in zip(input_shape[1:-1], self._extent, pads,
                                                 overhang, self.strides))
        if any(s is not None and s <= 0 for s in spatial):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input shape {input_shape} is "
                             f"smaller than pool_size={self.pool_size}")
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def forward(self, x, training=False):
        if x.shape != self._checked_shape:  # validate each new input shape once
            conv_utils.check_rank(self, x, self.rank + 2, f"{self.rank}-D")
            self.compute_output_shape(x.shape)
            self._checked_shape = x.shape
        self._x = x if training else None
        return self._pool(x)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        return self._pool_backward(self._x, dy)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size), "strides": list(self.strides),
                       "padding": conv_utils.padding_config(self.padding),
                       "data_format": self.data_format, "ceil_mode": self.ceil_mode,
                       "count_include_pad": self.count_include_pad,
                       "dilation_rate": list(self.dilation_rate)})
        return config


class MaxPooling2D(BasePooling):
    """Max over ``pool_size`` windows of ``(N, H, W, C)``; the gradient goes to
    the first maximum of each window."""

    def _pool(self, x):
        return self._pooled(x, lambda x, args: ops.max_pool2d(x, **args))

    def _pool_backward(self, x, dy):
        return self._pooled_backward(
            x, dy, lambda x, dy, args: ops.max_pool2d_backward(x, dy, **args))


class AveragePooling2D(BasePooling):
    """Mean over ``pool_size`` windows of ``(N, H, W, C)``."""

    averages = True

    def _pool(self, x):
        return self._pooled(x, lambda x, args: ops.avg_pool2d(x, **args))

    def _pool_backward(self, x, dy):
        return self._pooled_backward(
            x, dy, lambda x, dy, args: ops.avg_pool2d_backward(dy, x.shape, **args))


class MaxPooling1D(BasePooling):
    """Max over ``pool_size`` windows of ``(N, L, C)``."""

    rank = 1

    def _pool(self, x):
        return self._pooled(x, lambda x, args: ops.max_pool1d(x, **args))

    def _pool_backward(self, x, dy):
        return self._pooled_backward(
            x, dy, lambda x, dy, args: ops.max_pool1d_backward(x, dy, **args))


class AveragePooling1D(BasePooling):
    """Mean over ``pool_size`` windows of ``(N, L, C)``."""

    averages = True

    rank = 1

    def _pool(self, x):
        return self._pooled(x, lambda x, args: ops.avg_pool1d(x, **args))

    def _pool_backward(self, x, dy):
        return self._pooled_backward(
            x, dy, lambda x, dy, args: ops.avg_pool1d_backward(dy, x.shape, **args))


MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
