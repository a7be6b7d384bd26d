"""Random translations."""
from cnnc.layers.preprocessing.affine_base import BaseRandomAffine
from cnnc.layers.preprocessing.base_random import symmetric_range


class RandomTranslation(BaseRandomAffine):
    """Shifts each image by a random amount in training; the identity at
    inference.

    height_factor, width_factor: fractions of the height and width: f means
    shifts in [-f, f] times the size, (lo, hi) means [lo, hi]; positive
    shifts move the content down and right. fill_mode, fill_value and
    interpolation as in RandomRotation. Input and output: (N, H, W, C).
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear",
                 seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._ranges = {"translate_y": symmetric_range(height_factor, "height_factor"),
                        "translate_x": symmetric_range(width_factor, "width_factor")}

    def get_config(self):
        config = super().get_config()
        for key in ("height_factor", "width_factor"):
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, (tuple, list)) else value
        return config
