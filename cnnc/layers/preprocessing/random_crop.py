"""Random crops (with optional padding)."""
import numbers

import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def smart_resize(x, height, width):
    """Keras's smart resize: the largest centred window of the target aspect
    ratio, resized bilinearly (pixel centres) to height x width."""
    n, h, w, c = x.shape
    if (h, w) == (height, width):
        return x
    crop_h = min(h, max(1, int(round(w * height / width))))
    crop_w = min(w, max(1, int(round(h * width / height))))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    sy, sx = crop_h / height, crop_w / width
    matrix = np.array([sx, 0, left + 0.5 * sx - 0.5, 0, sy, top + 0.5 * sy - 0.5], np.float32)
    return ops.affine_warp(x, matrix, output_size=(height, width), fill_mode="nearest")


class RandomCrop(BaseRandomLayer):
    """Crops a random height x width window of each image in training.

    padding: pixels of fill_value added on every side first (the CIFAR-style
    "pad and crop" augmentation; with height and width equal to the input's
    this is a random shift). At inference, and in training when the padded
    image is smaller than the window, the image is resized as Keras does:
    the largest centred window of the target aspect ratio, resized
    bilinearly. Input (N, H, W, C); output (N, height, width, C).
    """

    def __init__(self, height, width, seed=None, padding=0, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height = _positive_int(height, "height")
        self.width = _positive_int(width, "width")
        self.padding = _positive_int(padding, "padding", minimum=0)
        self.fill_value = float(fill_value)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width) + tuple(input_shape[3:])

    def _fits(self, x):
        p = 2 * self.padding
        return x.shape[1] + p >= self.height and x.shape[2] + p >= self.width

    def inference(self, x):
        self._resized = True
        self._input_shape = x.shape
        return smart_resize(x, self.height, self.width)

    def transform(self, x, seed):
        if not self._fits(x):
            return self.inference(x)
        self._resized = False
        self._input_shape = x.shape
        self._call_seed = seed
        return ops.random_crop(x, self.height, self.width, padding=self.padding,
                               fill_value=self.fill_value, seed=seed)

    def _offsets(self, i):
        n, h, w, c = self._input_shape
        p = self.padding
        span_y, span_x = h + 2 * p - self.height + 1, w + 2 * p - self.width + 1
        top = min(int(ops.augment_uniform(self._call_seed, i, 0) * np.float32(span_y)), span_y - 1)
        left = min(int(ops.augment_uniform(self._call_seed, i, 1) * np.float32(span_x)), span_x - 1)
        return top, left

    def _resize_backward(self, dy):
        n, h, w, c = self._input_shape
        if (h, w) == (self.height, self.width):
            return dy
        from cnnc.layers.preprocessing.affine_base import warp_adjoint
        crop_h = min(h, max(1, int(round(w * self.height / self.width))))
        crop_w = min(w, max(1, int(round(h * self.width / self.height))))
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        sy, sx = crop_h / self.height, crop_w / self.width
        m = np.array([sx, 0, left + 0.5 * sx - 0.5, 0, sy, top + 0.5 * sy - 0.5], np.float32)
        return warp_adjoint(np.asarray(dy, np.float32), np.tile(m, (n, 1)), (h, w), "bilinear", "nearest")

    def inference_backward(self, dy):
        return self._resize_backward(dy)

    def transform_backward(self, dy):
        if self._resized:
            return self._resize_backward(dy)
        n, h, w, c = self._input_shape
        p = self.padding
        dx = np.zeros((n, h + 2 * p, w + 2 * p, c), np.float32)
        for i in range(n):
            top, left = self._offsets(i)
            dx[i, top:top + self.height, left:left + self.width] = dy[i]
        return np.ascontiguousarray(dx[:, p:p + h, p:p + w])

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width, "padding": self.padding,
                       "fill_value": self.fill_value})
        return config
