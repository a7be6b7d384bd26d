#include <math.h>
#include <string.h>
#include "check.h"

enum { N = 1029, STEPS = 10 };

/* Keras Adam with decoupled decay and AMSGrad, in double, over STEPS steps. */
static void test_adam(void)
{
    static float p[N], g[N], m[N], v[N], vhat[N];
    static double rp[N], rm[N], rv[N], rvh[N];
    unsigned seed = 9;
    for (int i = 0; i < N; ++i) rp[i] = p[i] = check_uniform(&seed);
    memset(m, 0, sizeof m); memset(v, 0, sizeof v); memset(vhat, 0, sizeof vhat);
    memset(rm, 0, sizeof rm); memset(rv, 0, sizeof rv); memset(rvh, 0, sizeof rvh);
    cnnc_optim_common c = cnnc_optim_common_init(0.01f);
    c.weight_decay = 0.05f;
    c.decoupled = 1;
    for (int t = 1; t <= STEPS; ++t) {
        for (int i = 0; i < N; ++i) g[i] = check_uniform(&seed);
        CHECK_OK(cnnc_adam_update(N, p, g, m, v, vhat, t, &c, 0.9f, 0.999f, 1e-7f));
        double alpha = 0.01 * sqrt(1 - pow(0.999f, t)) / (1 - pow(0.9f, t));
        for (int i = 0; i < N; ++i) {
            rp[i] *= 1 - (double)0.01f * 0.05f;
            rm[i] = 0.9f * rm[i] + (1 - 0.9f) * g[i];
            rv[i] = 0.999f * rv[i] + (1 - 0.999f) * (double)g[i] * g[i];
            rvh[i] = rvh[i] > rv[i] ? rvh[i] : rv[i];
            rp[i] -= alpha * rm[i] / (sqrt(rvh[i]) + 1e-7f);
        }
    }
    for (int i = 0; i < N; ++i)
        CHECK(fabs(p[i] - rp[i]) < 1e-5);
}

/* PyTorch-style Nesterov SGD and centered RMSprop with momentum. */
static void test_sgd_rmsprop(void)
{
    static float p[N], g[N], b[N], q[N], ms[N], mom[N], mg[N];
    static double rp[N], rb[N], rq[N], rms[N], rmom[N], rmg[N];
    unsigned seed = 4;
    for (int i = 0; i < N; ++i) rq[i] = q[i] = rp[i] = p[i] = check_uniform(&seed);
    memset(b, 0, sizeof b); memset(ms, 0, sizeof ms); memset(mom, 0, sizeof mom); memset(mg, 0, sizeof mg);
    memset(rb, 0, sizeof rb); memset(rms, 0, sizeof rms); memset(rmom, 0, sizeof rmom); memset(rmg, 0, sizeof rmg);
    cnnc_optim_common c = cnnc_optim_common_init(0.05f);
    c.torch_style = 1;
    cnnc_optim_common k = cnnc_optim_common_init(0.001f);
    k.l2 = 0.01f;
    for (int t = 1; t <= STEPS; ++t) {
        for (int i = 0; i < N; ++i) g[i] = check_uniform(&seed);
        CHECK_OK(cnnc_sgd_update(N, p, g, b, &c, 0.9f, 1));
        CHECK_OK(cnnc_rmsprop_update(N, q, g, ms, mom, mg, &k, 0.9f, 0.5f, 1e-7f));
        for (int i = 0; i < N; ++i) {
            rb[i] = 0.9f * rb[i] + g[i];
            rp[i] -= 0.05f * (g[i] + 0.9f * rb[i]);
            double gg = g[i] + 2 * 0.01f * rq[i];
            rms[i] = 0.9f * rms[i] + (1 - 0.9f) * gg * gg;
            rmg[i] = 0.9f * rmg[i] + (1 - 0.9f) * gg;
            rmom[i] = 0.5f * rmom[i] + 0.001f * gg / sqrt(rms[i] - rmg[i] * rmg[i] + 1e-7f);
            rq[i] -= rmom[i];
        }
    }
    for (int i = 0; i < N; ++i) {
        CHECK(fabs(p[i] - rp[i]) < 1e-5);
        CHECK(fabs(q[i] - rq[i]) < 1e-5);
    }
    c.lr = NAN;
    CHECK_STATUS(cnnc_sgd_update(N, p, g, b, &c, 0.9f, 0), CNNC_ERR_INVALID_ARGUMENT);
    c.lr = 0.1f;
    CHECK_STATUS(cnnc_sgd_update(N, p, g, NULL, &c, 0.9f, 0), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_sgd_update(N, p, g, b, NULL, 0.9f, 0), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_adam_update(N, p, g, b, ms, NULL, 0, &c, 0.9f, 0.999f, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_rmsprop_update(N, p, g, ms, NULL, NULL, &c, 0.9f, 0.5f, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_rmsprop_update(-1, p, g, ms, NULL, NULL, &c, 0.9f, 0.0f, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
    c.clip_value = -1.0f;
    CHECK_STATUS(cnnc_sgd_update(N, p, g, NULL, &c, 0.0f, 0), CNNC_ERR_INVALID_ARGUMENT);
}

/* Keras Adagrad with clipping, in double. */
static void test_adagrad(void)
{
    static float p[N], g[N], acc[N];
    static double rp[N], racc[N];
    unsigned seed = 12;
    for (int i = 0; i < N; ++i) { rp[i] = p[i] = check_uniform(&seed); racc[i] = acc[i] = 0.1f; }
    cnnc_optim_common c = cnnc_optim_common_init(0.05f);
    c.clip_value = 0.5f;
    for (int t = 1; t <= STEPS; ++t) {
        for (int i = 0; i < N; ++i) g[i] = check_uniform(&seed);
        CHECK_OK(cnnc_adagrad_update(N, p, g, acc, &c, 1e-7f));
        for (int i = 0; i < N; ++i) {
            double gg = g[i] > 0.5f ? 0.5f : (g[i] < -0.5f ? -0.5f : g[i]);
            racc[i] += gg * gg;
            rp[i] -= 0.05f * gg / sqrt(racc[i] + 1e-7f);
        }
    }
    for (int i = 0; i < N; ++i)
        CHECK(fabs(p[i] - rp[i]) < 1e-5);
    CHECK_STATUS(cnnc_adagrad_update(N, p, g, NULL, &c, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
}

/* Keras Nadam and Adamax, PyTorch Adamax, Adadelta, Lion and the weight
 * average, in double, over STEPS steps. */
static void test_adaptive(void)
{
    static float p[N], q[N], r[N], s[N], x[N], g[N], m[N], v[N], m2[N], u2[N], m3[N], u3[N];
    static float ag[N], ad[N], lm[N], avg[N];
    static double rp[N], rq[N], rr[N], rs[N], rx[N], rm[N], rv[N], rm2[N], ru2[N], rm3[N], ru3[N];
    static double rag[N], rad[N], rlm[N], ravg[N];
    unsigned seed = 21;
    for (int i = 0; i < N; ++i) {
        rp[i] = p[i] = check_uniform(&seed);
        rq[i] = q[i] = rr[i] = r[i] = rs[i] = s[i] = rx[i] = x[i] = p[i];
    }
    memset(m, 0, sizeof m); memset(v, 0, sizeof v); memset(m2, 0, sizeof m2); memset(u2, 0, sizeof u2);
    memset(m3, 0, sizeof m3); memset(u3, 0, sizeof u3); memset(ag, 0, sizeof ag); memset(ad, 0, sizeof ad);
    memset(lm, 0, sizeof lm); memset(avg, 0, sizeof avg);
    memset(rm, 0, sizeof rm); memset(rv, 0, sizeof rv); memset(rm2, 0, sizeof rm2); memset(ru2, 0, sizeof ru2);
    memset(rm3, 0, sizeof rm3); memset(ru3, 0, sizeof ru3); memset(rag, 0, sizeof rag); memset(rad, 0, sizeof rad);
    memset(rlm, 0, sizeof rlm); memset(ravg, 0, sizeof ravg);
    cnnc_optim_common c = cnnc_optim_common_init(0.01f), torch = c;
    torch.torch_style = 1;
    const double b1 = 0.9f, b2 = 0.999f, lb2 = 0.99f, rho = 0.95f, eps = 1e-7f;
    double prod = 1.0;
    for (int t = 1; t <= STEPS; ++t) {
        for (int i = 0; i < N; ++i) g[i] = check_uniform(&seed);
        double got_prod = -1.0;
        CHECK_OK(cnnc_nadam_mu_product(t, 0.9f, 1.0f, 0, 1.0, &got_prod));
        double mu = b1 * (1 - 0.5 * pow(0.96, t)), mu_next = b1 * (1 - 0.5 * pow(0.96, t + 1));
        prod *= mu;
        CHECK_NEAR(got_prod, prod, 1e-12);
        CHECK_OK(cnnc_nadam_update(N, p, g, m, v, t, got_prod, &c, 0.9f, 0.999f, 1e-7f, 1.0f));
        CHECK_OK(cnnc_adamax_update(N, q, g, m2, u2, t, &c, 0.9f, 0.999f, 1e-7f));
        CHECK_OK(cnnc_adamax_update(N, r, g, m3, u3, t, &torch, 0.9f, 0.999f, 1e-7f));
        CHECK_OK(cnnc_adadelta_update(N, s, g, ag, ad, &c, 0.95f, 1e-7f));
        CHECK_OK(cnnc_lion_update(N, x, g, lm, &c, 0.9f, 0.99f));
        CHECK_OK(cnnc_ema_update(N, avg, x, t == 1 ? 0.0f : 0.9f));
        for (int i = 0; i < N; ++i) {
            double gi = g[i];
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            double mhat = mu_next * rm[i] / (1 - prod * mu_next) + (1 - mu) * gi / (1 - prod);
            rp[i] -= 0.01f * mhat / (sqrt(rv[i] / (1 - pow(b2, t))) + eps);
            rm2[i] = b1 * rm2[i] + (1 - b1) * gi;
            ru2[i] = fmax(b2 * ru2[i], fabs(gi));
            rq[i] -= 0.01f / (1 - pow(b1, t)) * rm2[i] / (ru2[i] + eps);
            rm3[i] = b1 * rm3[i] + (1 - b1) * gi;
            ru3[i] = fmax(b2 * ru3[i], fabs(gi) + eps);
            rr[i] -= 0.01f / (1 - pow(b1, t)) * rm3[i] / ru3[i];
            rag[i] = rho * rag[i] + (1 - rho) * gi * gi;
            double delta = sqrt(rad[i] + eps) / sqrt(rag[i] + eps) * gi;
            rad[i] = rho * rad[i] + (1 - rho) * delta * delta;
            rs[i] -= 0.01f * delta;
            double mix = b1 * rlm[i] + (1 - b1) * gi;
            rx[i] -= 0.01f * (mix > 0 ? 1.0 : (mix < 0 ? -1.0 : 0.0));
            rlm[i] = lb2 * rlm[i] + (1 - lb2) * gi;
            ravg[i] = t == 1 ? x[i] : 0.9f * ravg[i] + (1 - 0.9f) * (double)x[i];
        }
    }
    int lion_ok = 0;
    for (int i = 0; i < N; ++i) {
        CHECK(fabs(p[i] - rp[i]) < 1e-5);
        CHECK(fabs(q[i] - rq[i]) < 1e-5);
        CHECK(fabs(r[i] - rr[i]) < 1e-5);
        CHECK(fabs(s[i] - rs[i]) < 1e-5);
        CHECK(fabs(avg[i] - ravg[i]) < 1e-5);
        lion_ok += fabs(x[i] - rx[i]) < 1e-5;
    }
    CHECK(lion_ok > N - 5); /* a sign may flip where the interpolation is within rounding of 0 */
    CHECK_STATUS(cnnc_nadam_update(N, p, g, m, v, 1, 1.0, &c, 0.9f, 0.999f, 1e-7f, 1.0f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_nadam_update(N, p, g, m, NULL, 1, 0.5, &c, 0.9f, 0.999f, 1e-7f, 1.0f),
                 CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_adamax_update(N, q, g, m2, u2, 0, &c, 0.9f, 0.999f, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_adadelta_update(N, s, g, ag, ad, &c, 1.0f, 1e-7f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_lion_update(N, x, g, NULL, &c, 0.9f, 0.99f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_lion_update(N, x, g, lm, &c, NAN, 0.99f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_ema_update(N, avg, NULL, 0.5f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_ema_update(N, avg, x, 1.5f), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_nadam_mu_product(3, 0.9f, 1.0f, 4, 1.0, &prod), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_nadam_mu_product(3, 0.9f, 1.0f, 0, 1.0, NULL), CNNC_ERR_INVALID_ARGUMENT);
}

static void test_sum_squares(void)
{
    static float x[5000];
    unsigned seed = 2;
    double want = 0.0, got = -1.0, got2 = -1.0;
    for (int i = 0; i < 5000; ++i) { x[i] = check_uniform(&seed); want += (double)x[i] * x[i]; }
    CHECK_OK(cnnc_set_num_threads(1));
    CHECK_OK(cnnc_sum_squares(5000, x, &got));
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_OK(cnnc_sum_squares(5000, x, &got2));
    CHECK_NEAR(got, want, 1e-6);
    CHECK(got == got2);
    CHECK_STATUS(cnnc_sum_squares(5, x, NULL), CNNC_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    test_adam();
    test_sgd_rmsprop();
    test_adagrad();
    test_adaptive();
    test_sum_squares();
    cnnc_release_workspace();
    return check_finish("test_optim");
}
