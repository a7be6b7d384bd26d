# cython: language_level=3, boundscheck=False, wraparound=False
"""Spatial transformer kernels on NHWC float32 arrays (src/include/cnnc/spatial.h).

``affine_grid`` and ``grid_sample`` match ``torch.nn.functional.affine_grid``
and ``grid_sample`` (bilinear, zero padding, ``align_corners=False``) with
channels last: grids are ``(N, H, W, 2)`` holding (x, y) in [-1, 1].
"""
import numbers

import numpy as np

from libc.stdint cimport int64_t
from cnnc._common cimport cnnc_status, check_status
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._arrays import as_float32

cdef extern from "cnnc.h" nogil:
    cnnc_status cnnc_affine_grid(int64_t n, int64_t out_h, int64_t out_w, const float *theta,
                                 float *grid)
    cnnc_status cnnc_affine_grid_backward(int64_t n, int64_t out_h, int64_t out_w,
                                          const float *dgrid, float *dtheta)
    cnnc_status cnnc_grid_sample(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                 int64_t out_h, int64_t out_w, const float *grid, float *y)
    cnnc_status cnnc_grid_sample_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                          const float *x, int64_t out_h, int64_t out_w,
                                          const float *grid, const float *dy, float *dx,
                                          float *dgrid)

__all__ = ["affine_grid", "affine_grid_backward", "grid_sample", "grid_sample_backward"]


def _theta(theta):
    theta = as_float32(theta, "theta", allow_empty=True)
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must have shape (N, 2, 3), got {theta.shape}")
    return theta


def _grid(grid, name="grid"):
    grid = as_float32(grid, name, allow_empty=True)
    if grid.ndim != 4 or grid.shape[3] != 2 or grid.shape[1] == 0 or grid.shape[2] == 0:
        raise ValueError(f"{name} must have shape (N, H, W, 2) with H, W > 0, got {grid.shape}")
    return grid


def _images(x):
    x = as_float32(x, "x", allow_empty=True)
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise ValueError(f"x must be a batch of images (N, H, W, C) with H, W, C > 0, "
                         f"got shape {x.shape}")
    return x


def _output_hw(output_shape, n):
    try:
        dims = tuple(output_shape)
    except TypeError:
        raise TypeError(f"output_shape must be a sequence (N, H, W, C), got {output_shape!r}") from None
    if len(dims) != 4 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                 for d in dims):
        raise ValueError(f"output_shape must be 4 integers (N, H, W, C), got {output_shape!r}")
    if dims[0] != n:
        raise ValueError(f"output_shape {dims} has batch {dims[0]}, theta has {n}")
    if dims[1] <= 0 or dims[2] <= 0 or dims[3] <= 0:
        raise ValueError(f"output_shape {dims} must have positive H, W, C")
    return int(dims[1]), int(dims[2])


def affine_grid(theta, output_shape):
    """Sampling grid ``(N, H, W, 2)`` of the affine maps ``theta (N, 2, 3)``
    for an output of ``output_shape (N, H, W, C)``: point (row r, column q)
    is ``theta[i] @ (xs, ys, 1)`` with ``xs = (2q + 1) / W - 1`` and
    ``ys = (2r + 1) / H - 1`` (as ``torch.nn.functional.affine_grid`` with
    ``align_corners=False``; ``grid[..., 0]`` is x, ``grid[..., 1]`` is y)."""
    theta = _theta(theta)
    cdef int64_t n = theta.shape[0]
    cdef int64_t oh, ow
    oh, ow = _output_hw(output_shape, n)
    grid = np.empty((n, oh, ow, 2), dtype=np.float32)
    if n == 0:
        return grid
    cdef const float *tp = in_ptr(theta)
    cdef float *gp = out_ptr(grid)
    cdef cnnc_status status
    with nogil:
        status = cnnc_affine_grid(n, oh, ow, tp, gp)
    check_status(status)
    return grid


def affine_grid_backward(dgrid):
    """Gradient ``(N, 2, 3)`` with respect to theta, given
    ``dgrid (N, H, W, 2)`` (the gradient with respect to affine_grid's output)."""
    dgrid = _grid(dgrid, "dgrid")
    cdef int64_t n = dgrid.shape[0], oh = dgrid.shape[1], ow = dgrid.shape[2]
    dtheta = np.zeros((n, 2, 3), dtype=np.float32)
    if n == 0:
        return dtheta
    cdef const float *gp = in_ptr(dgrid)
    cdef float *tp = out_ptr(dtheta)
    cdef cnnc_status status
    with nogil:
        status = cnnc_affine_grid_backward(n, oh, ow, gp, tp)
    check_status(status)
    return dtheta


def _sample_inputs(x, grid):
    """The images and grid of a sampling, checked: NHWC images, an
    (N, OH, OW, 2) grid, the same batch."""
    x = _images(x)
    grid = _grid(grid)
    if grid.shape[0] != x.shape[0]:
        raise ValueError(f"grid has batch {grid.shape[0]}, x has {x.shape[0]}")
    return x, grid


def grid_sample(x, grid):
    """Bilinear samples of ``x (N, H, W, C)`` at ``grid (N, OH, OW, 2)``
    -> ``(N, OH, OW, C)``. Grid (x, y) in [-1, 1] spans the image's outer
    pixel edges; neighbours outside the image read 0 (as
    ``torch.nn.functional.grid_sample`` with mode="bilinear",
    padding_mode="zeros", align_corners=False). Non-finite grid points
    sample 0."""
    x, grid = _sample_inputs(x, grid)
    cdef int64_t n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    cdef int64_t oh = grid.shape[1], ow = grid.shape[2]
    y = np.empty((n, oh, ow, c), dtype=np.float32)
    if n == 0:
        return y
    cdef const float *xp = in_ptr(x)
    cdef const float *gp = in_ptr(grid)
    cdef float *yp = out_ptr(y)
    cdef cnnc_status status
    with nogil:
        status = cnnc_grid_sample(n, h, w, c, xp, oh, ow, gp, yp)
    check_status(status)
    return y


def grid_sample_backward(x, grid, dy, need_dx=True, need_dgrid=True):
    """Gradients of ``sum(dy * grid_sample(x, grid))``: ``(dx, dgrid)``
    with the shapes of x and grid (None where not needed)."""
    x, grid = _sample_inputs(x, grid)
    dy = as_float32(dy, "dy", allow_empty=True)
    cdef int64_t n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    cdef int64_t oh = grid.shape[1], ow = grid.shape[2]
    if dy.shape != (n, oh, ow, c):
        raise ValueError(f"dy has shape {dy.shape}, expected {(n, oh, ow, c)}")
    dx = np.zeros(x.shape, dtype=np.float32) if need_dx else None
    dgrid = np.zeros(grid.shape, dtype=np.float32) if need_dgrid else None
    if n == 0 or (dx is None and dgrid is None):
        return dx, dgrid
    cdef const float *xp = in_ptr(x)
    cdef const float *gp = in_ptr(grid)
    cdef const float *dyp = in_ptr(dy)
    cdef float *dxp = out_ptr(dx)
    cdef float *dgp = out_ptr(dgrid)
    cdef cnnc_status status
    with nogil:
        status = cnnc_grid_sample_backward(n, h, w, c, xp, oh, ow, gp, dyp, dxp, dgp)
    check_status(status)
    return dx, dgrid
