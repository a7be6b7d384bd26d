/* Pooling, batch normalization, elementwise and dropout through the C API,
 * against naive loops written here. */
#include <string.h>
#include "check.h"

#define N 2
#define H 7
#define W 6
#define C 19

static float x[N * H * W * C], dx[N * H * W * C], y[N * H * W * C], dy[N * H * W * C];

static void fill(float *a, int count, unsigned seed)
{
    for (int i = 0; i < count; ++i)
        a[i] = check_uniform(&seed);
}

static void test_pool(void)
{
    /* 3x3 windows, stride 2, same padding: pads (1, 1) rows, (0, 1) columns. */
    cnnc_pool2d_params p = {N, H, W, C, 3, 3, 2, 2, 0, 0, 0, 0};
    CHECK_OK(cnnc_pool_same_padding(H, 3, 2, &p.pad_top, &p.pad_bottom));
    CHECK_OK(cnnc_pool_same_padding(W, 3, 2, &p.pad_left, &p.pad_right));
    CHECK(p.pad_top == 1 && p.pad_bottom == 1 && p.pad_left == 0 && p.pad_right == 1);
    int64_t oh, ow;
    CHECK_OK(cnnc_pool2d_output_size(&p, &oh, &ow));
    CHECK(oh == 4 && ow == 3);
    fill(x, N * H * W * C, 3);
    fill(dy, (int)(N * oh * ow * C), 4);
    static float ref[N * H * W * C];
    memset(ref, 0, sizeof ref);
    CHECK_OK(cnnc_max_pool2d_forward(&p, x, y));
    int errors = 0;
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < oh; ++i)
            for (int j = 0; j < ow; ++j)
                for (int c = 0; c < C; ++c) {
                    float best = -INFINITY;
                    int at = -1;
                    for (int a = 0; a < 3; ++a)
                        for (int b = 0; b < 3; ++b) {
                            int r = i * 2 - 1 + a, q = j * 2 + b;
                            if (r < 0 || r >= H || q < 0 || q >= W)
                                continue;
                            int idx = ((n * H + r) * W + q) * C + c;
                            if (x[idx] > best) {
                                best = x[idx];
                                at = idx;
                            }
                        }
                    int o = ((n * (int)oh + i) * (int)ow + j) * C + c;
                    errors += y[o] != best;
                    ref[at] += dy[o];
                }
    CHECK(errors == 0);
    CHECK_OK(cnnc_max_pool2d_backward(&p, x, dy, dx));
    for (int i = 0; i < N * H * W * C; ++i)
        CHECK_NEAR(dx[i], ref[i], 1e-6);

    /* Average of a constant is the constant, whatever the clipping. */
    for (int i = 0; i < N * H * W * C; ++i)
        x[i] = 2.5f;
    CHECK_OK(cnnc_avg_pool2d_forward(&p, x, y));
    for (int i = 0; i < N * oh * ow * C; ++i)
        CHECK(fabsf(y[i] - 2.5f) < 1e-6f);

    cnnc_pool2d_params bad = p;
    bad.stride_w = 0;
    CHECK_STATUS(cnnc_max_pool2d_forward(&bad, x, y), CNNC_ERR_INVALID_ARGUMENT);
    bad = p;
    bad.pool_h = 10;
    bad.pad_top = bad.pad_bottom = 0;
    CHECK_STATUS(cnnc_max_pool2d_forward(&bad, x, y), CNNC_ERR_SHAPE);
    CHECK(strstr(cnnc_last_error(), "larger") != NULL);
    bad = p;
    bad.pad_left = 3;
    CHECK_STATUS(cnnc_avg_pool2d_backward(&bad, dy, dx), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_max_pool2d_forward(NULL, x, y), CNNC_ERR_INVALID_ARGUMENT);
}

static void test_global_pool(void)
{
    fill(x, N * H * W * C, 5);
    float g[N * C], gmax[N * C];
    CHECK_OK(cnnc_global_avg_pool2d_forward(N, H, W, C, x, g));
    CHECK_OK(cnnc_global_max_pool2d_forward(N, H, W, C, x, gmax));
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
            double s = 0;
            float m = -INFINITY;
            for (int i = 0; i < H * W; ++i) {
                s += x[(n * H * W + i) * C + c];
                m = fmaxf(m, x[(n * H * W + i) * C + c]);
            }
            CHECK_NEAR(g[n * C + c], s / (H * W), 1e-6);
            CHECK(gmax[n * C + c] == m);
        }
    CHECK_STATUS(cnnc_global_avg_pool2d_forward(N, 0, W, C, x, g), CNNC_ERR_INVALID_ARGUMENT);
}

static void test_batch_norm(void)
{
    enum { ROWS = N * H * W };
    fill(x, ROWS * C, 6);
    fill(dy, ROWS * C, 7);
    float gamma[C], beta[C], mm[C], mv[C], mean[C], istd[C], dgamma[C], dbeta[C];
    for (int c = 0; c < C; ++c) {
        gamma[c] = 1.0f + 0.1f * c;
        beta[c] = 0.5f - 0.05f * c;
        mm[c] = 0.0f;
        mv[c] = 1.0f;
    }
    CHECK_OK(cnnc_batch_norm_train_forward(ROWS, C, x, gamma, beta, 0.9f, 1e-3f, 0, mm, mv, y, mean, istd));
    for (int c = 0; c < C; ++c) {
        double s = 0, s2 = 0;
        for (int i = 0; i < ROWS; ++i)
            s += x[i * C + c];
        double mu = s / ROWS;
        for (int i = 0; i < ROWS; ++i)
            s2 += (x[i * C + c] - mu) * (x[i * C + c] - mu);
        double var = s2 / ROWS;
        CHECK_NEAR(mean[c], mu, 1e-6);
        CHECK_NEAR(istd[c], 1.0 / sqrt(var + 1e-3), 1e-5);
        CHECK_NEAR(mm[c], 0.1 * mu, 1e-6);
        CHECK_NEAR(mv[c], 0.9 + 0.1 * var, 1e-6);
        for (int i = 0; i < ROWS; ++i)
            CHECK_NEAR(y[i * C + c], (x[i * C + c] - mu) / sqrt(var + 1e-3) * gamma[c] + beta[c], 1e-5);
    }
    CHECK_OK(cnnc_batch_norm_backward(ROWS, C, x, dy, NULL, gamma, mean, istd, dx, dgamma, dbeta));
    for (int c = 0; c < C; ++c) {
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < ROWS; ++i) {
            sdy += dy[i * C + c];
            sdyx += dy[i * C + c] * (x[i * C + c] - mean[c]) * istd[c];
        }
        CHECK_NEAR(dbeta[c], sdy, 1e-5);
        CHECK_NEAR(dgamma[c], sdyx, 1e-5);
        for (int i = 0; i < ROWS; i += 7) {
            double xhat = (x[i * C + c] - mean[c]) * istd[c];
            CHECK_NEAR(dx[i * C + c], gamma[c] * istd[c] * (dy[i * C + c] - sdy / ROWS - xhat * sdyx / ROWS), 1e-4);
        }
    }
    /* The fused ReLU has the bits of the separate ReLU kernel, forward and
     * backward, also where the affine gives -0 (scale 0, shift -0: kept as
     * -0) or NaN (kept as NaN). */
    static float yr[ROWS * C], masked[ROWS * C], dx2[ROWS * C];
    float dgamma2[C], dbeta2[C];
    gamma[0] = 0.0f;
    beta[0] = -0.0f;
    gamma[1] = NAN;
    CHECK_OK(cnnc_batch_norm_train_forward(ROWS, C, x, gamma, beta, 0.9f, 1e-3f, 0, mm, mv, y, mean, istd));
    CHECK_OK(cnnc_relu_forward(ROWS * C, y, y));
    CHECK_OK(cnnc_batch_norm_train_forward(ROWS, C, x, gamma, beta, 0.9f, 1e-3f, CNNC_BN_RELU, mm, mv, yr, mean,
                                           istd));
    CHECK(memcmp(y, yr, sizeof yr) == 0);
    int negative_zeros = 0;
    for (int i = 0; i < ROWS; ++i)
        negative_zeros += signbit(yr[i * C]) != 0;
    CHECK(negative_zeros > 0);
    gamma[1] = 0.7f;
    CHECK_OK(cnnc_batch_norm_train_forward(ROWS, C, x, gamma, beta, 0.9f, 1e-3f, CNNC_BN_RELU, mm, mv, yr, mean,
                                           istd));
    CHECK_OK(cnnc_relu_backward(ROWS * C, yr, dy, masked));
    CHECK_OK(cnnc_batch_norm_backward(ROWS, C, x, masked, NULL, gamma, mean, istd, dx, dgamma, dbeta));
    CHECK_OK(cnnc_batch_norm_backward(ROWS, C, x, dy, yr, gamma, mean, istd, dx2, dgamma2, dbeta2));
    CHECK(memcmp(dx, dx2, sizeof dx2) == 0);
    CHECK(memcmp(dgamma, dgamma2, sizeof dgamma2) == 0);
    CHECK(memcmp(dbeta, dbeta2, sizeof dbeta2) == 0);
    CHECK_STATUS(cnnc_batch_norm_train_forward(ROWS, C, x, gamma, beta, 0.9f, 0.0f, 0, mm, mv, y, mean, istd),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_batch_norm_inference(0, C, x, gamma, beta, mm, mv, 1e-3f, 0, y), CNNC_ERR_INVALID_ARGUMENT);
}

static void test_dropout_and_elementwise(void)
{
    enum { COUNT = N * H * W * C };
    static uint8_t mask1[COUNT], mask2[COUNT];
    fill(x, COUNT, 8);
    CHECK_OK(cnnc_set_num_threads(1));
    CHECK_OK(cnnc_dropout_forward(COUNT, 0.25f, 99, 5, x, y, mask1));
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_OK(cnnc_dropout_forward(COUNT, 0.25f, 99, 5, x, dx, mask2));
    CHECK(memcmp(mask1, mask2, COUNT) == 0);
    int kept = 0;
    for (int i = 0; i < COUNT; ++i) {
        kept += mask1[i];
        CHECK(y[i] == x[i] * (mask1[i] ? 1.0f / 0.75f : 0.0f));
    }
    CHECK(fabs(kept / (double)COUNT - 0.75) < 0.03);
    CHECK_STATUS(cnnc_dropout_forward(COUNT, 1.0f, 99, 0, x, y, mask1), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_dropout_backward(COUNT, -0.5f, x, mask1, y), CNNC_ERR_INVALID_ARGUMENT);

    /* add + ReLU in one pass: the bits of the add, then the ReLU kernel. */
    fill(dy, COUNT, 9);
    const float special_a[6] = {-0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e-45f};
    const float special_b[6] = {-0.0f, 0.0f, 1.0f, 1.0f, 5.0f, -1e-45f};
    memcpy(x, special_a, sizeof special_a);
    memcpy(dy, special_b, sizeof special_b);
    CHECK_OK(cnnc_add_forward(COUNT, x, dy, y));
    CHECK_OK(cnnc_relu_forward(COUNT, y, y));
    CHECK_OK(cnnc_add_relu_forward(COUNT, x, dy, dx));
    CHECK(memcmp(y, dx, COUNT * sizeof(float)) == 0);
    CHECK(signbit(dx[0]) && isnan(dx[2]) && dx[3] == INFINITY && dx[4] == 0.0f);
    CHECK_OK(cnnc_add_relu_forward(COUNT, x, dy, dy)); /* in place */
    CHECK(memcmp(y, dy, COUNT * sizeof(float)) == 0);

    float db[C];
    fill(x, COUNT, 8);
    CHECK_OK(cnnc_bias_add_backward(N * H * W, C, x, db));
    for (int c = 0; c < C; ++c) {
        double s = 0;
        for (int i = 0; i < N * H * W; ++i)
            s += x[i * C + c];
        CHECK_NEAR(db[c], s, 1e-5);
    }
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {7, 8, 9, 10}, joined[10], da[6], dbb[4];
    const float *inputs[2] = {a, b};
    float *grads[2] = {da, dbb};
    int64_t widths[2] = {3, 2};
    CHECK_OK(cnnc_concat_forward(2, 2, widths, inputs, joined));
    const float expect[10] = {1, 2, 3, 7, 8, 4, 5, 6, 9, 10};
    CHECK(memcmp(joined, expect, sizeof expect) == 0);
    CHECK_OK(cnnc_concat_backward(2, 2, widths, joined, grads));
    CHECK(memcmp(da, a, sizeof a) == 0 && memcmp(dbb, b, sizeof b) == 0);
    widths[1] = -1;
    CHECK_STATUS(cnnc_concat_forward(2, 2, widths, inputs, joined), CNNC_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    for (int threads = 1; threads <= 2; ++threads) {
        CHECK_OK(cnnc_set_num_threads(threads));
        test_pool();
        test_global_pool();
        test_batch_norm();
    }
    test_dropout_and_elementwise();
    cnnc_release_workspace();
    return check_finish("test_kernels");
}
