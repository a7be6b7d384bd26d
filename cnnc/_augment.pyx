# cython: language_level=3, boundscheck=False, wraparound=False
"""Data augmentation kernels on NHWC float32 batches (src/include/cnnc/augment.h).

Every function takes x of shape (N, H, W, C) (or (N, H, W), treated as one
channel) and returns a new float32 array, or writes ``out`` (which may be x
itself for same-size transforms). Random parameters of image i depend only
on (seed, i): the same seed gives the same output whatever the thread count.
"""
import numpy as np

from libc.stdint cimport int64_t, uint64_t
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._common cimport cnnc_status, check_status
from cnnc._arrays import as_float32, check_out

cdef extern from "cnnc.h" nogil:
    ctypedef enum cnnc_fill_mode:
        CNNC_FILL_CONSTANT
        CNNC_FILL_NEAREST
        CNNC_FILL_REFLECT
        CNNC_FILL_WRAP
    ctypedef enum cnnc_interpolation:
        CNNC_INTERP_BILINEAR
        CNNC_INTERP_NEAREST
    ctypedef struct cnnc_affine_ranges:
        float rotation[2]
        float translate_y[2]
        float translate_x[2]
        float zoom_y[2]
        float zoom_x[2]
        int zoom_keep_aspect
    float cnnc_augment_uniform(uint64_t seed, int64_t image, int stream)
    cnnc_status cnnc_random_flip(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                 int horizontal, int vertical, uint64_t seed, float *y)
    cnnc_status cnnc_random_crop(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                 int64_t out_h, int64_t out_w, int64_t pad, float fill_value,
                                 uint64_t seed, float *y)
    cnnc_status cnnc_affine_warp(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                 int64_t out_h, int64_t out_w, const float *matrices,
                                 int64_t matrix_stride, cnnc_interpolation interpolation,
                                 cnnc_fill_mode fill_mode, float fill_value, float *y)
    cnnc_status cnnc_random_affine_matrices(int64_t n, int64_t h, int64_t w,
                                            const cnnc_affine_ranges *ranges, uint64_t seed,
                                            float *matrices)
    cnnc_status cnnc_random_affine(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                   const cnnc_affine_ranges *ranges, cnnc_interpolation interpolation,
                                   cnnc_fill_mode fill_mode, float fill_value, uint64_t seed, float *y)
    cnnc_status cnnc_random_brightness(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                       float lo, float hi, float clip_lo, float clip_hi,
                                       uint64_t seed, float *y)
    cnnc_status cnnc_random_contrast(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                     float lo, float hi, float clip_lo, float clip_hi,
                                     uint64_t seed, float *y)
    cnnc_status cnnc_random_erasing(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                    float probability, float area_lo, float area_hi, float ratio_lo,
                                    float ratio_hi, float value, uint64_t seed, float *y)

__all__ = ["augment_uniform", "random_flip", "random_crop", "affine_warp", "random_affine_matrices",
           "random_affine", "random_brightness", "random_contrast", "random_erasing"]

FILL_MODES = {"constant": CNNC_FILL_CONSTANT, "nearest": CNNC_FILL_NEAREST,
              "reflect": CNNC_FILL_REFLECT, "wrap": CNNC_FILL_WRAP}
INTERPOLATIONS = {"bilinear": CNNC_INTERP_BILINEAR, "nearest": CNNC_INTERP_NEAREST}


cdef uint64_t _seed(seed) except? 0:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    return <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)


def _images(x):
    """(array as NHWC float32, n, h, w, c, original shape)."""
    x = as_float32(x, "x", allow_empty=True)
    if x.ndim == 3:
        n, h, w, c = x.shape[0], x.shape[1], x.shape[2], 1
    elif x.ndim == 4:
        n, h, w, c = x.shape
    else:
        raise ValueError(f"x must be a batch of images (N, H, W, C) or (N, H, W), got shape {x.shape}")
    if h == 0 or w == 0 or c == 0:
        raise ValueError(f"x has empty images (shape {x.shape})")
    return x, n, h, w, c


def _out_shape(x, n, h, w, c):
    return (n, h, w) if x.ndim == 3 else (n, h, w, c)


def _choice(value, table, name):
    if value not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _pair(value, name):
    if np.isscalar(value):
        value = float(value)
        return (-abs(value), abs(value))
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} range ({lo}, {hi}) has lower > upper")
    return (lo, hi)


def augment_uniform(seed, image, stream):
    """The generator behind every function here: uniform in [0, 1) for
    (seed, image index, stream)."""
    return cnnc_augment_uniform(_seed(seed), image, stream)


def random_flip(x, horizontal=True, vertical=False, seed=0, out=None):
    """Flip each image left-right (horizontal) and/or top-bottom (vertical),
    each with probability 1/2 per image."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    out = check_out(out, x.shape)
    cdef uint64_t s = _seed(seed)
    cdef int fh = bool(horizontal), fv = bool(vertical)
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef cnnc_status status
    with nogil:
        status = cnnc_random_flip(n, h, w, c, px, fh, fv, s, py)
    check_status(status)
    return out


def random_crop(x, height, width, padding=0, fill_value=0.0, seed=0, out=None):
    """Pad each image by ``padding`` pixels of ``fill_value`` on every side and
    take a ``height`` x ``width`` window at a uniformly random position.
    Returns (N, height, width, C)."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    shape = (n, height, width) if x.ndim == 3 else (n, height, width, c)
    if height <= 0 or width <= 0 or padding < 0:
        raise ValueError(f"crop size {height}x{width} must be positive and padding {padding} >= 0")
    out = check_out(out, shape)
    cdef uint64_t s = _seed(seed)
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef int64_t oh = height, ow = width, pad = padding
    cdef float fill = fill_value
    cdef cnnc_status status
    with nogil:
        status = cnnc_random_crop(n, h, w, c, px, oh, ow, pad, fill, s, py)
    check_status(status)
    return out


def affine_warp(x, matrices, output_size=None, interpolation="bilinear", fill_mode="constant",
                fill_value=0.0, out=None):
    """Affine warp of each image. ``matrices``: (6,) for every image or (N, 6);
    output pixel (column u, row v) samples the input at column
    ``m0 u + m1 v + m2`` and row ``m3 u + m4 v + m5`` (Keras's transform
    convention without the projective terms). ``output_size``: (height,
    width), default the input's. fill_mode: constant, nearest, reflect, wrap."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    oh, ow = (h, w) if output_size is None else (int(output_size[0]), int(output_size[1]))
    m = as_float32(matrices, "matrices")
    if m.shape == (6,):
        stride = 0
    elif m.shape == (n, 6):
        stride = 6
    else:
        raise ValueError(f"matrices must have shape (6,) or ({n}, 6), got {m.shape}")
    cdef cnnc_interpolation interp = _choice(interpolation, INTERPOLATIONS, "interpolation")
    cdef cnnc_fill_mode fm = _choice(fill_mode, FILL_MODES, "fill_mode")
    out = check_out(out, (n, oh, ow) if x.ndim == 3 else (n, oh, ow, c))
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef const float *pm = in_ptr(m)
    cdef int64_t ms = stride, coh = oh, cow = ow
    cdef float fill = fill_value
    cdef cnnc_status status
    with nogil:
        status = cnnc_affine_warp(n, h, w, c, px, coh, cow, pm, ms, interp, fm, fill, py)
    check_status(status)
    return out


cdef cnnc_affine_ranges _ranges(rotation, translate_y, translate_x, zoom_y, zoom_x) except *:
    cdef cnnc_affine_ranges r
    r.rotation[0], r.rotation[1] = _pair(rotation, "rotation")
    r.translate_y[0], r.translate_y[1] = _pair(translate_y, "translate_y")
    r.translate_x[0], r.translate_x[1] = _pair(translate_x, "translate_x")
    r.zoom_y[0], r.zoom_y[1] = _pair(zoom_y, "zoom_y")
    r.zoom_keep_aspect = zoom_x is None
    r.zoom_x[0], r.zoom_x[1] = (0.0, 0.0) if zoom_x is None else _pair(zoom_x, "zoom_x")
    return r


def random_affine_matrices(n, height, width, rotation=0.0, translate_y=0.0, translate_x=0.0,
                           zoom_y=0.0, zoom_x=None, seed=0):
    """The (n, 6) matrices random_affine draws for this seed (see
    random_affine for the ranges)."""
    cdef cnnc_affine_ranges r = _ranges(rotation, translate_y, translate_x, zoom_y, zoom_x)
    out = np.empty((n, 6), np.float32)
    cdef float *pm = out_ptr(out)
    cdef uint64_t s = _seed(seed)
    cdef int64_t cn = n, ch = height, cw = width
    cdef cnnc_status status
    with nogil:
        status = cnnc_random_affine_matrices(cn, ch, cw, &r, s, pm)
    check_status(status)
    return out


def random_affine(x, rotation=0.0, translate_y=0.0, translate_x=0.0, zoom_y=0.0, zoom_x=None,
                  interpolation="bilinear", fill_mode="reflect", fill_value=0.0, seed=0, out=None):
    """Random rotation, translation and zoom as one affine warp per image.

    Each range is (lower, upper) or a number f meaning (-f, f), drawn
    uniformly per image: rotation in radians (counter-clockwise, about the
    centre); translate_y/x as fractions of the height/width (positive moves
    the content down/right); zoom_y/x: the sampled region is (1 + z) times
    the image (z > 0 zooms out); zoom_x=None keeps the aspect ratio."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    cdef cnnc_affine_ranges r = _ranges(rotation, translate_y, translate_x, zoom_y, zoom_x)
    cdef cnnc_interpolation interp = _choice(interpolation, INTERPOLATIONS, "interpolation")
    cdef cnnc_fill_mode fm = _choice(fill_mode, FILL_MODES, "fill_mode")
    out = check_out(out, x.shape)
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef uint64_t s = _seed(seed)
    cdef float fill = fill_value
    cdef cnnc_status status
    with nogil:
        status = cnnc_random_affine(n, h, w, c, px, &r, interp, fm, fill, s, py)
    check_status(status)
    return out


def _clip(value_range):
    if value_range is None:
        return -np.inf, np.inf
    lo, hi = (float(v) for v in value_range)
    return lo, hi


ctypedef cnnc_status (*photometric_fn)(int64_t, int64_t, int64_t, int64_t, const float *, float, float,
                                       float, float, uint64_t, float *) noexcept nogil


cdef object _photometric(photometric_fn fn, x, lower, upper, value_range, seed, out):
    """Brightness and contrast share their arguments: a per-image factor drawn
    in [lower, upper], then an optional clip to value_range."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    out = check_out(out, x.shape)
    clo, chi = _clip(value_range)
    cdef float lo = lower, hi = upper, cl = clo, ch = chi
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef uint64_t s = _seed(seed)
    cdef cnnc_status status
    with nogil:
        status = fn(n, h, w, c, px, lo, hi, cl, ch, s, py)
    check_status(status)
    return out


def random_brightness(x, lower, upper, value_range=None, seed=0, out=None):
    """Add a per-image delta drawn uniformly in [lower, upper], then clip to
    ``value_range`` (lo, hi) if given."""
    return _photometric(cnnc_random_brightness, x, lower, upper, value_range, seed, out)


def random_contrast(x, lower, upper, value_range=None, seed=0, out=None):
    """``(x - mean) * f + mean`` with f uniform in [lower, upper] per image and
    mean per image and channel, then clip to ``value_range`` if given."""
    return _photometric(cnnc_random_contrast, x, lower, upper, value_range, seed, out)


def random_erasing(x, probability=0.5, area=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, seed=0,
                   out=None):
    """Random erasing: with ``probability`` per image, set a rectangle of
    relative area in ``area`` and aspect ratio (height/width, log-uniform) in
    ``ratio`` at a random position to ``value``."""
    cdef int64_t n, h, w, c
    x, n, h, w, c = _images(x)
    out = check_out(out, x.shape)
    cdef float p = probability, alo = area[0], ahi = area[1], rlo = ratio[0], rhi = ratio[1], v = value
    cdef const float *px = in_ptr(x)
    cdef float *py = out_ptr(out)
    cdef uint64_t s = _seed(seed)
    cdef cnnc_status status
    with nogil:
        status = cnnc_random_erasing(n, h, w, c, px, p, alo, ahi, rlo, rhi, v, s, py)
    check_status(status)
    return out
