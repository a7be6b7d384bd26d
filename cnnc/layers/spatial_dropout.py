"""Dropout of whole feature maps."""
from cnnc.layers.conv_utils import check_data_format
from cnnc.layers.dropout import Dropout


class SpatialDropout2D(Dropout):
    """Drops entire channels of ``(N, H, W, C)`` inputs (the same channels at
    every position of a sample), which suits correlated feature maps."""

    rank = 2

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        self.data_format = check_data_format(data_format)
        super().__init__(rate, noise_shape=(None,) + (1,) * self.rank + (None,), seed=seed,
                         **kwargs)

    def forward(self, x, training=False):
        if x.ndim != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs of rank "
                             f"{self.rank + 2}, got shape {x.shape}")
        return super().forward(x, training)

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        config["data_format"] = self.data_format
        return config


class SpatialDropout1D(SpatialDropout2D):
    """Drops entire channels of ``(N, L, C)`` inputs."""

    rank = 1

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config
