"""Random rotations."""
import math

from cnnc.layers.preprocessing.affine_base import BaseRandomAffine
from cnnc.layers.preprocessing.base_random import symmetric_range


class RandomRotation(BaseRandomAffine):
    """Rotates each image about its centre by a random angle in training; the
    identity at inference.

    factor: a fraction of a full turn (2 pi): f means angles in
    [-f 2pi, f 2pi], (lo, hi) means [lo 2pi, hi 2pi]; positive angles turn
    counter-clockwise. fill_mode ("reflect", "wrap", "constant", "nearest")
    and fill_value say what fills the corners; interpolation is "bilinear"
    or "nearest". Input and output: (N, H, W, C).
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        lo, hi = symmetric_range(factor, "factor")
        self._ranges = {"rotation": (lo * 2 * math.pi, hi * 2 * math.pi)}

    def get_config(self):
        config = super().get_config()
        config["factor"] = list(self.factor) if isinstance(self.factor, (tuple, list)) else self.factor
        return config
