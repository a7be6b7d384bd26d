/* The model runtime (cnnc/model.h): a small model file written here (conv,
 * batch norm, relu, flatten, dense) checked against a naive reference, then
 * fuzzed: every truncation, byte flips, forged length fields, shapes,
 * offsets, huge claims, deep nesting and duplicate keys must give a status,
 * never a crash or a leak (this test runs under ASan in CI). Also concurrent
 * predict calls and API misuse. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define H 4
#define W 4
#define CIN 2
#define COUT 3
#define UNITS 2
#define FLAT ((H - 2) * (W - 2) * COUT)

static float kernel[3 * 3 * CIN * COUT], bias[COUT], gamma_[COUT], beta_[COUT], mean_[COUT], var_[COUT];
static float dense_k[FLAT * UNITS], dense_b[UNITS];

static const struct { const char *name; const float *data; int n; const char *shape; } tensors[] = {
    {"conv/kernel", kernel, 3 * 3 * CIN * COUT, "[3,3,2,3]"}, {"conv/bias", bias, COUT, "[3]"},
    {"bn/gamma", gamma_, COUT, "[3]"}, {"bn/beta", beta_, COUT, "[3]"},
    {"bn/moving_mean", mean_, COUT, "[3]"}, {"bn/moving_variance", var_, COUT, "[3]"},
    {"dense/kernel", dense_k, FLAT * UNITS, "[12,2]"}, {"dense/bias", dense_b, UNITS, "[2]"},
};
#define N_TENSORS (int)(sizeof tensors / sizeof tensors[0])

static const char *config =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"batch_input_shape\": [null, 4, 4, 2], \"layers\": ["
    "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [3, 3], \"padding\": \"valid\"}},"
    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"epsilon\": 0.001}},"
    "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"relu\"}},"
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flat\"}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 2, \"activation\": \"linear\"}}]}}";

/* Bitwise CRC-32 (IEEE), an independent reference for the runtime's. */
static uint32_t crc32_more(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static uint32_t crc32_ref(const unsigned char *p, size_t n) { return crc32_more(0, p, n); }

/* The metadata_checksum term of one entry: key NUL value NUL. */
static uint32_t crc_entry(uint32_t crc, const char *key, const char *value)
{
    crc = crc32_more(crc, key, strlen(key) + 1);
    return crc32_more(crc, value, strlen(value) + 1);
}

/* A JSON string literal of s (quotes and backslashes escaped). */
static size_t quote(char *out, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\') out[n++] = '\\';
        out[n++] = *s;
    }
    out[n++] = '"';
    return n;
}

/* The model file; model_config replaced by cfg when given. Caller frees. */
static unsigned char *make_file(const char *cfg, size_t *size)
{
    static char header[16384], sums[2048], quoted[8192];
    size_t offset = 0, data_bytes = 0;
    for (int t = 0; t < N_TENSORS; ++t) data_bytes += (size_t)tensors[t].n * 4;
    unsigned char *data = malloc(data_bytes);
    int hn = 0, sn = 0;
    hn += sprintf(header + hn, "{");
    sn += sprintf(sums + sn, "{");
    for (int t = 0; t < N_TENSORS; ++t) {
        size_t bytes = (size_t)tensors[t].n * 4;
        memcpy(data + offset, tensors[t].data, bytes);
        hn += sprintf(header + hn, "\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]},", tensors[t].name,
                      tensors[t].shape, offset, offset + bytes);
        sn += sprintf(sums + sn, "%s\"%s\":\"%08x\"", t ? "," : "", tensors[t].name, crc32_ref(data + offset, bytes));
        offset += bytes;
    }
    sprintf(sums + sn, "}");
    hn += sprintf(header + hn, "\"__metadata__\":{\"format\":\"cnnc\",\"format_version\":\"2\",\"kind\":\"model\",\"model_config\":");
    size_t q = quote(quoted, cfg ? cfg : config);
    memcpy(header + hn, quoted, q);
    hn += (int)q;
    hn += sprintf(header + hn, ",\"checksums\":");
    q = quote(quoted, sums);
    memcpy(header + hn, quoted, q);
    hn += (int)q;
    /* Keys in byte order: checksums, format, format_version, kind, model_config. */
    uint32_t meta = crc_entry(0, "checksums", sums);
    meta = crc_entry(meta, "format", "cnnc");
    meta = crc_entry(meta, "format_version", "2");
    meta = crc_entry(meta, "kind", "model");
    meta = crc_entry(meta, "model_config", cfg ? cfg : config);
    hn += sprintf(header + hn, ",\"metadata_checksum\":\"%08x\"}}", meta);
    while ((8 + hn) % 8) header[hn++] = ' ';
    *size = 8 + (size_t)hn + data_bytes;
    unsigned char *file = malloc(*size);
    for (int i = 0; i < 8; ++i) file[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(file + 8, header, (size_t)hn);
    memcpy(file + 8 + hn, data, data_bytes);
    free(data);
    return file;
}

static void reference(int batch, const float *x, float *y)
{
    for (int b = 0; b < batch; ++b) {
        double flat[FLAT];
        for (int i = 0; i < H - 2; ++i)
            for (int j = 0; j < W - 2; ++j)
                for (int o = 0; o < COUT; ++o) {
                    double s = bias[o];
                    for (int ki = 0; ki < 3; ++ki)
                        for (int kj = 0; kj < 3; ++kj)
                            for (int c = 0; c < CIN; ++c)
                                s += (double)x[((b * H + i + ki) * W + j + kj) * CIN + c] * kernel[((ki * 3 + kj) * CIN + c) * COUT + o];
                    s = (s - mean_[o]) / sqrt((double)var_[o] + 0.001) * gamma_[o] + beta_[o];
                    flat[(i * (W - 2) + j) * COUT + o] = s > 0 ? s : 0;
                }
        for (int u = 0; u < UNITS; ++u) {
            double s = dense_b[u];
            for (int k = 0; k < FLAT; ++k) s += flat[k] * dense_k[k * UNITS + u];
            y[b * UNITS + u] = (float)s;
        }
    }
}

static int load_status(const unsigned char *bytes, size_t size)
{
    cnnc_model *m = NULL;
    cnnc_status s = cnnc_model_load_memory(bytes, size, &m);
    if (s == CNNC_OK) {
        /* Whatever loads must also run. */
        int rank;
        int64_t shape[8];
        if (cnnc_model_num_inputs(m) == 1 && cnnc_model_num_outputs(m) == 1 &&
            cnnc_model_input_shape(m, &rank, shape) == CNNC_OK) {
            int64_t n = 1, o = 1;
            for (int k = 0; k < rank; ++k) n *= shape[k];
            cnnc_model_output_shape(m, &rank, shape);
            for (int k = 0; k < rank; ++k) o *= shape[k];
            if (n < 100000 && o < 100000) {
                float *x = calloc((size_t)n, sizeof *x), *y = malloc((size_t)o * sizeof *y);
                CHECK_OK(cnnc_model_predict(m, 1, x, y));
                free(x);
                free(y);
            }
        }
        cnnc_model_free(m);
    } else {
        CHECK(cnnc_last_error()[0] != '\0');
        CHECK(m == NULL);
    }
    return s;
}

static void replace_and_check(const unsigned char *file, size_t size, const char *from, const char *to)
{
    const unsigned char *hit = NULL;
    size_t n = strlen(from), m = strlen(to);
    for (size_t i = 0; i + n <= size && !hit; ++i) if (memcmp(file + i, from, n) == 0) hit = file + i;
    if (!hit) { fprintf(stderr, "fixture lacks %s\n", from); ++check_failures; return; }
    size_t at = (size_t)(hit - file);
    unsigned char *out = malloc(size - n + m);
    memcpy(out, file, at);
    memcpy(out + at, to, m);
    memcpy(out + at + m, file + at + n, size - at - n);
    /* Keep the length field consistent with the new header, as a forger would. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; --i) hl = hl << 8 | out[i];
    hl = hl - n + m;
    for (int i = 0; i < 8; ++i) out[i] = (unsigned char)(hl >> (8 * i));
    CHECK(load_status(out, size - n + m) != CNNC_OK);
    free(out);
}

typedef struct job { const cnnc_model *m; const float *x; float *y; int batch; cnnc_status s; } job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < 20 && j->s == CNNC_OK; ++r) j->s = cnnc_model_predict(j->m, j->batch, j->x, j->y);
    return NULL;
}

/* A 1x1 convolution over few input channels, without bias, then batch
 * norm and ReLU6, as in a MobileNet: the runtime folds the batch norm and
 * applies bias and ReLU6 to the GEMM's tiles in registers (whole and
 * partial tiles on every ISA path: 105 and 1,400 pixels, 40 outputs).
 * Against a double reference within the rounding of 24-term sums; 2
 * threads give 1 thread's bits; both bounds of ReLU6 are reached. */
#define PW_H 5
#define PW_W 7
#define PW_K 24
#define PW_N 40
static void test_pointwise_stage(void)
{
    static const char *cfg =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"p\", \"batch_input_shape\": [null, 5, 7, 24], \"layers\": ["
        "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"pw\", \"filters\": 40, \"kernel_size\": [1, 1], \"use_bias\": false}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"pbn\", \"epsilon\": 0.001}},"
        "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"r6\", \"max_value\": 6.0}}]}}";
    static float w[PW_K * PW_N], g[PW_N], b[PW_N], mu[PW_N], var[PW_N];
    unsigned state = 11;
    for (int i = 0; i < PW_K * PW_N; ++i) w[i] = check_uniform(&state);
    for (int o = 0; o < PW_N; ++o) {
        g[o] = 1.0f + 0.5f * check_uniform(&state); b[o] = check_uniform(&state);
        mu[o] = 0.3f * check_uniform(&state); var[o] = 1.0f + 0.5f * check_uniform(&state);
    }
    const char *names[5] = {"pw/kernel", "pbn/gamma", "pbn/beta", "pbn/moving_mean", "pbn/moving_variance"};
    const float *data[5] = {w, g, b, mu, var};
    const int ranks[5] = {4, 1, 1, 1, 1};
    int64_t shapes[5 * 8] = {1, 1, PW_K, PW_N};
    for (int t = 1; t < 5; ++t) shapes[8 * t] = PW_N;
    cnnc_model *m = NULL;
    CHECK_OK(cnnc_model_load_tensors(cfg, 5, names, ranks, shapes, data, &m));
    if (!m)
        return;
    const int before = cnnc_get_num_threads();
    static const int batches[2] = {3, 40};
    for (int bi = 0; bi < 2; ++bi) {
        const int batch = batches[bi], pixels = batch * PW_H * PW_W;
        float *x = malloc((size_t)pixels * PW_K * sizeof(float));
        float *y1 = malloc((size_t)pixels * PW_N * sizeof(float)), *y2 = malloc((size_t)pixels * PW_N * sizeof(float));
        for (int i = 0; i < pixels * PW_K; ++i) x[i] = 4.0f * check_uniform(&state);
        CHECK_OK(cnnc_set_num_threads(1));
        CHECK_OK(cnnc_model_predict(m, batch, x, y1));
        CHECK_OK(cnnc_set_num_threads(2));
        CHECK_OK(cnnc_model_predict(m, batch, x, y2));
        CHECK(memcmp(y1, y2, (size_t)pixels * PW_N * sizeof(float)) == 0);
        int bad = 0, low = 0, high = 0;
        for (int p = 0; p < pixels; ++p)
            for (int o = 0; o < PW_N; ++o) {
                const double scale = g[o] / sqrt((double)var[o] + 0.001);
                double s = 0.0, size = 0.0;
                for (int k = 0; k < PW_K; ++k) {
                    s += (double)x[p * PW_K + k] * w[k * PW_N + o];
                    size += fabs((double)x[p * PW_K + k] * w[k * PW_N + o] * scale);
                }
                double want = (s - mu[o]) * scale + b[o];
                want = want < 0.0 ? 0.0 : want > 6.0 ? 6.0 : want;
                size += fabs(mu[o] * scale) + fabs(b[o]);
                const float got = y1[p * PW_N + o];
                bad += !(fabs(got - want) <= (PW_K + 4) * 0x1p-23 * size);
                low += got == 0.0f;
                high += got == 6.0f;
            }
        CHECK(bad == 0);
        CHECK(low > 0 && high > 0);
        free(x);
        free(y1);
        free(y2);
    }
    /* The panels alone hold the kernel (whole panels of up to 32 columns
     * and the bias, not also a copy of the kernel); under another ISA it is
     * unpacked per call: the bits of a model loaded there. */
    CHECK(cnnc_model_weight_bytes(m) <= (size_t)PW_K * 64 * sizeof(float) + 2 * PW_N * sizeof(float));
    const cnnc_isa isa = cnnc_get_isa(), other = isa == CNNC_ISA_SCALAR ? cnnc_max_isa() : CNNC_ISA_SCALAR;
    if (other != isa) {
        const int pixels = 2 * PW_H * PW_W;
        float *x = malloc((size_t)pixels * PW_K * sizeof(float));
        float *y1 = malloc((size_t)pixels * PW_N * sizeof(float)), *y2 = malloc((size_t)pixels * PW_N * sizeof(float));
        for (int i = 0; i < pixels * PW_K; ++i) x[i] = 4.0f * check_uniform(&state);
        CHECK_OK(cnnc_set_isa(other));
        cnnc_model *there = NULL;
        CHECK_OK(cnnc_model_load_tensors(cfg, 5, names, ranks, shapes, data, &there));
        CHECK_OK(cnnc_model_predict(m, 2, x, y1));
        if (there) CHECK_OK(cnnc_model_predict(there, 2, x, y2));
        CHECK(memcmp(y1, y2, (size_t)pixels * PW_N * sizeof(float)) == 0);
        CHECK_OK(cnnc_set_isa(isa));
        cnnc_model_free(there);
        free(x);
        free(y1);
        free(y2);
    }
    CHECK_OK(cnnc_set_num_threads(before));
    cnnc_model_free(m);
}

/* A dense layer (K inputs, N units, bias), batch norm and ReLU: at one or
 * two rows per call the runtime reads the kernel in place (the lent one
 * with the batch norm applied as it is read), and the first call of more
 * rows packs it, once, from several threads at once too. Against a double
 * reference; the rows of few-row calls equal those of a packed call to the
 * bit, lent and copied kernels too, and 2 threads give 1 thread's bits. */
#define DN_K 300
#define DN_N 70
#define DN_ROWS 5
typedef struct dense_job { const cnnc_model *m; const float *x; float *y; int batch; cnnc_status s; } dense_job;

static void *dense_job_run(void *arg)
{
    dense_job *j = arg;
    j->s = cnnc_model_predict(j->m, j->batch, j->x, j->y);
    return NULL;
}

static void test_dense_in_place(void)
{
    static const char *cfg =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"d\", \"batch_input_shape\": [null, 300], \"layers\": ["
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 70}},"
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"fbn\", \"epsilon\": 0.001}},"
        "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"fr\"}}]}}";
    static float w[DN_K * DN_N], bias_[DN_N], g[DN_N], b[DN_N], mu[DN_N], var[DN_N], x[DN_ROWS * DN_K];
    static float y_many[DN_ROWS * DN_N], y_few[DN_ROWS * DN_N], y_other[DN_ROWS * DN_N];
    unsigned state = 29;
    for (int i = 0; i < DN_K * DN_N; ++i) w[i] = check_uniform(&state);
    for (int i = 0; i < DN_ROWS * DN_K; ++i) x[i] = check_uniform(&state);
    for (int o = 0; o < DN_N; ++o) {
        bias_[o] = check_uniform(&state); g[o] = 1.0f + 0.5f * check_uniform(&state); b[o] = check_uniform(&state);
        mu[o] = 0.3f * check_uniform(&state); var[o] = 1.0f + 0.5f * check_uniform(&state);
    }
    const char *names[6] = {"fc/kernel", "fc/bias", "fbn/gamma", "fbn/beta", "fbn/moving_mean", "fbn/moving_variance"};
    const float *data[6] = {w, bias_, g, b, mu, var};
    const int ranks[6] = {2, 1, 1, 1, 1, 1};
    int64_t shapes[6 * 8] = {DN_K, DN_N};
    for (int t = 1; t < 6; ++t) shapes[8 * t] = DN_N;
    cnnc_model *lent = NULL, *copied = NULL;
    CHECK_OK(cnnc_model_load_tensors_borrowed(cfg, 6, names, ranks, shapes, data, &lent));
    CHECK_OK(cnnc_model_load_tensors(cfg, 6, names, ranks, shapes, data, &copied));
    if (!lent || !copied)
        return;
    const size_t kernel_bytes = sizeof w, lent_small = cnnc_model_weight_bytes(lent);
    CHECK(cnnc_model_weight_bytes(copied) - lent_small == kernel_bytes - DN_N * sizeof(double));
    const int before = cnnc_get_num_threads();
    /* Few rows: one at a time, then two, on 1 and 2 threads. */
    CHECK_OK(cnnc_set_num_threads(2));
    for (int r = 0; r < DN_ROWS; ++r) CHECK_OK(cnnc_model_predict(lent, 1, x + r * DN_K, y_few + r * DN_N));
    CHECK_OK(cnnc_set_num_threads(1));
    CHECK_OK(cnnc_model_predict(lent, 2, x, y_other));
    CHECK(memcmp(y_other, y_few, 2 * DN_N * sizeof(float)) == 0);
    CHECK_OK(cnnc_model_predict(copied, 2, x, y_other));
    CHECK(memcmp(y_other, y_few, 2 * DN_N * sizeof(float)) == 0);
    CHECK(cnnc_model_weight_bytes(lent) == lent_small);
    /* Many rows pack the kernel, once: at least its bytes, at most whole
     * panels of 32 columns. */
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_OK(cnnc_model_predict(lent, DN_ROWS, x, y_many));
    const size_t packed = cnnc_model_weight_bytes(lent) - lent_small;
    CHECK(packed >= kernel_bytes && packed <= (size_t)DN_K * 96 * sizeof(float));
    CHECK_OK(cnnc_model_predict(lent, DN_ROWS, x, y_other));
    CHECK(cnnc_model_weight_bytes(lent) - lent_small == packed);
    CHECK(memcmp(y_many, y_few, sizeof y_many) == 0);
    int bad = 0;
    for (int r = 0; r < DN_ROWS; ++r)
        for (int o = 0; o < DN_N; ++o) {
            const double scale = g[o] / sqrt((double)var[o] + 0.001);
            double s = bias_[o], size = fabs(bias_[o]);
            for (int k = 0; k < DN_K; ++k) {
                s += (double)x[r * DN_K + k] * w[k * DN_N + o];
                size += fabs((double)x[r * DN_K + k] * w[k * DN_N + o]);
            }
            double want = (s - mu[o]) * scale + b[o];
            want = want < 0.0 ? 0.0 : want;
            size = size * fabs(scale) + fabs(mu[o] * scale) + fabs(b[o]);
            bad += !(fabs(y_many[r * DN_N + o] - want) <= (DN_K + 8) * 0x1p-23 * size);
        }
    CHECK(bad == 0);
    /* A fresh model packed by concurrent calls of many rows, beside calls of one. */
    cnnc_model *fresh = NULL;
    CHECK_OK(cnnc_model_load_tensors_borrowed(cfg, 6, names, ranks, shapes, data, &fresh));
    if (fresh) {
        enum { JOBS = 6 };
        static float outs[JOBS][DN_ROWS * DN_N];
        dense_job jobs[JOBS];
        pthread_t threads[JOBS];
        for (int t = 0; t < JOBS; ++t) {
            jobs[t] = (dense_job){fresh, t % 2 ? x + (t % DN_ROWS) * DN_K : x, outs[t], t % 2 ? 1 : DN_ROWS, CNNC_OK};
            CHECK(pthread_create(&threads[t], NULL, dense_job_run, &jobs[t]) == 0);
        }
        for (int t = 0; t < JOBS; ++t) {
            pthread_join(threads[t], NULL);
            CHECK_OK(jobs[t].s);
            const float *want = t % 2 ? y_many + (t % DN_ROWS) * DN_N : y_many;
            CHECK(memcmp(outs[t], want, (size_t)jobs[t].batch * DN_N * sizeof(float)) == 0);
        }
        CHECK(cnnc_model_weight_bytes(fresh) == lent_small + packed);
        cnnc_model_free(fresh);
    }
    CHECK_OK(cnnc_set_num_threads(before));
    cnnc_model_free(lent);
    cnnc_model_free(copied);
}

int main(void)
{
    test_pointwise_stage();
    test_dense_in_place();
    unsigned state = 7;
    for (size_t i = 0; i < sizeof kernel / 4; ++i) kernel[i] = check_uniform(&state) * 0.5f;
    for (int o = 0; o < COUT; ++o) {
        bias[o] = check_uniform(&state); gamma_[o] = 1.0f + 0.5f * check_uniform(&state);
        beta_[o] = check_uniform(&state); mean_[o] = check_uniform(&state) * 0.3f;
        var_[o] = 1.0f + 0.5f * check_uniform(&state);
    }
    for (int i = 0; i < FLAT * UNITS; ++i) dense_k[i] = check_uniform(&state);
    for (int u = 0; u < UNITS; ++u) dense_b[u] = check_uniform(&state);

    size_t size;
    unsigned char *file = make_file(NULL, &size);
    cnnc_model *m = NULL;
    CHECK_OK(cnnc_model_load_memory(file, size, &m));
    int rank;
    int64_t shape[8];
    CHECK_OK(cnnc_model_input_shape(m, &rank, shape));
    CHECK(rank == 3 && shape[0] == H && shape[1] == W && shape[2] == CIN);
    CHECK_OK(cnnc_model_output_shape(m, &rank, shape));
    CHECK(rank == 1 && shape[0] == UNITS);
    enum { BATCH = 5 };
    float x[BATCH * H * W * CIN], y[BATCH * UNITS], want[BATCH * UNITS];
    for (size_t i = 0; i < sizeof x / 4; ++i) x[i] = check_uniform(&state);
    CHECK_OK(cnnc_model_predict(m, BATCH, x, y));
    reference(BATCH, x, want);
    for (int i = 0; i < BATCH * UNITS; ++i) CHECK_NEAR(y[i], want[i], 1e-5);

    /* From a file (read a tensor at a time): the same outputs; a flipped
     * byte in a tensor and every cut of the data give a status. */
    {
        char path[] = "/tmp/cnnc_test_model_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK(write(fd, file, size) == (ssize_t)size);
            cnnc_model *from_path = NULL;
            CHECK_OK(cnnc_model_load(path, &from_path));
            float y_path[BATCH * UNITS];
            if (from_path) CHECK_OK(cnnc_model_predict(from_path, BATCH, x, y_path));
            CHECK(memcmp(y_path, y, sizeof y) == 0);
            cnnc_model_free(from_path);
            unsigned char last = file[size - 1];
            unsigned char flipped = (unsigned char)(last ^ 0x40);
            CHECK(pwrite(fd, &flipped, 1, (off_t)(size - 1)) == 1);
            from_path = NULL;
            CHECK_STATUS(cnnc_model_load(path, &from_path), CNNC_ERR_FORMAT);
            CHECK(from_path == NULL);
            CHECK(pwrite(fd, &last, 1, (off_t)(size - 1)) == 1);
            for (size_t cut = size - 1; cut + 64 > size && cut > 0; --cut) {
                CHECK(ftruncate(fd, (off_t)cut) == 0);
                CHECK(cnnc_model_load(path, &from_path) != CNNC_OK);
                CHECK(from_path == NULL);
            }
            close(fd);
            unlink(path);
        }
    }

    /* Concurrent calls on one model agree with a single call. */
    job jobs[4];
    pthread_t threads[4];
    float ys[4][BATCH * UNITS];
    for (int t = 0; t < 4; ++t) {
        jobs[t] = (job){m, x, ys[t], t + 2 > BATCH ? BATCH : t + 2, CNNC_OK};
        pthread_create(&threads[t], NULL, run_job, &jobs[t]);
    }
    for (int t = 0; t < 4; ++t) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].s == CNNC_OK);
        CHECK(memcmp(ys[t], y, (size_t)jobs[t].batch * UNITS * sizeof(float)) == 0);
    }

    /* The profile: one node per layer call in order (batch norm folded into
     * the convolution, the ReLU into its output stage, the flatten an
     * alias), the same outputs as predict, time only where a node runs. */
    CHECK(cnnc_model_num_nodes(m) == 5);
    CHECK(cnnc_model_num_nodes(NULL) == 0);
    {
        static const char *names[5] = {"conv", "bn", "relu", "flat", "dense"};
        static const char *kinds[5] = {"conv", "folded", "folded", "folded", "dense"};
        double wall[5], cpu[5];
        float yp[BATCH * UNITS];
        const float *xs[1] = {x};
        float *yps[1] = {yp};
        CHECK_OK(cnnc_model_predict_profile(m, BATCH, xs, yps, wall, cpu));
        CHECK(memcmp(yp, y, sizeof y) == 0);
        for (int i = 0; i < 5; ++i) {
            const char *name, *kind;
            CHECK_OK(cnnc_model_node_info(m, i, &name, &kind));
            CHECK(strcmp(name, names[i]) == 0 && strcmp(kind, kinds[i]) == 0);
            int folded = strcmp(kinds[i], "folded") == 0;
            CHECK(folded ? wall[i] == 0.0 && cpu[i] == 0.0 : wall[i] >= 0.0 && cpu[i] >= 0.0 && wall[i] < 60.0);
        }
        CHECK_OK(cnnc_model_predict_profile(m, BATCH, xs, yps, NULL, cpu));
        CHECK(memcmp(yp, y, sizeof y) == 0);
        const char *name, *kind;
        CHECK_STATUS(cnnc_model_node_info(m, 5, &name, &kind), CNNC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(cnnc_model_node_info(m, -1, &name, &kind), CNNC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(cnnc_model_node_info(m, 0, NULL, &kind), CNNC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(cnnc_model_predict_profile(m, 0, xs, yps, wall, cpu), CNNC_ERR_INVALID_ARGUMENT);
    }

    /* Loaded from the arrays, copied or lent: the same bits as the file;
     * the lent kernels are neither copied nor written (batch norm folds into
     * the packed form only), so the model holds exactly their bytes less
     * but the folded scales (one double per channel). */
    {
        const char *names[N_TENSORS];
        const float *data[N_TENSORS];
        int ranks[N_TENSORS];
        int64_t shapes[N_TENSORS * 8];
        memset(shapes, 0, sizeof shapes);
        for (int t = 0; t < N_TENSORS; ++t) {
            names[t] = tensors[t].name;
            data[t] = tensors[t].data;
            const char *dims = tensors[t].shape;
            ranks[t] = 0;
            for (const char *c = dims + 1; *c && *c != ']'; ++c)
                if (*c >= '0' && *c <= '9') {
                    int64_t d = 0;
                    while (*c >= '0' && *c <= '9') d = 10 * d + (*c++ - '0');
                    shapes[8 * t + ranks[t]++] = d;
                    --c;
                }
        }
        float kernel_before[sizeof kernel / 4];
        memcpy(kernel_before, kernel, sizeof kernel);
        cnnc_model *copied = NULL, *lent = NULL;
        CHECK_OK(cnnc_model_load_tensors(config, N_TENSORS, names, ranks, shapes, data, &copied));
        CHECK_OK(cnnc_model_load_tensors_borrowed(config, N_TENSORS, names, ranks, shapes, data, &lent));
        float y_copied[BATCH * UNITS], y_lent[BATCH * UNITS];
        CHECK_OK(cnnc_model_predict(copied, BATCH, x, y_copied));
        CHECK_OK(cnnc_model_predict(lent, BATCH, x, y_lent));
        CHECK(memcmp(y_copied, y, sizeof y) == 0);
        CHECK(memcmp(y_lent, y, sizeof y) == 0);
        CHECK(memcmp(kernel_before, kernel, sizeof kernel) == 0);
        CHECK(cnnc_model_weight_bytes(copied) - cnnc_model_weight_bytes(lent) ==
              sizeof kernel + sizeof dense_k - COUT * sizeof(double));
        CHECK(cnnc_model_weight_bytes(m) == cnnc_model_weight_bytes(copied));
        CHECK(cnnc_model_weight_bytes(NULL) == 0);
        CHECK_STATUS(cnnc_model_load_tensors_borrowed(config, N_TENSORS, names, ranks, shapes, data, NULL),
                     CNNC_ERR_INVALID_ARGUMENT);
        cnnc_model_free(copied);
        cnnc_model_free(lent);
    }

    /* Misuse. */
    CHECK_STATUS(cnnc_model_predict(m, 0, x, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_model_predict(m, 1, NULL, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_model_predict(NULL, 1, x, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_model_predict(m, INT64_MAX / 2, x, y), CNNC_ERR_OVERFLOW);
    CHECK_STATUS(cnnc_model_input_shape_at(m, 1, &rank, shape), CNNC_ERR_INVALID_ARGUMENT);
    cnnc_model *other = NULL;
    CHECK_STATUS(cnnc_model_load_memory(NULL, 5, &other), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_model_load("/nonexistent/model.cnnc", &other), CNNC_ERR_IO);
    cnnc_model_free(NULL);

    /* Every truncation. */
    for (size_t n = 0; n < size; ++n) CHECK(load_status(file, n) != CNNC_OK);
    /* Trailing bytes. */
    {
        unsigned char *longer = malloc(size + 4);
        memcpy(longer, file, size);
        memset(longer + size, 0, 4);
        CHECK(load_status(longer, size + 4) != CNNC_OK);
        free(longer);
    }
    /* Length fields: zero, small, off by one, beyond the file, huge. */
    uint64_t lengths[] = {0, 1, 7, 8, size - 9, size - 8, size, (uint64_t)1 << 40, UINT64_MAX, (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; ++i) {
        unsigned char *copy = malloc(size);
        memcpy(copy, file, size);
        for (int k = 0; k < 8; ++k) copy[k] = (unsigned char)(lengths[i] >> (8 * k));
        CHECK(load_status(copy, size) != CNNC_OK);
        free(copy);
    }
    /* Byte flips everywhere: a flip in the data breaks a checksum, one in the
     * header must fail or load a model that runs. */
    unsigned char *copy = malloc(size);
    for (size_t i = 0; i < size; ++i) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, file, size);
            copy[i] ^= (unsigned char)(1u << bit);
            load_status(copy, size);
        }
    }
    free(copy);
    /* Forged shapes, offsets, dtypes and sizes, with consistent lengths. */
    replace_and_check(file, size, "[3,3,2,3]", "[3,3,2,300000000000]");
    replace_and_check(file, size, "[3,3,2,3]", "[99999999999999999999,3,2,3]");
    replace_and_check(file, size, "[3,3,2,3]", "[4611686018427387904,4,1,1]");
    replace_and_check(file, size, "[3,3,2,3]", "[-3,3,2,3]");
    replace_and_check(file, size, "[3,3,2,3]", "[3,3,2,3,1,1,1,1,1]");
    replace_and_check(file, size, "[3,3,2,3]", "[3,3,2.5,3]");
    replace_and_check(file, size, "\"data_offsets\":[0,", "\"data_offsets\":[4,");
    replace_and_check(file, size, "\"data_offsets\":[0,", "\"data_offsets\":[-1,");
    replace_and_check(file, size, "\"data_offsets\":[0,", "\"data_offsets\":[18446744073709551615,");
    replace_and_check(file, size, "\"F32\"", "\"F99\"");
    replace_and_check(file, size, "\"F32\"", "\"I32\"");
    replace_and_check(file, size, "\"format_version\":\"2\"", "\"format_version\":\"9\"");
    replace_and_check(file, size, "\"kind\":\"model\"", "\"kind\":\"weights\"");
    replace_and_check(file, size, "{\"conv/kernel\"", "{\"conv/bias\":1,\"conv/kernel\"");
    replace_and_check(file, size, "\"format\":\"cnnc\"", "\"format\":\"cnnc\",\"format\":\"cnnc\"");
    replace_and_check(file, size, "\"format\":\"cnnc\"", "\"format\":\"cn\\ud800nc\"");
    replace_and_check(file, size, "\"kind\":\"model\"", "\"kind\":\"model\",\"extra\":\"x\"");
    replace_and_check(file, size, ",\"metadata_checksum\"", ",\"other\"");
    /* Model configs: unknown layers, bad arguments, huge tensors, deep nesting. */
    const char *configs[] = {
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"Mystery\", \"config\": {\"name\": \"conv\"}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [9, 9]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [3, 3], \"strides\": 0}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4000000, 4000000, 4000000], \"layers\": []}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"UpSampling2D\", \"config\": {\"name\": \"u\", \"size\": [65536, 65536]}}, {\"class_name\": \"UpSampling2D\", \"config\": {\"name\": \"v\", \"size\": [65536, 65536]}}]}}",
        "{\"class_name\": \"Functional\", \"config\": {\"layers\": [{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"name\": \"d\", \"units\": 2}, \"inbound_nodes\": [[[\"nowhere\", 0, 0]]]}], \"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"d\", 0, 0]]}}",
        "[1, 2, 3]",
        /* The layers and options added for ONNX import: sizes, ranges, missing weights. */
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Pad\", \"config\": {\"name\": \"p\", \"paddings\": [[16777216, 16777216], [16777216, 0], [0, 0]]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Pad\", \"config\": {\"name\": \"p\", \"paddings\": [[5, 0], [0, 0], [0, 0]], \"mode\": \"reflect\"}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Pad\", \"config\": {\"name\": \"p\", \"paddings\": [[1, 0], [0, 0]]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"m\", \"pool_size\": [3, 3], \"dilation_rate\": [1073741824, 1]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"m\", \"pool_size\": [3, 3], \"padding\": [[3, 0], [0, 0]]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"AveragePooling2D\", \"config\": {\"name\": \"m\", \"pool_size\": [2, 2], \"padding\": [[1, 0], [0, -1]], \"count_include_pad\": true}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [3, 3], \"padding\": [[1, 1], [1]]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Clip\", \"config\": {\"name\": \"c\", \"min_value\": 1.0, \"max_value\": 0.0}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"PReLU\", \"config\": {\"name\": \"conv\", \"shared_axes\": [1, 2]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"ConstantArithmetic\", \"config\": {\"name\": \"conv\", \"operation\": \"add\", \"constant_shape\": [3]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"ConstantArithmetic\", \"config\": {\"name\": \"conv\", \"operation\": \"pow\", \"constant_shape\": [3]}}]}}",
        /* Separable convolutions, layer and group normalization, the spatial transformer, embeddings. */
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"SeparableConv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [3, 3]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"SeparableConv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, \"kernel_size\": [3, 3], \"depth_multiplier\": 9223372036854775807}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"bn\"}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 3], \"layers\": [{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"bn\", \"axis\": [1, 3]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 3], \"layers\": [{\"class_name\": \"LayerNormalization\", \"config\": {\"name\": \"bn\", \"axis\": [-9]}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 3], \"layers\": [{\"class_name\": \"GroupNormalization\", \"config\": {\"name\": \"bn\", \"groups\": 4}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 3], \"layers\": [{\"class_name\": \"GroupNormalization\", \"config\": {\"name\": \"bn\", \"groups\": 3, \"epsilon\": 0}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5], \"layers\": [{\"class_name\": \"AffineGridGenerator\", \"config\": {\"name\": \"g\", \"height\": 3, \"width\": 4}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 6], \"layers\": [{\"class_name\": \"AffineGridGenerator\", \"config\": {\"name\": \"g\", \"height\": 16777216, \"width\": 16777216}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], \"layers\": [{\"class_name\": \"BilinearSampler\", \"config\": {\"name\": \"s\"}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4], \"layers\": [{\"class_name\": \"Embedding\", \"config\": {\"name\": \"e\", \"input_dim\": 5, \"output_dim\": 3}}]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 4], \"layers\": [{\"class_name\": \"Embedding\", \"config\": {\"name\": \"e\", \"input_dim\": 33554432, \"output_dim\": 3}}]}}",
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; ++i) {
        size_t n;
        unsigned char *f = make_file(configs[i], &n);
        CHECK(load_status(f, n) != CNNC_OK);
        free(f);
    }
    {
        /* The added layers run inside their buffers (ASan) and give values in range. */
        size_t n;
        unsigned char *f = make_file("{\"class_name\": \"Sequential\", \"config\": {\"batch_input_shape\": [null, 5, 6, 2], \"layers\": [{\"class_name\": \"Pad\", \"config\": {\"name\": \"p\", \"paddings\": [[2, 1], [3, 2], [0, 1]], \"mode\": \"reflect\"}}, {\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"m\", \"pool_size\": [3, 2], \"strides\": [2, 2], \"padding\": [[1, 1], [1, 0]], \"dilation_rate\": [2, 1], \"ceil_mode\": true}}, {\"class_name\": \"AveragePooling2D\", \"config\": {\"name\": \"a\", \"pool_size\": [2, 2], \"strides\": [2, 2], \"padding\": [[1, 0], [0, 1]], \"count_include_pad\": true, \"ceil_mode\": true}}, {\"class_name\": \"AveragePooling2D\", \"config\": {\"name\": \"b\", \"pool_size\": [2, 2], \"strides\": [1, 1], \"padding\": \"same\", \"dilation_rate\": [1, 2], \"ceil_mode\": true}}, {\"class_name\": \"Pad\", \"config\": {\"name\": \"e\", \"paddings\": [[0, 2], [1, 0], [0, 0]], \"mode\": \"edge\"}}, {\"class_name\": \"HardSigmoid\", \"config\": {\"name\": \"h\", \"alpha\": 0.2, \"beta\": 0.5}}, {\"class_name\": \"Clip\", \"config\": {\"name\": \"c\", \"min_value\": 0.25, \"max_value\": null}}]}}", &n);
        cnnc_model *added = NULL;
        CHECK_OK(cnnc_model_load_memory(f, n, &added));
        int rank = 0;
        int64_t shape[8] = {0}, count = 1;
        if (added) {
            CHECK_OK(cnnc_model_output_shape(added, &rank, shape));
            for (int d = 0; d < rank; ++d) count *= shape[d];
            float xin[2 * 5 * 6 * 2], *yout = malloc((size_t)(2 * count) * sizeof *yout);
            for (int i = 0; i < 2 * 5 * 6 * 2; ++i) xin[i] = (float)((i * 37) % 23) - 11.0f;
            CHECK_OK(cnnc_model_predict(added, 2, xin, yout));
            for (int64_t i = 0; i < 2 * count; ++i) CHECK(yout[i] >= 0.25f && yout[i] <= 1.0f);
            free(yout);
            cnnc_model_free(added);
        }
        free(f);
    }
    {
        /* Layer and group normalization (reusing the batch norm's gamma and
         * beta by name) and the spatial transformer run inside their buffers. */
        size_t n;
        unsigned char *f = make_file("{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
            "{\"class_name\": \"InputLayer\", \"name\": \"img\", \"config\": {\"name\": \"img\", \"batch_shape\": [null, 5, 6, 3]}, \"inbound_nodes\": []},"
            "{\"class_name\": \"InputLayer\", \"name\": \"theta\", \"config\": {\"name\": \"theta\", \"batch_shape\": [null, 2, 3]}, \"inbound_nodes\": []},"
            "{\"class_name\": \"LayerNormalization\", \"name\": \"bn\", \"config\": {\"name\": \"bn\"}, \"inbound_nodes\": [[[\"img\", 0, 0]]]},"
            "{\"class_name\": \"GroupNormalization\", \"name\": \"bn\", \"config\": {\"name\": \"bn\", \"groups\": 3, \"axis\": 3}, \"inbound_nodes\": [[[\"bn\", 0, 0]]]},"
            "{\"class_name\": \"AffineGridGenerator\", \"name\": \"g\", \"config\": {\"name\": \"g\", \"height\": 7, \"width\": 4}, \"inbound_nodes\": [[[\"theta\", 0, 0]]]},"
            "{\"class_name\": \"BilinearSampler\", \"name\": \"s\", \"config\": {\"name\": \"s\"}, \"inbound_nodes\": [[[\"bn\", 0, 0], [\"g\", 0, 0]]]}],"
            "\"input_layers\": [[\"img\", 0, 0], [\"theta\", 0, 0]], \"output_layers\": [[\"s\", 0, 0]]}}", &n);
        cnnc_model *st = NULL;
        CHECK_OK(cnnc_model_load_memory(f, n, &st));
        if (st) {
            int rank = 0;
            int64_t shape[8] = {0};
            CHECK_OK(cnnc_model_output_shape_at(st, 0, &rank, shape));
            CHECK(rank == 3 && shape[0] == 7 && shape[1] == 4 && shape[2] == 3);
            float img[2 * 5 * 6 * 3], theta[2 * 6] = {1.3f, 0.2f, -0.4f, -0.1f, 0.9f, 0.3f, 2.0f, 0, 0, 0, 2.0f, 0};
            float out[2 * 7 * 4 * 3];
            for (int i = 0; i < 2 * 5 * 6 * 3; ++i) img[i] = (float)((i * 37) % 23) - 11.0f;
            const float *xs[2] = {img, theta};
            float *ys[1] = {out};
            CHECK_OK(cnnc_model_predict_multi(st, 2, xs, ys));
            /* A standardized value of 30 positions is within sqrt(29); gamma is within 1.5 and beta
             * within 1; bilinear weights sum to at most 1: every output lies within 10. */
            for (int i = 0; i < 2 * 7 * 4 * 3; ++i) CHECK(out[i] == out[i] && out[i] > -10.0f && out[i] < 10.0f);
            cnnc_model_free(st);
        }
        free(f);
    }
    {
        enum { DEPTH = 3000 };
        char *deep = malloc(2 * DEPTH + 1);
        for (int i = 0; i < DEPTH; ++i) { deep[i] = '['; deep[DEPTH + i] = ']'; }
        deep[2 * DEPTH] = '\0';
        size_t n;
        unsigned char *f = make_file(deep, &n);
        CHECK_STATUS(cnnc_model_load_memory(f, n, &other), CNNC_ERR_FORMAT);
        CHECK(strstr(cnnc_last_error(), "nesting") != NULL);
        free(f);
        free(deep);
    }
    free(file);
    cnnc_model_free(m);
    return check_finish("test_model");
}
