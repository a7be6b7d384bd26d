#include <math.h>
#include <string.h>
#include "check.h"

enum { N = 6, H = 12, W = 14, C = 1, SIZE = H * W * C };

/* Identity parameters give the input back exactly; a warp with a pure
 * integer translation equals a shifted copy; the same seed gives the same
 * output at 1 and 2 threads; bad arguments give statuses, not crashes. */
int main(void)
{
    /* Teams of the sizes asked for, even on a machine with fewer CPUs. */
    cnnc_set_oversubscription(1);
    static float x[N * SIZE], y[N * SIZE], z[N * SIZE];
    unsigned state = 3;
    for (int i = 0; i < N * SIZE; ++i)
        x[i] = check_uniform(&state);

    const float eye[6] = {1, 0, 0, 0, 1, 0};
    for (int mode = 0; mode < 4; ++mode) {
        CHECK_OK(cnnc_affine_warp(N, H, W, C, x, H, W, eye, 0, CNNC_INTERP_BILINEAR, (cnnc_fill_mode)mode, 0.5f, y));
        CHECK(memcmp(x, y, sizeof x) == 0);
    }
    const float shift[6] = {1, 0, -2, 0, 1, 3}; /* out(u, v) = in(u - 2, v + 3) */
    CHECK_OK(cnnc_affine_warp(N, H, W, C, x, H, W, shift, 0, CNNC_INTERP_BILINEAR, CNNC_FILL_CONSTANT, -9.0f, y));
    for (int i = 0; i < N; ++i)
        for (int v = 0; v < H; ++v)
            for (int u = 0; u < W; ++u) {
                int su = u - 2, sv = v + 3;
                float want = (su >= 0 && su < W && sv >= 0 && sv < H) ? x[i * SIZE + sv * W + su] : -9.0f;
                CHECK(y[i * SIZE + v * W + u] == want);
            }

    cnnc_affine_ranges none = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, 1};
    CHECK_OK(cnnc_random_affine(N, H, W, C, x, &none, CNNC_INTERP_BILINEAR, CNNC_FILL_REFLECT, 0, 1, y));
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK_OK(cnnc_random_brightness(N, H, W, C, x, 0, 0, -INFINITY, INFINITY, 1, y));
    CHECK(memcmp(x, y, sizeof x) == 0);

    cnnc_affine_ranges some = {{-0.5f, 0.5f}, {-0.1f, 0.1f}, {-0.1f, 0.1f}, {-0.2f, 0.2f}, {0, 0}, 1};
    CHECK_OK(cnnc_set_num_threads(1));
    CHECK_OK(cnnc_random_affine(N, H, W, C, x, &some, CNNC_INTERP_BILINEAR, CNNC_FILL_REFLECT, 0, 77, y));
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_OK(cnnc_random_affine(N, H, W, C, x, &some, CNNC_INTERP_BILINEAR, CNNC_FILL_REFLECT, 0, 77, z));
    CHECK(memcmp(y, z, sizeof y) == 0);
    CHECK(memcmp(x, y, sizeof x) != 0);

    CHECK_STATUS(cnnc_random_flip(N, 0, W, C, x, 1, 0, 0, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_random_flip(N, H, W, C, NULL, 1, 0, 0, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_random_flip(N - 1, H, W, C, x, 1, 0, 0, x + 1), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_random_crop(N, H, W, C, x, H + 5, W, 2, 0, 0, y), CNNC_ERR_SHAPE);
    CHECK_STATUS(cnnc_random_flip(INT64_MAX / 2, H, W, C, x, 1, 0, 0, y), CNNC_ERR_OVERFLOW);
    const float bad[6] = {NAN, 0, 0, 0, 1, 0};
    CHECK_STATUS(cnnc_affine_warp(N, H, W, C, x, H, W, bad, 0, CNNC_INTERP_BILINEAR, CNNC_FILL_CONSTANT, 0, y),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_affine_warp(N, H, W, C, x, H, W, eye, 0, CNNC_INTERP_BILINEAR, (cnnc_fill_mode)9, 0, y),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_OK(cnnc_random_erasing(0, H, W, C, NULL, 0.5f, 0.1f, 0.3f, 0.5f, 2.0f, 0, 1, NULL));
    cnnc_release_workspace();
    return check_finish("test_augment");
}
