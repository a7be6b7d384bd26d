"""What RandomRotation, RandomTranslation and RandomZoom share: one random
affine warp per image, its fill mode and interpolation, and the adjoint of
the warp for backward."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")


def _fill_index(i, n, mode):
    if mode == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        k = np.mod(i, 2 * n)
        return np.where(k < n, k, 2 * n - 1 - k)
    return np.mod(i, n)


def warp_adjoint(dy, matrices, input_hw, interpolation, fill_mode):
    """Gradient of affine_warp with respect to its input: every output
    pixel's gradient is scattered back onto the input pixels it read, with
    the interpolation weights."""
    n, oh, ow, c = dy.shape
    h, w = input_hw
    dx = np.zeros((n, h * w, c), np.float64)
    f32 = np.float32
    v = np.arange(oh, dtype=f32)[:, None]
    u = np.arange(ow, dtype=f32)[None, :]
    for i in range(n):
        m = matrices[i]
        xs = np.clip(u * m[0] + (v * m[1] + m[2]), -2**24, 2**24).ravel()
        ys = np.clip(u * m[3] + (v * m[4] + m[5]), -2**24, 2**24).ravel()
        g = dy[i].reshape(-1, c).astype(np.float64)
        if interpolation == "nearest":
            taps = [(np.floor(ys + f32(0.5)), np.floor(xs + f32(0.5)), 1.0)]
        else:
            x0, y0 = np.floor(xs), np.floor(ys)
            fx, fy = (xs - x0).astype(np.float64), (ys - y0).astype(np.float64)
            taps = [(y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                    (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)]
        for yy, xx, weight in taps:
            yi = _fill_index(yy.astype(np.int64), h, fill_mode)
            xi = _fill_index(xx.astype(np.int64), w, fill_mode)
            ok = (yi >= 0) & (xi >= 0)
            np.add.at(dx[i], (yi * w + xi)[ok], (g * np.reshape(weight, (-1, 1)) if np.ndim(weight)
                                                 else g)[ok])
    return dx.reshape(n, h, w, c).astype(np.float32)


class BaseRandomAffine(BaseRandomLayer):
    """A random affine warp per image in training (bilinear or nearest
    sampling, Keras's fill modes); the identity at inference."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 **kwargs):
        super().__init__(seed=seed, **kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)

    def ranges(self):
        """Keyword arguments of ops.random_affine: this layer's ranges, which
        each subclass sets in ``self._ranges``."""
        return dict(self._ranges)

    def transform(self, x, seed):
        self._call_seed = seed
        self._input_hw = x.shape[1:3]
        return ops.random_affine(x, interpolation=self.interpolation, fill_mode=self.fill_mode,
                                 fill_value=self.fill_value, seed=seed, **self.ranges())

    def transform_backward(self, dy):
        dy = np.asarray(dy, np.float32)
        h, w = self._input_hw
        matrices = ops.random_affine_matrices(dy.shape[0], h, w, seed=self._call_seed, **self.ranges())
        return warp_adjoint(dy, matrices, (h, w), self.interpolation, self.fill_mode)

    def get_config(self):
        config = super().get_config()
        config.update({"fill_mode": self.fill_mode, "interpolation": self.interpolation,
                       "fill_value": self.fill_value})
        return config
