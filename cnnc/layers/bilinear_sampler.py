"""The sampler of a spatial transformer."""
from cnnc import _kernels as ops
from cnnc.layers.base import Layer


class BilinearSampler(Layer):
    """Samples images at a grid with bilinear interpolation (the sampler of
    a spatial transformer network).

    Called on ``[images, grid]``: images ``(N, H, W, C)``, grid ``(N, OH,
    OW, 2)`` of (x, y) in [-1, 1] (from :class:`AffineGridGenerator` or any
    layer); output ``(N, OH, OW, C)``. Neighbours outside the image read 0;
    as ``cnnc.ops.grid_sample`` and ``torch.nn.functional.grid_sample``
    with mode="bilinear", padding_mode="zeros", align_corners=False. The
    gradient flows to both the images and the grid. No weights.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._inputs = None

    def _check(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) != 2 or not all(
                isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"BilinearSampler {self.name!r} must be called on [images, grid]")
        images, grid = (tuple(s) for s in shapes)
        if len(images) != 4 or len(grid) != 4 or grid[3] != 2:
            raise ValueError(f"BilinearSampler {self.name!r} expects images (N, H, W, C) and a "
                             f"grid (N, OH, OW, 2), got {images} and {grid}")
        return images, grid

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        images, grid = self._check(input_shape)
        return (images[0], grid[1], grid[2], images[3])

    def forward(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"BilinearSampler {self.name!r} must be called on [images, grid]")
        images, grid = inputs
        self._check([images.shape, grid.shape])
        self._inputs = (images, grid) if training else None
        return ops.grid_sample(images, grid)

    def backward(self, dy):
        if self._inputs is None:
            raise RuntimeError(f"BilinearSampler {self.name!r}: backward needs a "
                               f"forward([images, grid], training=True) first")
        if not self.need_input_gradient:
            return None
        images, grid = self._inputs
        dx, dgrid = ops.grid_sample_backward(images, grid, dy)
        return [dx, dgrid]
