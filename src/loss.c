/* Loss drivers. The work is cut into tasks of fixed extent (one row of
 * classes for the categorical losses, one block of values for the
 * elementwise ones) whatever the thread count; each task's loss lands in a
 * partial-sum buffer that is reduced per sample in order afterwards, so the
 * results are the same on 1 or many threads. */
#include <math.h>
#include <string.h>
#include "loss_kernels.h"
#include "parallel.h"

/* Elementwise losses cut each sample into blocks of this many values. */
#define LOSS_BLOCK 16384
/* Values per thread below which a second thread does not pay. */
#define LOSS_GRAIN cnnc_work_grain(CNNC_WORK_ELEMENTWISE)
/* cnnc_workspace slot holding the partial sums (on the calling thread). */
#define LOSS_WORKSPACE_SLOT 6

enum loss_kind { SOFTMAX_XENT, CATEGORICAL_XENT, SIGMOID_XENT, BINARY_XENT, SQUARED_ERROR, ABSOLUTE_ERROR };

struct loss_job {
    enum loss_kind kind;
    const struct cnnc_loss_kernels *k;
    int64_t per_sample;   /* tasks per sample */
    int64_t row;          /* values per task (rows) or per sample (blocks) */
    int64_t mean_count;   /* the per-sample mean divides by this */
    const float *x, *t;
    const int64_t *labels;
    int64_t ignore_index;
    float smoothing, eps;
    const float *sample_weight;
    float grad_scale;
    float *grad;
    float *partial;
};

static int row_kind(enum loss_kind kind) { return kind == SOFTMAX_XENT || kind == CATEGORICAL_XENT; }

static float softmax_xent_row(const struct loss_job *j, int64_t r, float gfac)
{
    const int64_t c = j->row;
    const float *x = j->x + r * c;
    const float *t = j->t ? j->t + r * c : NULL;
    float *g = j->grad ? j->grad + r * c : NULL;
    const float keep = 1.0f - j->smoothing, spread = j->smoothing / (float)c;
    int64_t y = j->labels ? j->labels[r] : -1;
    if (j->labels && y == j->ignore_index) {
        if (g)
            memset(g, 0, (size_t)c * sizeof(float));
        return 0.0f;
    }
    float mx = j->k->row_max(c, x);
    float x_y = j->labels ? x[y] : 0.0f; /* read before grad, which may alias x, is written */
    struct cnnc_softmax_sums s;
    j->k->softmax_exp(c, x, mx, t, g, &s);
    float log_s = logf(s.exp_sum);
    float t_total, loss;
    if (j->labels) {
        t_total = 1.0f;
        loss = log_s - (keep * (x_y - mx) + spread * s.shifted);
    } else {
        t_total = keep * s.t_sum + j->smoothing;
        loss = t_total * log_s - (keep * s.dot + spread * s.shifted);
    }
    if (g) {
        j->k->affine(c, g, t, gfac * t_total / s.exp_sum, -gfac * keep, -gfac * spread, g);
        if (j->labels)
            g[y] -= gfac * keep;
    }
    return loss;
}

static float categorical_xent_row(const struct loss_job *j, int64_t r, float gfac)
{
    const int64_t c = j->row;
    float *g = j->grad ? j->grad + r * c : NULL;
    int64_t y = j->labels ? j->labels[r] : -1;
    if (j->labels && y == j->ignore_index) {
        if (g)
            memset(g, 0, (size_t)c * sizeof(float));
        return 0.0f;
    }
    return j->k->categorical_xent(c, j->x + r * c, j->t ? j->t + r * c : NULL, y, j->smoothing, j->eps, gfac, g);
}

static float run_task(const struct loss_job *j, int64_t task)
{
    int64_t sample = task / j->per_sample;
    float w = j->sample_weight ? j->sample_weight[sample] : 1.0f;
    float gfac = (float)((double)j->grad_scale * (double)w / (double)j->mean_count);
    if (row_kind(j->kind))
        return j->kind == SOFTMAX_XENT ? softmax_xent_row(j, task, gfac) : categorical_xent_row(j, task, gfac);
    int64_t begin = sample * j->row + (task % j->per_sample) * LOSS_BLOCK;
    int64_t len = cnnc_min_i64(LOSS_BLOCK, (sample + 1) * j->row - begin);
    const float *x = j->x + begin, *t = j->t + begin;
    float *g = j->grad ? j->grad + begin : NULL;
    switch (j->kind) {
    case SIGMOID_XENT: return j->k->sigmoid_xent(len, x, t, j->smoothing, gfac, g);
    case BINARY_XENT: return j->k->binary_xent(len, x, t, j->smoothing, j->eps, gfac, g);
    case SQUARED_ERROR: return j->k->squared_error(len, x, t, gfac, g);
    default: return j->k->absolute_error(len, x, t, gfac, g);
    }
}

static void task_body(int64_t task, void *ctx)
{
    struct loss_job *j = ctx;
    j->partial[task] = run_task(j, task);
}

static cnnc_status run_job(struct loss_job *j, int64_t n, int64_t values, float *loss)
{
    int64_t tasks;
    CNNC_TRY(cnnc_mul_sizes(&tasks, 2, n, j->per_sample));
    j->k = CNNC_PICK(cnnc_loss_kernels);
    j->partial = cnnc_workspace(LOSS_WORKSPACE_SLOT, (size_t)tasks * sizeof(float));
    if (!j->partial)
        return CNNC_ERR_OUT_OF_MEMORY;
    cnnc_parallel_for(tasks, cnnc_threads_for(values, LOSS_GRAIN), task_body, j);
    if (loss) {
        for (int64_t i = 0; i < n; ++i) {
            double total = 0.0;
            for (int64_t b = 0; b < j->per_sample; ++b)
                total += j->partial[i * j->per_sample + b];
            double w = j->sample_weight ? j->sample_weight[i] : 1.0;
            loss[i] = (float)(w * total / (double)j->mean_count);
        }
    }
    return CNNC_OK;
}

static cnnc_status check_common(const char *fn, int64_t n, int64_t inner, const float *x, const float *t,
                                float smoothing, float grad_scale, int64_t *values)
{
    if (n < 0 || inner < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: sizes (%lld, %lld) must be >= 0 and >= 1", fn,
                          (long long)n, (long long)inner);
    CNNC_TRY(cnnc_mul_sizes(values, 2, n, inner));
    size_t bytes;
    CNNC_TRY(cnnc_float_bytes(*values, &bytes));
    if (n > 0 && (!x || !t))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, x ? "the targets" : "the input");
    if (!(smoothing >= 0.0f && smoothing <= 1.0f))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: label_smoothing = %g must be in [0, 1]", fn,
                          (double)smoothing);
    if (!isfinite(grad_scale))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: grad_scale = %g must be finite", fn, (double)grad_scale);
    return CNNC_OK;
}

/* loss (n floats) and grad (values floats) are written while the input x
 * and the targets t (values floats, or NULL for labels) are still read. */
static cnnc_status check_outputs(const char *fn, int64_t n, int64_t values, const float *x, const float *t,
                                 const float *sample_weight, float *loss, float *grad)
{
    CNNC_TRY(cnnc_check_disjoint(fn, "grad", grad, values, "the input", x, values, 1));
    CNNC_TRY(cnnc_check_disjoint(fn, "grad", grad, values, "the targets", t, values, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "grad", grad, values, "sample_weight", sample_weight, n, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "loss", loss, n, "the input", x, values, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "loss", loss, n, "the targets", t, values, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "loss", loss, n, "grad", grad, values, 0));
    return cnnc_check_disjoint(fn, "loss", loss, n, "sample_weight", sample_weight, n, 0);
}

static cnnc_status check_epsilon(const char *fn, float eps)
{
    if (!(eps >= 0.0f && eps < 0.5f))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: epsilon = %g must be in [0, 0.5)", fn, (double)eps);
    return CNNC_OK;
}

static cnnc_status check_labels(const char *fn, int64_t rows, int64_t c, const int64_t *labels,
                                const float *targets, int64_t ignore_index)
{
    if ((labels == NULL) == (targets == NULL))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: exactly one of labels and targets must be given", fn);
    if (!labels)
        return CNNC_OK;
    for (int64_t i = 0; i < rows; ++i) {
        int64_t y = labels[i];
        if ((y < 0 || y >= c) && y != ignore_index)
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: labels[%lld] = %lld is out of range [0, %lld)", fn,
                              (long long)i, (long long)y, (long long)c);
    }
    return CNNC_OK;
}

static cnnc_status categorical(enum loss_kind kind, const char *fn, int64_t n, int64_t positions, int64_t c,
                               const float *x, const int64_t *labels, const float *targets, float smoothing,
                               int64_t ignore_index, float eps, const float *sample_weight, float grad_scale,
                               float *loss, float *grad)
{
    int64_t rows, values;
    if (positions < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: positions = %lld must be >= 1", fn, (long long)positions);
    CNNC_CHECK_NONNEG(n);
    CNNC_TRY(cnnc_mul_sizes(&rows, 2, n, positions));
    CNNC_TRY(check_common(fn, rows, c, x, labels ? (const float *)labels : targets, smoothing, grad_scale,
                          &values));
    if (n == 0)
        return CNNC_OK;
    CNNC_TRY(check_labels(fn, rows, c, labels, targets, ignore_index));
    CNNC_TRY(check_outputs(fn, n, values, x, targets, sample_weight, loss, grad));
    struct loss_job j = {.kind = kind, .per_sample = positions, .row = c, .mean_count = positions, .x = x,
                         .t = targets, .labels = labels, .ignore_index = ignore_index, .smoothing = smoothing,
                         .eps = eps, .sample_weight = sample_weight, .grad_scale = grad_scale, .grad = grad};
    return run_job(&j, n, values, loss);
}

cnnc_status cnnc_softmax_cross_entropy(int64_t n, int64_t positions, int64_t c, const float *logits,
                                       const int64_t *labels, const float *targets, float label_smoothing,
                                       int64_t ignore_index, const float *sample_weight, float grad_scale,
                                       float *loss, float *grad)
{
    return categorical(SOFTMAX_XENT, __func__, n, positions, c, logits, labels, targets, label_smoothing,
                       ignore_index, 0.0f, sample_weight, grad_scale, loss, grad);
}

cnnc_status cnnc_categorical_cross_entropy(int64_t n, int64_t positions, int64_t c, const float *probs,
                                           const int64_t *labels, const float *targets, float label_smoothing,
                                           int64_t ignore_index, float epsilon, const float *sample_weight,
                                           float grad_scale, float *loss, float *grad)
{
    CNNC_TRY(check_epsilon(__func__, epsilon));
    return categorical(CATEGORICAL_XENT, __func__, n, positions, c, probs, labels, targets, label_smoothing,
                       ignore_index, epsilon, sample_weight, grad_scale, loss, grad);
}

static cnnc_status elementwise(enum loss_kind kind, const char *fn, int64_t n, int64_t d, const float *x,
                               const float *t, float smoothing, float eps, const float *sample_weight,
                               float grad_scale, float *loss, float *grad)
{
    int64_t values;
    CNNC_TRY(check_common(fn, n, d, x, t, smoothing, grad_scale, &values));
    if (n == 0)
        return CNNC_OK;
    CNNC_TRY(check_outputs(fn, n, values, x, t, sample_weight, loss, grad));
    struct loss_job j = {.kind = kind, .per_sample = cnnc_ceil_div(d, LOSS_BLOCK), .row = d, .mean_count = d,
                         .x = x, .t = t, .smoothing = smoothing, .eps = eps, .sample_weight = sample_weight,
                         .grad_scale = grad_scale, .grad = grad};
    return run_job(&j, n, values, loss);
}

cnnc_status cnnc_sigmoid_cross_entropy(int64_t n, int64_t d, const float *logits, const float *targets,
                                       float label_smoothing, const float *sample_weight, float grad_scale,
                                       float *loss, float *grad)
{
    return elementwise(SIGMOID_XENT, __func__, n, d, logits, targets, label_smoothing, 0.0f, sample_weight,
                       grad_scale, loss, grad);
}

cnnc_status cnnc_binary_cross_entropy(int64_t n, int64_t d, const float *probs, const float *targets,
                                      float label_smoothing, float epsilon, const float *sample_weight,
                                      float grad_scale, float *loss, float *grad)
{
    CNNC_TRY(check_epsilon(__func__, epsilon));
    return elementwise(BINARY_XENT, __func__, n, d, probs, targets, label_smoothing, epsilon, sample_weight,
                       grad_scale, loss, grad);
}

cnnc_status cnnc_mean_squared_error(int64_t n, int64_t d, const float *pred, const float *target,
                                    const float *sample_weight, float grad_scale, float *loss, float *grad)
{
    return elementwise(SQUARED_ERROR, __func__, n, d, pred, target, 0.0f, 0.0f, sample_weight, grad_scale,
                       loss, grad);
}

cnnc_status cnnc_mean_absolute_error(int64_t n, int64_t d, const float *pred, const float *target,
                                     const float *sample_weight, float grad_scale, float *loss, float *grad)
{
    return elementwise(ABSOLUTE_ERROR, __func__, n, d, pred, target, 0.0f, 0.0f, sample_weight, grad_scale,
                       loss, grad);
}
