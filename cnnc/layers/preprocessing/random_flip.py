"""Random horizontal and/or vertical flips."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.preprocessing.base_random import BaseRandomLayer

_MODES = {"horizontal": (True, False), "vertical": (False, True),
          "horizontal_and_vertical": (True, True)}


class RandomFlip(BaseRandomLayer):
    """Flips each image left-right and/or top-bottom with probability 1/2
    (per axis) in training; the identity at inference.

    mode: "horizontal", "vertical" or "horizontal_and_vertical".
    Input and output: (N, H, W, C).
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        self.mode = mode

    def transform(self, x, seed):
        self._call_seed = seed
        horizontal, vertical = _MODES[self.mode]
        return ops.random_flip(x, horizontal, vertical, seed=seed)

    def transform_backward(self, dy):
        # A flip is its own inverse, and the same seed flips the same images.
        horizontal, vertical = _MODES[self.mode]
        return ops.random_flip(np.asarray(dy, np.float32), horizontal, vertical, seed=self._call_seed)

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
