/* Data augmentation on NHWC float32 image batches.
 *
 * Every function takes a batch x of n images of h x w x c floats and writes
 * y (which may be x itself, but must not otherwise overlap it). The random
 * parameters of image i are a pure function of (seed, i), drawn by a
 * counter-based generator, so a given seed gives the same output whatever
 * the number of threads. Images are processed in parallel with OpenMP.
 */
#ifndef CNNC_AUGMENT_H
#define CNNC_AUGMENT_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How samples outside the image are read (Keras's fill_mode), for an image
 * row a b c d:
 *   CONSTANT  k k k k | a b c d | k k k k   (k = fill_value)
 *   NEAREST   a a a a | a b c d | d d d d
 *   REFLECT   d c b a | a b c d | d c b a
 *   WRAP      a b c d | a b c d | a b c d */
typedef enum cnnc_fill_mode {
    CNNC_FILL_CONSTANT = 0,
    CNNC_FILL_NEAREST = 1,
    CNNC_FILL_REFLECT = 2,
    CNNC_FILL_WRAP = 3
} cnnc_fill_mode;

typedef enum cnnc_interpolation {
    CNNC_INTERP_BILINEAR = 0,
    CNNC_INTERP_NEAREST = 1
} cnnc_interpolation;

/* The generator: a uniform float in [0, 1) for (seed, image, stream), the
 * same on every platform and thread count. Exposed so that other code can
 * reproduce the parameters the functions below draw. */
CNNC_API float cnnc_augment_uniform(uint64_t seed, int64_t image, int stream);

/* Flips each image left-right (if horizontal) and/or top-bottom (if
 * vertical), each with probability 1/2, independently. */
CNNC_API cnnc_status cnnc_random_flip(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                      int horizontal, int vertical, uint64_t seed, float *y);

/* Pads each image by `pad` pixels of fill_value on every side, then takes
 * an out_h x out_w window at a uniformly random integer position (top in
 * [0, h + 2 pad - out_h], left likewise). y is n x out_h x out_w x c. */
CNNC_API cnnc_status cnnc_random_crop(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                      int64_t out_h, int64_t out_w, int64_t pad, float fill_value,
                                      uint64_t seed, float *y);

/* Affine warp: output pixel (column u, row v) of image i samples the input
 * at column m[0] u + m[1] v + m[2] and row m[3] u + m[4] v + m[5] (pixel
 * indices; m = matrices + 6 i, or the same 6 numbers for every image when
 * matrix_stride is 0, else matrix_stride must be 6). Bilinear sampling reads
 * the four neighbours through fill_mode; nearest rounds half up. y is
 * n x out_h x out_w x c. */
CNNC_API cnnc_status cnnc_affine_warp(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                      int64_t out_h, int64_t out_w, const float *matrices,
                                      int64_t matrix_stride, cnnc_interpolation interpolation,
                                      cnnc_fill_mode fill_mode, float fill_value, float *y);

/* Ranges of the random geometric transforms, each drawn uniformly in
 * [lo, hi] per image (set lo = hi = 0 to disable one):
 *   rotation: angle in radians, counter-clockwise, about the image centre;
 *   translate_y/x: shift as a fraction of the height/width (positive moves
 *     the content down/right);
 *   zoom_y/x: the sampled region is (1 + z) times the image, so z > 0 zooms
 *     out and z < 0 zooms in (Keras's RandomZoom); when zoom_keep_aspect is
 *     set, zoom_x is ignored and the zoom_y draw scales both axes. */
typedef struct cnnc_affine_ranges {
    float rotation[2];
    float translate_y[2];
    float translate_x[2];
    float zoom_y[2];
    float zoom_x[2];
    int zoom_keep_aspect;
} cnnc_affine_ranges;

/* The n matrices (n x 6, in cnnc_affine_warp's convention) that
 * cnnc_random_affine uses for this seed: the output is the input zoomed,
 * then rotated, then translated. */
CNNC_API cnnc_status cnnc_random_affine_matrices(int64_t n, int64_t h, int64_t w,
                                                 const cnnc_affine_ranges *ranges, uint64_t seed,
                                                 float *matrices);

/* Rotation, translation and zoom as one affine warp per image (same size). */
CNNC_API cnnc_status cnnc_random_affine(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                        const cnnc_affine_ranges *ranges,
                                        cnnc_interpolation interpolation, cnnc_fill_mode fill_mode,
                                        float fill_value, uint64_t seed, float *y);

/* y = clamp(x + delta, clip_lo, clip_hi) with delta uniform in [lo, hi] per
 * image (pass -INFINITY/INFINITY for no clipping). */
CNNC_API cnnc_status cnnc_random_brightness(int64_t n, int64_t h, int64_t w, int64_t c,
                                            const float *x, float lo, float hi, float clip_lo,
                                            float clip_hi, uint64_t seed, float *y);

/* y = clamp((x - mean) f + mean, clip_lo, clip_hi) with f uniform in
 * [lo, hi] per image and mean the per-image, per-channel mean. */
CNNC_API cnnc_status cnnc_random_contrast(int64_t n, int64_t h, int64_t w, int64_t c,
                                          const float *x, float lo, float hi, float clip_lo,
                                          float clip_hi, uint64_t seed, float *y);

/* Random erasing: with the given probability per image, a rectangle of area
 * s h w (s uniform in [area_lo, area_hi]) and aspect ratio r (log-uniform
 * in [ratio_lo, ratio_hi]; height sqrt(s h w r), width sqrt(s h w / r)),
 * at a uniformly random position, is set to value. Up to 10 draws are made
 * to find a rectangle that fits; if none does the image is left as is. */
CNNC_API cnnc_status cnnc_random_erasing(int64_t n, int64_t h, int64_t w, int64_t c,
                                         const float *x, float probability, float area_lo,
                                         float area_hi, float ratio_lo, float ratio_hi, float value,
                                         uint64_t seed, float *y);

#ifdef __cplusplus
}
#endif
#endif
