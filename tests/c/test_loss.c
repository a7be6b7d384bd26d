#include <math.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

enum { N = 7, C = 37 };

/* Double-precision softmax cross-entropy of one row with label smoothing. */
static double ref_row(const float *x, int64_t label, double ls, double *grad)
{
    double m = x[0], s = 0.0;
    for (int j = 1; j < C; ++j) m = x[j] > m ? x[j] : m;
    for (int j = 0; j < C; ++j) s += exp(x[j] - m);
    double loss = 0.0;
    for (int j = 0; j < C; ++j) {
        double t = (j == label ? 1.0 - ls : 0.0) + ls / C;
        double logp = x[j] - m - log(s);
        loss -= t * logp;
        grad[j] = exp(logp) - t;
    }
    return loss;
}

static void test_softmax_cross_entropy(void)
{
    float x[N * C], grad[N * C], loss[N], onehot[N * C], loss2[N], grad2[N * C];
    int64_t labels[N];
    double want_grad[C];
    unsigned seed = 3;
    for (int i = 0; i < N * C; ++i) x[i] = 8.0f * check_uniform(&seed);
    x[0] = 1e4f; /* huge logits stay finite */
    x[C + 1] = -1e4f;
    memset(onehot, 0, sizeof onehot);
    for (int i = 0; i < N; ++i) {
        labels[i] = (i * 11) % C;
        onehot[i * C + labels[i]] = 1.0f;
    }
    CHECK_OK(cnnc_softmax_cross_entropy(N, 1, C, x, labels, NULL, 0.1f, CNNC_NO_IGNORE, NULL, 1.0f, loss, grad));
    CHECK_OK(cnnc_softmax_cross_entropy(N, 1, C, x, NULL, onehot, 0.1f, CNNC_NO_IGNORE, NULL, 1.0f, loss2, grad2));
    for (int i = 0; i < N; ++i) {
        double want = ref_row(x + i * C, labels[i], 0.1, want_grad);
        CHECK_NEAR(loss[i], want, 1e-5);
        CHECK_NEAR(loss2[i], want, 1e-5);
        for (int j = 0; j < C; ++j) {
            CHECK(fabs(grad[i * C + j] - want_grad[j]) < 1e-6);
            CHECK(fabs(grad2[i * C + j] - want_grad[j]) < 1e-6);
        }
    }
    /* grad may alias the logits */
    float alias[N * C];
    memcpy(alias, x, sizeof x);
    CHECK_OK(cnnc_softmax_cross_entropy(N, 1, C, alias, labels, NULL, 0.1f, CNNC_NO_IGNORE, NULL, 1.0f, loss2, alias));
    CHECK(memcmp(alias, grad, sizeof grad) == 0 && memcmp(loss, loss2, sizeof loss) == 0);

    labels[2] = C;
    CHECK_STATUS(cnnc_softmax_cross_entropy(N, 1, C, x, labels, NULL, 0.0f, CNNC_NO_IGNORE, NULL, 1.0f, loss, grad),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "labels[2]") != NULL);
    labels[2] = -1;
    CHECK_OK(cnnc_softmax_cross_entropy(N, 1, C, x, labels, NULL, 0.0f, -1, NULL, 1.0f, loss, grad));
    CHECK(loss[2] == 0.0f && grad[2 * C] == 0.0f);
    CHECK_STATUS(cnnc_softmax_cross_entropy(N, 1, C, x, labels, onehot, 0.0f, -1, NULL, 1.0f, loss, grad),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_softmax_cross_entropy(N, 1, C, x, NULL, onehot, 2.0f, -1, NULL, 1.0f, loss, grad),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_softmax_cross_entropy(N, 1, 0, x, NULL, onehot, 0.0f, -1, NULL, 1.0f, loss, grad),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_OK(cnnc_softmax_cross_entropy(0, 1, C, NULL, NULL, NULL, 0.0f, -1, NULL, 1.0f, NULL, NULL));
}

static void test_elementwise(void)
{
    enum { D = 33 };
    float x[N * D], z[N * D], w[N], loss[N], grad[N * D];
    unsigned seed = 5;
    for (int i = 0; i < N * D; ++i) {
        x[i] = 20.0f * check_uniform(&seed);
        z[i] = 0.5f + 0.5f * check_uniform(&seed);
    }
    for (int i = 0; i < N; ++i) w[i] = 1.0f + (float)i;
    CHECK_OK(cnnc_sigmoid_cross_entropy(N, D, x, z, 0.0f, w, 0.5f, loss, grad));
    for (int i = 0; i < N; ++i) {
        double total = 0.0;
        for (int j = 0; j < D; ++j) {
            double v = x[i * D + j], t = z[i * D + j];
            total += (v > 0 ? v : 0) - v * t + log1p(exp(-fabs(v)));
            double want = 0.5 * w[i] * (1.0 / (1.0 + exp(-v)) - t) / D;
            CHECK(fabs(grad[i * D + j] - want) < 1e-7);
        }
        CHECK_NEAR(loss[i], w[i] * total / D, 1e-5);
    }
    CHECK_OK(cnnc_mean_squared_error(N, D, x, z, NULL, 1.0f, loss, NULL));
    CHECK_OK(cnnc_mean_absolute_error(N, D, x, z, NULL, 1.0f, NULL, grad));
    for (int i = 0; i < N; ++i) {
        double total = 0.0;
        for (int j = 0; j < D; ++j) {
            double d = (double)x[i * D + j] - z[i * D + j];
            total += d * d;
            CHECK(grad[i * D + j] == (float)((d > 0 ? 1.0 : -1.0) / D));
        }
        CHECK_NEAR(loss[i], total / D, 1e-5);
    }
    for (int i = 0; i < N * D; ++i) x[i] = 0.5f + 0.5f * check_uniform(&seed);
    CHECK_OK(cnnc_binary_cross_entropy(N, D, x, z, 0.0f, 1e-7f, NULL, 1.0f, loss, grad));
    for (int i = 0; i < N; ++i) {
        double total = 0.0;
        for (int j = 0; j < D; ++j) {
            double p = x[i * D + j], t = z[i * D + j];
            p = p < 1e-7 ? 1e-7 : p;
            total -= t * log(p) + (1 - t) * log(1 - p);
        }
        CHECK_NEAR(loss[i], total / D, 1e-5);
    }
    CHECK_STATUS(cnnc_binary_cross_entropy(N, D, x, z, 0.0f, 0.6f, NULL, 1.0f, loss, grad), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_mean_squared_error(N, -1, x, z, NULL, 1.0f, loss, grad), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_mean_squared_error(N, D, x, NULL, NULL, 1.0f, loss, grad), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_mean_squared_error(INT64_MAX, 4, x, z, NULL, 1.0f, loss, grad), CNNC_ERR_OVERFLOW);
}

int main(void)
{
    test_softmax_cross_entropy();
    test_elementwise();
    cnnc_release_workspace();
    return check_finish("test_loss");
}
