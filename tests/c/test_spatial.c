#include <math.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

enum { N = 3, H = 9, W = 11, C = 70, OH = 7, OW = 8 };

/* The identity transform samples the image back; grid_sample is linear in x,
 * so sum(dx * x) equals sum(dy * y); the results are the same at 1 and 2
 * threads; non-finite grid points sample 0; bad arguments give statuses. */
int main(void)
{
    static float x[N * H * W * C], y[N * H * W * C], y2[N * OH * OW * C], dy[N * OH * OW * C];
    static float grid[N * H * W * 2], grid2[N * OH * OW * 2], dx[N * H * W * C], dx2[N * H * W * C];
    static float dgrid[N * OH * OW * 2], dgrid2[N * OH * OW * 2];
    unsigned state = 5;
    for (int i = 0; i < N * H * W * C; ++i)
        x[i] = check_uniform(&state);
    for (int i = 0; i < N * OH * OW * C; ++i)
        dy[i] = check_uniform(&state);

    float eye[N * 6];
    for (int i = 0; i < N; ++i) {
        const float e[6] = {1, 0, 0, 0, 1, 0};
        memcpy(eye + 6 * i, e, sizeof e);
    }
    CHECK_OK(cnnc_affine_grid(N, H, W, eye, grid));
    CHECK_OK(cnnc_grid_sample(N, H, W, C, x, H, W, grid, y));
    for (int i = 0; i < N * H * W * C; ++i)
        CHECK_NEAR(y[i], x[i], 1e-5);

    float theta[N * 6];
    for (int i = 0; i < N * 6; ++i)
        theta[i] = eye[i] + 0.4f * check_uniform(&state);
    CHECK_OK(cnnc_affine_grid(N, OH, OW, theta, grid2));
    CHECK_OK(cnnc_set_num_threads(1));
    CHECK_OK(cnnc_grid_sample(N, H, W, C, x, OH, OW, grid2, y2));
    CHECK_OK(cnnc_grid_sample_backward(N, H, W, C, x, OH, OW, grid2, dy, dx, dgrid));
    double lhs = 0, rhs = 0;
    for (int i = 0; i < N * H * W * C; ++i)
        lhs += (double)dx[i] * x[i];
    for (int i = 0; i < N * OH * OW * C; ++i)
        rhs += (double)dy[i] * y2[i];
    CHECK_NEAR(lhs, rhs, 1e-4);
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_OK(cnnc_grid_sample_backward(N, H, W, C, x, OH, OW, grid2, dy, dx2, dgrid2));
    CHECK(memcmp(dx, dx2, sizeof dx) == 0);
    CHECK(memcmp(dgrid, dgrid2, sizeof dgrid) == 0);
    CHECK_OK(cnnc_grid_sample_backward(N, H, W, C, x, OH, OW, grid2, dy, NULL, dgrid2));
    CHECK(memcmp(dgrid, dgrid2, sizeof dgrid) == 0);

    grid2[0] = NAN;
    grid2[3] = INFINITY;
    grid2[4] = 1e30f;
    CHECK_OK(cnnc_grid_sample(N, H, W, C, x, OH, OW, grid2, y2));
    CHECK_OK(cnnc_grid_sample_backward(N, H, W, C, x, OH, OW, grid2, dy, dx, dgrid));
    for (int j = 0; j < 2 * C; ++j)
        CHECK(y2[j] == 0.0f);
    for (int j = 0; j < 4; ++j)
        CHECK(dgrid[j] == 0.0f);

    /* One channel runs the per-ISA gather kernels: the same as channel 0 of
     * a two-channel image through the generic loops (dy on channel 0 only). */
    {
        static float x1[N * H * W], x2[N * H * W * 2], y1[N * OH * OW], yy[N * OH * OW * 2];
        static float dy1[N * OH * OW], dy2[N * OH * OW * 2], dg1[N * OH * OW * 2], dg2[N * OH * OW * 2];
        for (int i = 0; i < N * H * W; ++i)
            x1[i] = x2[2 * i] = x2[2 * i + 1] = check_uniform(&state);
        for (int i = 0; i < N * OH * OW; ++i) {
            dy1[i] = dy2[2 * i] = check_uniform(&state);
            dy2[2 * i + 1] = 0.0f;
        }
        CHECK_OK(cnnc_grid_sample(N, H, W, 1, x1, OH, OW, grid2, y1));
        CHECK_OK(cnnc_grid_sample(N, H, W, 2, x2, OH, OW, grid2, yy));
        for (int i = 0; i < N * OH * OW; ++i)
            CHECK(y1[i] == yy[2 * i]);
        CHECK_OK(cnnc_grid_sample_backward(N, H, W, 1, x1, OH, OW, grid2, dy1, NULL, dg1));
        CHECK_OK(cnnc_grid_sample_backward(N, H, W, 2, x2, OH, OW, grid2, dy2, NULL, dg2));
        for (int i = 0; i < N * OH * OW * 2; ++i)
            CHECK_NEAR(dg1[i], dg2[i], 1e-6);
    }

    float dtheta[N * 6];
    CHECK_OK(cnnc_affine_grid_backward(N, OH, OW, dgrid, dtheta));
    for (int i = 0; i < N * 6; ++i)
        CHECK(isfinite(dtheta[i]));

    CHECK_STATUS(cnnc_affine_grid(N, 0, W, theta, grid), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_affine_grid(N, H, W, NULL, grid), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_affine_grid(N, INT64_MAX / 2, 3, theta, grid), CNNC_ERR_OVERFLOW);
    CHECK_STATUS(cnnc_affine_grid(1, 1, 1, grid, grid + 1), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_grid_sample(N, H, W, -1, x, OH, OW, grid2, y2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_grid_sample(N, INT64_MAX / 4, W, C, x, OH, OW, grid2, y2), CNNC_ERR_OVERFLOW);
    CHECK_STATUS(cnnc_grid_sample(N, H, W, C, x, OH, OW, grid2, x + 5), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_grid_sample(N, H, W, C, x, OH, OW, NULL, y2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_grid_sample_backward(N, H, W, C, NULL, OH, OW, grid2, dy, dx, dgrid),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_grid_sample_backward(N, H, W, C, x, OH, OW, grid2, dy, dx, dx + 4),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_OK(cnnc_grid_sample(0, H, W, C, NULL, OH, OW, NULL, NULL));
    return check_finish("test_spatial");
}
