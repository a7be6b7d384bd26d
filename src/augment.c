/* Multiplies and adds stay separate (no FMA contraction) so that every ISA
 * path computes the same sample coordinates and values, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <string.h>
#ifdef CNNC_OPENMP
#include <omp.h>
#endif
#include "augment_kernels.h"

#define AUGMENT_SLOT 6
/* Floats of work per image below which images stay on one thread. */
#define AUGMENT_GRAIN cnnc_work_grain(CNNC_WORK_AUGMENT)

/* ---- the counter-based generator ------------------------------------------ */
static inline uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float cnnc_augment_uniform(uint64_t seed, int64_t image, int stream)
{
    uint64_t h = mix64(mix64(mix64(seed) ^ (uint64_t)image) ^ (uint64_t)(uint32_t)stream);
    return (float)(h >> 40) * 0x1p-24f;
}

static inline float uniform_in(uint64_t seed, int64_t image, int stream, float lo, float hi)
{
    return lo + cnnc_augment_uniform(seed, image, stream) * (hi - lo);
}

/* ---- argument checks ------------------------------------------------------- */
static cnnc_status check_batch(const char *fn, int64_t n, int64_t h, int64_t w, int64_t c,
                               const float *x, float *y, int64_t *image_size)
{
    if (n < 0 || h <= 0 || w <= 0 || c <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: bad batch shape n=%lld h=%lld w=%lld c=%lld",
                          fn, (long long)n, (long long)h, (long long)w, (long long)c);
    int64_t total;
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(image_size, 3, h, w, c));
    CNNC_TRY(cnnc_mul_sizes(&total, 2, n, *image_size));
    CNNC_TRY(cnnc_float_bytes(total, &bytes));
    if (n > 0 && (x == NULL || y == NULL))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: x or y is NULL", fn);
    return CNNC_OK;
}

/* y may be x itself where the output has the input's size (same-size
 * transforms copy each source image aside first), but no other overlap. */

/* ---- running over images --------------------------------------------------- */
typedef void (*image_fn)(int64_t i, void *ctx, float *scratch);

static cnnc_status for_each_image(int64_t n, int64_t work_per_image, size_t scratch_bytes,
                                  image_fn fn, void *ctx)
{
    if (n == 0)
        return CNNC_OK;
    int64_t work = work_per_image > INT64_MAX / n ? INT64_MAX : n * work_per_image;
    int threads = cnnc_threads_for(work, AUGMENT_GRAIN);
    if (threads > n)
        threads = (int)n;
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        float *scratch = scratch_bytes ? cnnc_workspace(AUGMENT_SLOT, scratch_bytes) : NULL;
        int ok = scratch_bytes == 0 || scratch != NULL;
        if (!ok) {
#ifdef CNNC_OPENMP
#pragma omp atomic write
#endif
            failed = 1;
        }
#ifdef CNNC_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < n; ++i)
            if (ok)
                fn(i, ctx, scratch);
        cnnc_fpu_restore(fpu);
    }
    (void)threads;
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of augmentation workspace",
                          scratch_bytes);
    return CNNC_OK;
}

/* The source image i: x's own, or a copy in scratch when working in place. */
static inline const float *source_image(const float *x, const float *y, int64_t i, int64_t size,
                                        float *scratch)
{
    const float *src = x + i * size;
    if (x != y)
        return src;
    memcpy(scratch, src, (size_t)size * sizeof(float));
    return scratch;
}

static size_t inplace_scratch(const float *x, const float *y, int64_t image_size)
{
    return x == y ? (size_t)image_size * sizeof(float) : 0;
}

/* ---- flip ------------------------------------------------------------------- */
struct flip_args {
    const float *x;
    float *y;
    int64_t h, w, c, size;
    int horizontal, vertical;
    uint64_t seed;
};

static void flip_image(int64_t i, void *ctx, float *scratch)
{
    const struct flip_args *a = ctx;
    int fh = a->horizontal && cnnc_augment_uniform(a->seed, i, 0) < 0.5f;
    int fv = a->vertical && cnnc_augment_uniform(a->seed, i, 1) < 0.5f;
    float *dst = a->y + i * a->size;
    if (!fh && !fv) {
        if (a->x != a->y)
            memcpy(dst, a->x + i * a->size, (size_t)a->size * sizeof(float));
        return;
    }
    const float *src = source_image(a->x, a->y, i, a->size, scratch);
    int64_t row = a->w * a->c;
    for (int64_t r = 0; r < a->h; ++r) {
        const float *s = src + (fv ? a->h - 1 - r : r) * row;
        float *d = dst + r * row;
        if (!fh) {
            memcpy(d, s, (size_t)row * sizeof(float));
            continue;
        }
        for (int64_t col = 0; col < a->w; ++col)
            for (int64_t k = 0; k < a->c; ++k)
                d[col * a->c + k] = s[(a->w - 1 - col) * a->c + k];
    }
}

cnnc_status cnnc_random_flip(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                             int horizontal, int vertical, uint64_t seed, float *y)
{
    int64_t size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n * size, "x", x, n * size, 1));
    struct flip_args args = {x, y, h, w, c, size, horizontal != 0, vertical != 0, seed};
    return for_each_image(n, size, inplace_scratch(x, y, size), flip_image, &args);
}

/* ---- crop with padding -------------------------------------------------------- */
struct crop_args {
    const float *x;
    float *y;
    int64_t h, w, c, size, out_h, out_w, pad;
    float fill;
    uint64_t seed;
};

static void crop_image(int64_t i, void *ctx, float *scratch)
{
    const struct crop_args *a = ctx;
    const float *src = source_image(a->x, a->y, i, a->size, scratch);
    float *dst = a->y + i * a->out_h * a->out_w * a->c;
    int64_t span_y = a->h + 2 * a->pad - a->out_h + 1, span_x = a->w + 2 * a->pad - a->out_w + 1;
    int64_t top = cnnc_min_i64((int64_t)(cnnc_augment_uniform(a->seed, i, 0) * (float)span_y), span_y - 1);
    int64_t left = cnnc_min_i64((int64_t)(cnnc_augment_uniform(a->seed, i, 1) * (float)span_x), span_x - 1);
    top -= a->pad;  /* now in the coordinates of the unpadded image */
    left -= a->pad;
    int64_t c = a->c;
    /* The output columns whose source column lies inside the image. */
    int64_t u0 = cnnc_min_i64(cnnc_max_i64(-left, 0), a->out_w);
    int64_t u1 = cnnc_max_i64(cnnc_min_i64(a->w - left, a->out_w), u0);
    for (int64_t v = 0; v < a->out_h; ++v) {
        float *d = dst + v * a->out_w * c;
        int64_t r = top + v;
        if (r < 0 || r >= a->h) {
            for (int64_t k = 0; k < a->out_w * c; ++k)
                d[k] = a->fill;
            continue;
        }
        for (int64_t k = 0; k < u0 * c; ++k)
            d[k] = a->fill;
        memcpy(d + u0 * c, src + (r * a->w + left + u0) * c, (size_t)((u1 - u0) * c) * sizeof(float));
        for (int64_t k = u1 * c; k < a->out_w * c; ++k)
            d[k] = a->fill;
    }
}

cnnc_status cnnc_random_crop(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                             int64_t out_h, int64_t out_w, int64_t pad, float fill_value,
                             uint64_t seed, float *y)
{
    int64_t size, out_size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_CHECK_POS(out_h);
    CNNC_CHECK_POS(out_w);
    CNNC_CHECK_NONNEG(pad);
    if (pad > (INT64_MAX / 4) || out_h > h + 2 * pad || out_w > w + 2 * pad)
        return cnnc_error(CNNC_ERR_SHAPE, "%s: a %lldx%lld crop does not fit a %lldx%lld image padded by %lld",
                          __func__, (long long)out_h, (long long)out_w, (long long)h, (long long)w,
                          (long long)pad);
    CNNC_TRY(cnnc_mul_sizes(&out_size, 3, out_h, out_w, c));
    int64_t total;
    CNNC_TRY(cnnc_mul_sizes(&total, 2, n, out_size));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, total, "x", x, n * size, out_size == size));
    struct crop_args args = {x, y, h, w, c, size, out_h, out_w, pad, fill_value, seed};
    return for_each_image(n, out_size, inplace_scratch(x, y, size), crop_image, &args);
}

/* ---- affine warp ---------------------------------------------------------- */
/* Index i along an axis of length len read through the fill mode; -1 means
 * "the fill value". */
static inline int64_t fill_index(int64_t i, int64_t len, cnnc_fill_mode mode)
{
    if (i >= 0 && i < len)
        return i;
    switch (mode) {
    case CNNC_FILL_NEAREST:
        return i < 0 ? 0 : len - 1;
    case CNNC_FILL_REFLECT: {
        int64_t period = 2 * len;
        int64_t k = i % period;
        if (k < 0)
            k += period;
        return k < len ? k : period - 1 - k;
    }
    case CNNC_FILL_WRAP: {
        int64_t k = i % len;
        return k < 0 ? k + len : k;
    }
    default:
        return -1;
    }
}

/* Far-away coordinates are clamped before conversion to integers; this
 * changes nothing for constant and nearest, and keeps reflect and wrap
 * well defined. */
#define COORD_LIMIT 16777216.0f

struct warp_args {
    const float *x;
    float *y;
    int64_t h, w, c, size, out_h, out_w, stride;
    const float *matrices;
    cnnc_interpolation interpolation;
    cnnc_fill_mode fill_mode;
    float fill;
    const struct cnnc_augment_kernels *k;
};

static inline float clamp_coord(float v)
{
    return v < -COORD_LIMIT ? -COORD_LIMIT : (v > COORD_LIMIT ? COORD_LIMIT : v);
}

static void warp_pixel(const struct warp_args *a, const float *src, float xs, float ys, float *out)
{
    int64_t c = a->c;
    xs = clamp_coord(xs);
    ys = clamp_coord(ys);
    if (a->interpolation == CNNC_INTERP_NEAREST) {
        int64_t xi = fill_index((int64_t)floorf(xs + 0.5f), a->w, a->fill_mode);
        int64_t yi = fill_index((int64_t)floorf(ys + 0.5f), a->h, a->fill_mode);
        for (int64_t k = 0; k < c; ++k)
            out[k] = (xi < 0 || yi < 0) ? a->fill : src[(yi * a->w + xi) * c + k];
        return;
    }
    float xf = floorf(xs), yf = floorf(ys);
    float fx = xs - xf, fy = ys - yf;
    int64_t x0 = fill_index((int64_t)xf, a->w, a->fill_mode), x1 = fill_index((int64_t)xf + 1, a->w, a->fill_mode);
    int64_t y0 = fill_index((int64_t)yf, a->h, a->fill_mode), y1 = fill_index((int64_t)yf + 1, a->h, a->fill_mode);
    for (int64_t k = 0; k < c; ++k) {
        float v00 = (x0 < 0 || y0 < 0) ? a->fill : src[(y0 * a->w + x0) * c + k];
        float v01 = (x1 < 0 || y0 < 0) ? a->fill : src[(y0 * a->w + x1) * c + k];
        float v10 = (x0 < 0 || y1 < 0) ? a->fill : src[(y1 * a->w + x0) * c + k];
        float v11 = (x1 < 0 || y1 < 0) ? a->fill : src[(y1 * a->w + x1) * c + k];
        out[k] = cnnc_bilerp(v00, v01, v10, v11, fx, fy);
    }
}

/* Output columns [*u0, *u1) of a row whose bilinear neighbours all lie
 * inside the image: xs in [0, w - 1) and ys in [0, h - 1). The coordinates
 * are monotonic in u, so the set is an interval; it is estimated in double
 * precision and then trimmed with the exact float expressions the kernels
 * evaluate. */
static void interior_span(const struct cnnc_warp_row *r, int64_t h, int64_t out_w, int64_t *u0, int64_t *u1)
{
    double lo = 0, hi = (double)out_w;
    double steps[2] = {r->mx, r->my}, starts[2] = {r->row_x, r->row_y}, lims[2] = {(double)r->w - 1, (double)h - 1};
    for (int d = 0; d < 2 && lo < hi; ++d) {
        if (steps[d] == 0) {
            if (!(starts[d] >= 0 && starts[d] < lims[d]))
                hi = lo;
            continue;
        }
        double a = (0 - starts[d]) / steps[d], b = (lims[d] - starts[d]) / steps[d];
        if (a > b) { double t = a; a = b; b = t; }
        lo = lo > a ? lo : a;
        hi = hi < b + 1 ? hi : b + 1;
    }
    int64_t s = lo < hi ? (int64_t)ceil(lo) : 0, e = lo < hi ? (int64_t)floor(hi) : 0;
    s = cnnc_max_i64(s - 1, 0);
    e = cnnc_min_i64(e + 1, out_w);
#define INSIDE(u) ((float)(u) * r->mx + r->row_x >= 0.0f && (float)(u) * r->mx + r->row_x < (float)(r->w - 1) && \
                   (float)(u) * r->my + r->row_y >= 0.0f && (float)(u) * r->my + r->row_y < (float)(h - 1))
    while (s < e && !INSIDE(s))
        ++s;
    while (e > s && !INSIDE(e - 1))
        --e;
#undef INSIDE
    *u0 = s;
    *u1 = e;
}

static void warp_one(const struct warp_args *a, int64_t i, const float *m, float *scratch)
{
    const float *src = source_image(a->x, a->y, i, a->size, scratch);
    float *dst = a->y + i * a->out_h * a->out_w * a->c;
    int fast = a->c == 1 && a->interpolation == CNNC_INTERP_BILINEAR && a->h * a->w + a->w + 1 < INT32_MAX;
    for (int64_t v = 0; v < a->out_h; ++v) {
        float *d = dst + v * a->out_w * a->c;
        struct cnnc_warp_row r = {src, a->w, m[0], m[3], (float)v * m[1] + m[2], (float)v * m[4] + m[5]};
        int64_t u0 = a->out_w, u1 = a->out_w;
        if (fast)
            interior_span(&r, a->h, a->out_w, &u0, &u1);
        if (u0 >= u1)
            u0 = u1 = a->out_w;
        for (int64_t u = 0; u < u0; ++u)
            warp_pixel(a, src, (float)u * r.mx + r.row_x, (float)u * r.my + r.row_y, d + u * a->c);
        if (u0 < u1)
            a->k->bilinear_row_c1(&r, u0, u1, d);
        for (int64_t u = u1; u < a->out_w; ++u)
            warp_pixel(a, src, (float)u * r.mx + r.row_x, (float)u * r.my + r.row_y, d + u * a->c);
    }
}

static void warp_image(int64_t i, void *ctx, float *scratch)
{
    const struct warp_args *a = ctx;
    warp_one(a, i, a->matrices + i * a->stride, scratch);
}

static cnnc_status warp_checks(const char *fn, cnnc_interpolation interpolation, cnnc_fill_mode fill_mode)
{
    if (interpolation != CNNC_INTERP_BILINEAR && interpolation != CNNC_INTERP_NEAREST)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: unknown interpolation %d", fn, (int)interpolation);
    if ((int)fill_mode < CNNC_FILL_CONSTANT || (int)fill_mode > CNNC_FILL_WRAP)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: unknown fill mode %d", fn, (int)fill_mode);
    return CNNC_OK;
}

cnnc_status cnnc_affine_warp(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                             int64_t out_h, int64_t out_w, const float *matrices,
                             int64_t matrix_stride, cnnc_interpolation interpolation,
                             cnnc_fill_mode fill_mode, float fill_value, float *y)
{
    int64_t size, out_size, total;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_CHECK_POS(out_h);
    CNNC_CHECK_POS(out_w);
    CNNC_TRY(warp_checks(__func__, interpolation, fill_mode));
    if (matrix_stride != 0 && matrix_stride != 6)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: matrix_stride must be 0 or 6, got %lld",
                          __func__, (long long)matrix_stride);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(matrices);
    int64_t count = matrix_stride ? 6 * n : 6;
    for (int64_t k = 0; k < count; ++k)
        if (!isfinite(matrices[k]))
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: matrix entry %lld is not finite", __func__,
                              (long long)k);
    CNNC_TRY(cnnc_mul_sizes(&out_size, 3, out_h, out_w, c));
    CNNC_TRY(cnnc_mul_sizes(&total, 2, n, out_size));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, total, "x", x, n * size, out_size == size));
    struct warp_args args = {x, y, h, w, c, size, out_h, out_w, matrix_stride, matrices,
                             interpolation, fill_mode, fill_value, CNNC_PICK(cnnc_augment_kernels)};
    return for_each_image(n, out_size * 4, inplace_scratch(x, y, size), warp_image, &args);
}

static cnnc_status check_range(const char *fn, const char *what, const float r[2])
{
    if (!isfinite(r[0]) || !isfinite(r[1]) || r[0] > r[1])
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s range [%g, %g] is not a finite interval",
                          fn, what, (double)r[0], (double)r[1]);
    return CNNC_OK;
}

static cnnc_status check_ranges(const char *fn, const cnnc_affine_ranges *r)
{
    CNNC_CHECK_PTR(r);
    CNNC_TRY(check_range(fn, "rotation", r->rotation));
    CNNC_TRY(check_range(fn, "translate_y", r->translate_y));
    CNNC_TRY(check_range(fn, "translate_x", r->translate_x));
    CNNC_TRY(check_range(fn, "zoom_y", r->zoom_y));
    CNNC_TRY(check_range(fn, "zoom_x", r->zoom_x));
    if (r->zoom_y[0] <= -1.0f || (!r->zoom_keep_aspect && r->zoom_x[0] <= -1.0f))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: zoom ranges must stay above -1 (a scale > 0)", fn);
    return CNNC_OK;
}

static void affine_matrix(int64_t h, int64_t w, const cnnc_affine_ranges *r, uint64_t seed, int64_t i, float *m)
{
    double theta = uniform_in(seed, i, 0, r->rotation[0], r->rotation[1]);
    double ty = uniform_in(seed, i, 1, r->translate_y[0], r->translate_y[1]) * (double)h;
    double tx = uniform_in(seed, i, 2, r->translate_x[0], r->translate_x[1]) * (double)w;
    double zy = 1.0 + uniform_in(seed, i, 3, r->zoom_y[0], r->zoom_y[1]);
    double zx = r->zoom_keep_aspect ? zy : 1.0 + uniform_in(seed, i, 4, r->zoom_x[0], r->zoom_x[1]);
    double cs = cos(theta), sn = sin(theta);
    double cx = (double)(w - 1) / 2, cy = (double)(h - 1) / 2;
    /* input = centre + Z R^-1 (output - centre - t) */
    double a00 = zx * cs, a01 = -zx * sn, a10 = zy * sn, a11 = zy * cs;
    m[0] = (float)a00;
    m[1] = (float)a01;
    m[2] = (float)(cx - a00 * (cx + tx) - a01 * (cy + ty));
    m[3] = (float)a10;
    m[4] = (float)a11;
    m[5] = (float)(cy - a10 * (cx + tx) - a11 * (cy + ty));
}

cnnc_status cnnc_random_affine_matrices(int64_t n, int64_t h, int64_t w, const cnnc_affine_ranges *ranges,
                                        uint64_t seed, float *matrices)
{
    CNNC_CHECK_NONNEG(n);
    CNNC_CHECK_POS(h);
    CNNC_CHECK_POS(w);
    CNNC_TRY(check_ranges(__func__, ranges));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(matrices);
    for (int64_t i = 0; i < n; ++i)
        affine_matrix(h, w, ranges, seed, i, matrices + 6 * i);
    return CNNC_OK;
}

struct random_affine_args {
    struct warp_args warp;
    const cnnc_affine_ranges *ranges;
    uint64_t seed;
};

static void random_affine_image(int64_t i, void *ctx, float *scratch)
{
    const struct random_affine_args *a = ctx;
    float m[6];
    affine_matrix(a->warp.h, a->warp.w, a->ranges, a->seed, i, m);
    warp_one(&a->warp, i, m, scratch);
}

cnnc_status cnnc_random_affine(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                               const cnnc_affine_ranges *ranges, cnnc_interpolation interpolation,
                               cnnc_fill_mode fill_mode, float fill_value, uint64_t seed, float *y)
{
    int64_t size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_TRY(check_ranges(__func__, ranges));
    CNNC_TRY(warp_checks(__func__, interpolation, fill_mode));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n * size, "x", x, n * size, 1));
    struct random_affine_args args = {
        {x, y, h, w, c, size, h, w, 6, NULL, interpolation, fill_mode, fill_value, CNNC_PICK(cnnc_augment_kernels)},
        ranges, seed};
    return for_each_image(n, size * 4, inplace_scratch(x, y, size), random_affine_image, &args);
}

/* ---- brightness and contrast ----------------------------------------------------- */
struct tone_args {
    const float *x;
    float *y;
    int64_t hw, c, size;
    float lo, hi, clip_lo, clip_hi;
    uint64_t seed;
    const struct cnnc_augment_kernels *k;
};

static cnnc_status check_tone(const char *fn, float lo, float hi, float clip_lo, float clip_hi)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: range [%g, %g] is not a finite interval", fn,
                          (double)lo, (double)hi);
    if (isnan(clip_lo) || isnan(clip_hi) || clip_lo > clip_hi)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: clip range [%g, %g] is empty", fn,
                          (double)clip_lo, (double)clip_hi);
    return CNNC_OK;
}

static void brightness_image(int64_t i, void *ctx, float *scratch)
{
    const struct tone_args *a = ctx;
    float delta = uniform_in(a->seed, i, 0, a->lo, a->hi);
    a->k->scale_clip(a->size, a->x + i * a->size, 1.0f, delta, a->clip_lo, a->clip_hi, a->y + i * a->size);
}

cnnc_status cnnc_random_brightness(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                   float lo, float hi, float clip_lo, float clip_hi, uint64_t seed, float *y)
{
    int64_t size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_TRY(check_tone(__func__, lo, hi, clip_lo, clip_hi));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n * size, "x", x, n * size, 1));
    struct tone_args args = {x, y, h * w, c, size, lo, hi, clip_lo, clip_hi, seed, CNNC_PICK(cnnc_augment_kernels)};
    return for_each_image(n, size, 0, brightness_image, &args);
}

static void contrast_image(int64_t i, void *ctx, float *scratch)
{
    const struct tone_args *a = ctx;
    const float *src = a->x + i * a->size;
    float *dst = a->y + i * a->size;
    float f = uniform_in(a->seed, i, 0, a->lo, a->hi);
    /* Means in double so that large images do not lose precision; scratch
     * holds one per channel. */
    double *sum = (double *)scratch;
    for (int64_t k = 0; k < a->c; ++k)
        sum[k] = 0;
    for (int64_t p = 0; p < a->hw; ++p)
        for (int64_t k = 0; k < a->c; ++k)
            sum[k] += src[p * a->c + k];
    if (a->c == 1) {
        float mean = (float)(sum[0] / (double)a->hw);
        a->k->scale_clip(a->hw, src, f, mean - f * mean, a->clip_lo, a->clip_hi, dst);
        return;
    }
    float *shift = (float *)(sum + a->c);
    for (int64_t k = 0; k < a->c; ++k) {
        float mean = (float)(sum[k] / (double)a->hw);
        shift[k] = mean - f * mean;
    }
    for (int64_t p = 0; p < a->hw; ++p)
        for (int64_t k = 0; k < a->c; ++k) {
            float v = f * src[p * a->c + k] + shift[k];
            v = v < a->clip_lo ? a->clip_lo : v;
            dst[p * a->c + k] = v > a->clip_hi ? a->clip_hi : v;
        }
}

cnnc_status cnnc_random_contrast(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                 float lo, float hi, float clip_lo, float clip_hi, uint64_t seed, float *y)
{
    int64_t size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    CNNC_TRY(check_tone(__func__, lo, hi, clip_lo, clip_hi));
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n * size, "x", x, n * size, 1));
    struct tone_args args = {x, y, h * w, c, size, lo, hi, clip_lo, clip_hi, seed, CNNC_PICK(cnnc_augment_kernels)};
    return for_each_image(n, size * 2, (size_t)c * (sizeof(double) + sizeof(float)), contrast_image, &args);
}

/* ---- random erasing -------------------------------------------------------------- */
struct erase_args {
    const float *x;
    float *y;
    int64_t h, w, c, size;
    float probability, area_lo, area_hi, log_ratio_lo, log_ratio_hi, value;
    uint64_t seed;
};

static void erase_image(int64_t i, void *ctx, float *scratch)
{
    const struct erase_args *a = ctx;
    float *dst = a->y + i * a->size;
    if (a->x != a->y)
        memcpy(dst, a->x + i * a->size, (size_t)a->size * sizeof(float));
    if (!(cnnc_augment_uniform(a->seed, i, 0) < a->probability))
        return;
    double area = (double)a->h * (double)a->w;
    for (int attempt = 0; attempt < 10; ++attempt) {
        int s = 1 + 4 * attempt;
        double target = area * uniform_in(a->seed, i, s, a->area_lo, a->area_hi);
        double ratio = exp(uniform_in(a->seed, i, s + 1, a->log_ratio_lo, a->log_ratio_hi));
        int64_t eh = (int64_t)llround(sqrt(target * ratio));
        int64_t ew = (int64_t)llround(sqrt(target / ratio));
        if (eh < 1 || ew < 1 || eh > a->h || ew > a->w)
            continue;
        int64_t top = cnnc_min_i64((int64_t)(cnnc_augment_uniform(a->seed, i, s + 2) * (float)(a->h - eh + 1)), a->h - eh);
        int64_t left = cnnc_min_i64((int64_t)(cnnc_augment_uniform(a->seed, i, s + 3) * (float)(a->w - ew + 1)), a->w - ew);
        for (int64_t r = top; r < top + eh; ++r)
            for (int64_t k = (r * a->w + left) * a->c; k < (r * a->w + left + ew) * a->c; ++k)
                dst[k] = a->value;
        return;
    }
}

cnnc_status cnnc_random_erasing(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                float probability, float area_lo, float area_hi, float ratio_lo,
                                float ratio_hi, float value, uint64_t seed, float *y)
{
    int64_t size;
    CNNC_TRY(check_batch(__func__, n, h, w, c, x, y, &size));
    if (!(probability >= 0 && probability <= 1))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: probability %g is not in [0, 1]", __func__,
                          (double)probability);
    if (!(area_lo >= 0 && area_lo <= area_hi && area_hi <= 1))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: area range [%g, %g] must lie in [0, 1]",
                          __func__, (double)area_lo, (double)area_hi);
    if (!(ratio_lo > 0 && ratio_lo <= ratio_hi && isfinite(ratio_hi)))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: ratio range [%g, %g] must be positive",
                          __func__, (double)ratio_lo, (double)ratio_hi);
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n * size, "x", x, n * size, 1));
    struct erase_args args = {x, y, h, w, c, size, probability, area_lo, area_hi,
                              logf(ratio_lo), logf(ratio_hi), value, seed};
    return for_each_image(n, size, 0, erase_image, &args);
}
