/* setenv, to force the convolution algorithms. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

/* The input pixel (ih, iw) that tap (kh, kw) of output pixel (i, j) reads;
 * 0 when it falls in the padding. */
static int tap_input(const cnnc_conv2d_desc *d, int64_t i, int64_t j, int64_t kh, int64_t kw, int64_t *ih,
                     int64_t *iw)
{
    *ih = i * d->stride_h + kh * d->dilation_h - d->pad_top;
    *iw = j * d->stride_w + kw * d->dilation_w - d->pad_left;
    return *ih >= 0 && *ih < d->in_h && *iw >= 0 && *iw < d->in_w;
}

/* Naive direct loops in double, the definition of the convolution. */
static void naive_forward(const cnnc_conv2d_desc *d, int64_t oh, int64_t ow, const float *x, const float *w,
                          const float *b, double *y)
{
    int64_t cin_g = d->in_channels / d->groups, cout_g = d->out_channels / d->groups;
    for (int64_t n = 0; n < d->batch; ++n)
        for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j)
                for (int64_t o = 0; o < d->out_channels; ++o) {
                    double s = b ? b[o] : 0.0;
                    int64_t g = o / cout_g;
                    for (int64_t kh = 0; kh < d->kernel_h; ++kh)
                        for (int64_t kw = 0; kw < d->kernel_w; ++kw) {
                            int64_t ih, iw;
                            if (!tap_input(d, i, j, kh, kw, &ih, &iw))
                                continue;
                            for (int64_t c = 0; c < cin_g; ++c)
                                s += (double)x[((n * d->in_h + ih) * d->in_w + iw) * d->in_channels + g * cin_g + c] *
                                     w[((kh * d->kernel_w + kw) * cin_g + c) * d->out_channels + o];
                        }
                    y[((n * oh + i) * ow + j) * d->out_channels + o] = s;
                }
}

/* dw[kh][kw][c][o] = sum over output pixels of x at the tap times dy, in
 * double. */
static void naive_weights(const cnnc_conv2d_desc *d, int64_t oh, int64_t ow, const float *x, const float *dy,
                          double *dw)
{
    int64_t cin_g = d->in_channels / d->groups, cout_g = d->out_channels / d->groups;
    int64_t nw = d->kernel_h * d->kernel_w * cin_g * d->out_channels;
    for (int64_t i = 0; i < nw; ++i)
        dw[i] = 0.0;
    for (int64_t n = 0; n < d->batch; ++n)
        for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j)
                for (int64_t kh = 0; kh < d->kernel_h; ++kh)
                    for (int64_t kw = 0; kw < d->kernel_w; ++kw) {
                        int64_t ih, iw;
                        if (!tap_input(d, i, j, kh, kw, &ih, &iw))
                            continue;
                        for (int64_t o = 0; o < d->out_channels; ++o) {
                            double g = dy[((n * oh + i) * ow + j) * d->out_channels + o];
                            for (int64_t c = 0; c < cin_g; ++c)
                                dw[((kh * d->kernel_w + kw) * cin_g + c) * d->out_channels + o] +=
                                    g * x[((n * d->in_h + ih) * d->in_w + iw) * d->in_channels + (o / cout_g) * cin_g + c];
                        }
                    }
}

static void fill(float *a, int64_t n, unsigned *seed)
{
    for (int64_t i = 0; i < n; ++i)
        a[i] = check_uniform(seed);
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; ++i)
        s += (double)a[i] * b[i];
    return s;
}

/* Forward against the loops; backward passes through the adjoint identities
 * <conv(x, w), dy> = <x, dx(dy)> = <w, dw(x, dy)> and db = sum(dy). */
static void check_case(cnnc_conv2d_desc d)
{
    int64_t oh, ow;
    CHECK_OK(cnnc_conv2d_output_size(&d, &oh, &ow));
    int64_t nx = d.batch * d.in_h * d.in_w * d.in_channels, ny = d.batch * oh * ow * d.out_channels;
    int64_t nw = d.kernel_h * d.kernel_w * (d.in_channels / d.groups) * d.out_channels;
    float *x = cnnc_malloc(nx * 4), *w = cnnc_malloc(nw * 4), *b = cnnc_malloc(d.out_channels * 4);
    float *y = cnnc_malloc(ny * 4), *dy = cnnc_malloc(ny * 4), *dx = cnnc_malloc(nx * 4);
    float *dw = cnnc_malloc(nw * 4), *db = cnnc_malloc(d.out_channels * 4), *yt = cnnc_malloc(nx * 4);
    double *ref = malloc(ny * sizeof(double));
    unsigned seed = 7;
    fill(x, nx, &seed);
    fill(w, nw, &seed);
    fill(b, d.out_channels, &seed);
    fill(dy, ny, &seed);
    CHECK_OK(cnnc_conv2d_forward(&d, x, w, b, y));
    naive_forward(&d, oh, ow, x, w, b, ref);
    /* The scale of the rounding errors: the largest of the same sums over
     * |x| |w| (+ |b|), and for dw over |x| |dy|. Winograd F(4x4, 3x3) errs
     * by up to about 30 float32 epsilons of it (50 for dw): 3.6e-4 at 64
     * channels, past the 1e-4 that the other paths meet. */
    float *ax = cnnc_malloc(nx * 4), *aw = cnnc_malloc(nw * 4), *ab = cnnc_malloc(d.out_channels * 4);
    double *scale = malloc(ny * sizeof(double));
    for (int64_t i = 0; i < nx; ++i)
        ax[i] = fabsf(x[i]);
    for (int64_t i = 0; i < nw; ++i)
        aw[i] = fabsf(w[i]);
    for (int64_t i = 0; i < d.out_channels; ++i)
        ab[i] = fabsf(b[i]);
    naive_forward(&d, oh, ow, ax, aw, ab, scale);
    double largest = 0;
    for (int64_t i = 0; i < ny; ++i)
        largest = scale[i] > largest ? scale[i] : largest;
    for (int64_t i = 0; i < ny; ++i)
        CHECK_NEAR(y[i], ref[i], 1e-4 + 1e-5 * largest / (1.0 + fabs(ref[i])));
    free(scale);
    CHECK_OK(cnnc_conv2d_backward_data(&d, w, dy, dx));
    CHECK_OK(cnnc_conv2d_backward_weights(&d, x, dy, dw, db));
    /* Element by element too, and the same without the bias gradient (the
     * tiled path sums db in the same pass as dw). */
    double *rdw = malloc(nw * sizeof(double));
    float *dw2 = cnnc_malloc(nw * 4);
    naive_weights(&d, oh, ow, x, dy, rdw);
    float *ady = cnnc_malloc(ny * 4);
    double *dw_scale = malloc(nw * sizeof(double)), dw_largest = 0;
    for (int64_t i = 0; i < ny; ++i)
        ady[i] = fabsf(dy[i]);
    naive_weights(&d, oh, ow, ax, ady, dw_scale);
    for (int64_t i = 0; i < nw; ++i)
        dw_largest = dw_scale[i] > dw_largest ? dw_scale[i] : dw_largest;
    cnnc_free(ax); cnnc_free(aw); cnnc_free(ab); cnnc_free(ady);
    free(dw_scale);
    CHECK_OK(cnnc_conv2d_backward_weights(&d, x, dy, dw2, NULL));
    for (int64_t i = 0; i < nw; ++i) {
        CHECK_NEAR(dw[i], rdw[i], 1e-4 + 1e-5 * dw_largest / (1.0 + fabs(rdw[i])));
        CHECK_NEAR(dw2[i], dw[i], 1e-6);
    }
    free(rdw);
    cnnc_free(dw2);
    double ydy = 0, ysum = 0;
    CHECK_OK(cnnc_conv2d_forward(&d, x, w, NULL, y));
    ydy = dot(y, dy, ny);
    CHECK_NEAR(dot(x, dx, nx), ydy, 1e-4);
    CHECK_NEAR(dot(w, dw, nw), ydy, 1e-4);
    for (int64_t o = 0; o < d.out_channels; ++o) {
        double s = 0;
        for (int64_t p = 0; p < ny / d.out_channels; ++p)
            s += dy[p * d.out_channels + o];
        CHECK_NEAR(db[o], s, 1e-4);
        ysum += s;
    }
    /* The transposed convolution is the same pair of maps swapped. */
    CHECK_OK(cnnc_conv2d_transpose_forward(&d, dy, w, NULL, yt));
    for (int64_t i = 0; i < nx; ++i)
        CHECK_NEAR(yt[i], dx[i], 1e-5);
    CHECK_OK(cnnc_conv2d_transpose_backward_data(&d, w, x, dy));
    for (int64_t i = 0; i < ny; ++i)
        CHECK_NEAR(dy[i], y[i], 1e-5);
    (void)ysum;
    cnnc_free(x); cnnc_free(w); cnnc_free(b); cnnc_free(y); cnnc_free(dy); cnnc_free(dx);
    cnnc_free(dw); cnnc_free(db); cnnc_free(yt);
    free(ref);
}

static void test_cases(int threads)
{
    CHECK_OK(cnnc_set_num_threads(threads));
    /* batch, h, w, cin, cout, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, groups */
    cnnc_conv2d_desc cases[] = {
        {2, 9, 8, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 10, 9, 4, 6, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 2},
        {1, 11, 7, 4, 6, 4, 2, 2, 3, 1, 2, 2, 1, 0, 3, 1},
        {2, 6, 6, 8, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2},
        {2, 9, 9, 4, 8, 3, 3, 2, 1, 2, 1, 2, 2, 1, 1, 4},
        {2, 12, 12, 1, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {2, 5, 5, 2, 3, 3, 3, 1, 1, 1, 1, 4, 3, 3, 4, 1},
        /* rows wider than the micro-kernel: the padded-band paths */
        {2, 9, 33, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 8, 40, 6, 8, 3, 2, 1, 2, 2, 1, 0, 2, 3, 1, 2},
        {1, 6, 64, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        /* depthwise: pixel tiles + tail, channel tail, strides, multiplier */
        {2, 9, 21, 37, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 37},
        {1, 8, 19, 20, 20, 5, 5, 2, 2, 1, 1, 2, 2, 1, 3, 20},
        {1, 7, 19, 5, 15, 5, 3, 2, 1, 1, 2, 2, 1, 0, 3, 5},
        /* depthwise with fewer output rows than split evenly: on 2 threads
         * the forward pass splits the channels too (a 7x7 output with a
         * channel tail, a multiplier, a single row) */
        {1, 14, 14, 1300, 1300, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 1300},
        {1, 7, 9, 300, 600, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 300},
        {1, 3, 40, 800, 800, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 800},
        /* few input channels: the tile kernels (all taps of a forward tile
         * at once, dW tiles over bands), odd widths, Cout off the vector
         * width, one or two weight panels */
        {3, 12, 30, 1, 32, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {1, 7, 29, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 9, 31, 3, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 8, 37, 2, 33, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1},
        {2, 11, 45, 3, 20, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1},
        {2, 10, 40, 2, 17, 3, 3, 2, 1, 2, 2, 2, 2, 2, 2, 1},
        {2, 9, 33, 4, 34, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 2},
        {1, 6, 50, 3, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {2, 8, 20, 6, 7, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 1},
        {1, 3, 100, 3, 40, 3, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1},
        /* narrow rows: packed segments (many channels) or tiles (few) */
        {2, 5, 9, 30, 20, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {2, 7, 8, 1, 6, 3, 3, 2, 1, 1, 1, 2, 1, 0, 2, 1},
        /* dW too tall for the register tiles: im2col + GEMM */
        {1, 6, 9, 70, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        /* enough work for two threads */
        {4, 34, 66, 3, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        /* strided backward-data by phases (rows of whole segments, enough
         * channels), odd sizes, stride 3, unequal strides, groups; 1x1 / 2
         * forward reading x in place, with and without a partial segment */
        {2, 8, 28, 40, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
        {1, 9, 42, 32, 16, 5, 4, 3, 3, 1, 1, 2, 1, 1, 2, 1},
        {2, 7, 29, 64, 32, 3, 2, 2, 1, 1, 1, 0, 2, 1, 0, 2},
        {2, 8, 56, 36, 20, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},
        {1, 7, 35, 36, 20, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},
        /* 7-pixel rows of a long kernel: the packed sweep on AVX2; a kernel
         * smaller than the stride: phases without taps */
        {2, 14, 13, 40, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 1},
        {2, 11, 10, 5, 7, 2, 1, 3, 2, 1, 1, 1, 0, 0, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        check_case(cases[i]);
}

static void test_errors(void)
{
    cnnc_conv2d_desc ok = {1, 8, 8, 4, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}, d;
    float buf[4096];
    int64_t oh, ow;
    CHECK_OK(cnnc_conv2d_output_size(&ok, &oh, &ow));
    CHECK(oh == 6 && ow == 6);
    CHECK_STATUS(cnnc_conv2d_output_size(NULL, &oh, &ow), CNNC_ERR_INVALID_ARGUMENT);
    d = ok; d.stride_w = 0;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "stride_w") != NULL);
    d = ok; d.dilation_h = -1;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_INVALID_ARGUMENT);
    d = ok; d.pad_left = -1;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_INVALID_ARGUMENT);
    d = ok; d.groups = 3;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "groups") != NULL);
    d = ok; d.kernel_h = 9;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_SHAPE);
    d = ok; d.kernel_h = 5; d.dilation_h = 2;
    CHECK_STATUS(cnnc_conv2d_backward_data(&d, buf, buf, buf), CNNC_ERR_SHAPE);
    CHECK_STATUS(cnnc_conv2d_forward(&ok, NULL, buf, NULL, buf), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_conv2d_backward_weights(&ok, buf, buf, NULL, NULL), CNNC_ERR_INVALID_ARGUMENT);
    d = ok; d.batch = INT64_C(1) << 40; d.in_h = INT64_C(1) << 20; d.in_w = INT64_C(1) << 20;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_OVERFLOW);
    d = ok; d.kernel_w = INT64_C(1) << 62; d.dilation_w = 8;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_OVERFLOW);
    d = ok; d.pad_top = INT64_MAX;
    CHECK_STATUS(cnnc_conv2d_forward(&d, buf, buf, NULL, buf), CNNC_ERR_OVERFLOW);
    int64_t before, after;
    CHECK_OK(cnnc_conv_same_padding(10, 4, 2, 1, &before, &after));
    CHECK(before == 1 && after == 1);
    CHECK_OK(cnnc_conv_same_padding(9, 4, 2, 1, &before, &after));
    CHECK(before == 1 && after == 2);
    CHECK_STATUS(cnnc_conv_same_padding(9, 4, 0, 1, &before, &after), CNNC_ERR_INVALID_ARGUMENT);
}

/* Every case with the algorithm that the environment variable `name`
 * forces on wherever it applies ("1"), then off ("0"). */
static void test_cases_forced(const char *name)
{
    setenv(name, "1", 1);
    test_cases(1);
    test_cases(2);
    setenv(name, "0", 1);
    test_cases(2);
}

int main(void)
{
    /* Teams of the sizes asked for, even on a machine with fewer CPUs. */
    cnnc_set_oversubscription(1);
    test_cases(1);
    test_cases(2);
    /* Every 3x3 stride-1 case again with each Winograd variant forced on,
     * then off (the default above picks per shape). */
    setenv("CNNC_WINOGRAD", "2", 1);
    test_cases(1);
    test_cases(2);
    setenv("CNNC_WINOGRAD", "4", 1);
    test_cases(1);
    test_cases(2);
    setenv("CNNC_WINOGRAD", "0", 1);
    test_cases(2);
    unsetenv("CNNC_WINOGRAD");
    /* Strided backward-data by phases wherever they apply, then never. */
    test_cases_forced("CNNC_CONV_PHASES");
    /* The implicit GEMM's packed sweep wherever it runs (with the phases,
     * whose outputs are strided), then never. */
    setenv("CNNC_CONV_PHASES", "1", 1);
    test_cases_forced("CNNC_CONV_PACKED");
    unsetenv("CNNC_CONV_PACKED");
    unsetenv("CNNC_CONV_PHASES");
    /* The indirect tiles wherever the ISA has them (short kernel rows
     * too), then never. */
    test_cases_forced("CNNC_CONV_INDIRECT");
    unsetenv("CNNC_CONV_INDIRECT");
    /* Deterministic mode: the gradient sums in parts fixed by the shape,
     * several per thread. */
    cnnc_set_deterministic(1);
    test_cases(1);
    test_cases(3);
    setenv("CNNC_WINOGRAD", "4", 1);
    test_cases(3);
    unsetenv("CNNC_WINOGRAD");
    cnnc_set_deterministic(0);
    test_errors();
    cnnc_release_workspace();
    return check_finish("test_conv");
}
