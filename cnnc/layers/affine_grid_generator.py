"""The grid generator of a spatial transformer."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.layers.base import Layer
from cnnc.layers.kernel_layer import positive_int


class AffineGridGenerator(Layer):
    """Turns affine parameters into a sampling grid for
    :class:`BilinearSampler` (the grid generator of a spatial transformer
    network, Jaderberg et al., 2015).

    Input: theta ``(N, 6)`` (e.g. a Dense(6) localization head) or
    ``(N, 2, 3)``, row-major ``[[a, b, tx], [c, d, ty]]`` mapping output
    coordinates to input coordinates, both normalized to [-1, 1] across the
    image (the identity ``[1, 0, 0, 0, 1, 0]`` samples the image as it is).
    Output: grid ``(N, height, width, 2)`` holding (x, y) per output pixel,
    as ``cnnc.ops.affine_grid`` and ``torch.nn.functional.affine_grid``
    with ``align_corners=False``. No weights.
    """

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = positive_int(height, "height")
        self.width = positive_int(width, "width")
        self._theta_shape = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if input_shape[1:] not in ((6,), (2, 3)):
            raise ValueError(f"AffineGridGenerator {self.name!r} expects theta of shape (N, 6) or "
                             f"(N, 2, 3), got {input_shape}")
        self.built = True

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape)[0], self.height, self.width, 2)

    def forward(self, theta, training=False):
        if theta.shape[1:] not in ((6,), (2, 3)):
            raise ValueError(f"AffineGridGenerator {self.name!r} expects theta of shape (N, 6) or "
                             f"(N, 2, 3), got {theta.shape}")
        self._theta_shape = theta.shape if training else None
        n = theta.shape[0]
        return ops.affine_grid(theta.reshape(n, 2, 3), (n, self.height, self.width, 1))

    def backward(self, dgrid):
        if self._theta_shape is None:
            raise RuntimeError(f"AffineGridGenerator {self.name!r}: backward needs a "
                               f"forward(theta, training=True) first")
        if not self.need_input_gradient:
            return None
        return ops.affine_grid_backward(np.asarray(dgrid, np.float32)).reshape(self._theta_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width})
        return config
