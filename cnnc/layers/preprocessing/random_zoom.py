"""Random zooms."""
from cnnc.layers.preprocessing.affine_base import BaseRandomAffine
from cnnc.layers.preprocessing.base_random import symmetric_range


class RandomZoom(BaseRandomAffine):
    """Zooms each image in or out about its centre by a random amount in
    training; the identity at inference.

    height_factor: f means zoom amounts in [-f, f], (lo, hi) means [lo, hi];
    an amount z shows (1 + z) times the image height, so positive values zoom
    out and negative values zoom in (as in Keras). width_factor: the same for
    the width; None (the default) zooms both axes alike, keeping the aspect
    ratio. fill_mode, fill_value and interpolation as in RandomRotation.
    Input and output: (N, H, W, C).
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        zy = symmetric_range(height_factor, "height_factor")
        zx = None if width_factor is None else symmetric_range(width_factor, "width_factor")
        if zy[0] <= -1 or (zx is not None and zx[0] <= -1):
            raise ValueError("zoom factors must stay above -1 (zooming in by 100% or more "
                             "leaves nothing to show)")
        self._ranges = {"zoom_y": zy, "zoom_x": zx}

    def get_config(self):
        config = super().get_config()
        for key in ("height_factor", "width_factor"):
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, (tuple, list)) else value
        return config
