/* cnnc_sgemm against a double-precision reference: every transpose pair,
 * sizes around the micro-tile and cache blocks of every ISA, padded leading
 * dimensions, alpha/beta cases, 1 and 2 threads, repeatability, and bad
 * arguments. Buffers are allocated to their exact extent so that AddressSanitizer
 * catches any access past them. */
#include <string.h>
#include "check.h"

static unsigned seed = 7;

static float *random_matrix(int64_t rows, int64_t cols, int64_t ld)
{
    int64_t count = rows > 0 ? (rows - 1) * ld + cols : 0;
    float *m = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    for (int64_t i = 0; i < count; ++i)
        m[i] = check_uniform(&seed);
    return m;
}

/* Returns the max error relative to sum |a||b| scale. */
static void check_case(cnnc_transpose ta, cnnc_transpose tb, int64_t M, int64_t N, int64_t K,
                       float alpha, float beta, int64_t pad, int threads)
{
    int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
    float *A = random_matrix(a_rows, a_cols, lda);
    float *B = random_matrix(b_rows, b_cols, ldb);
    float *C = random_matrix(M, N, ldc);
    int64_t c_count = (M - 1) * ldc + N;
    float *C0 = malloc((size_t)c_count * sizeof(float));
    if (beta == 0.0f)
        for (int64_t i = 0; i < c_count; ++i)
            C[i] = NAN; /* must be ignored */
    memcpy(C0, C, (size_t)c_count * sizeof(float));
    CHECK_OK(cnnc_set_num_threads(threads));
    CHECK_OK(cnnc_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
    int bad = 0;
    for (int64_t i = 0; i < M && !bad; ++i)
        for (int64_t j = 0; j < N && !bad; ++j) {
            double sum = 0.0, mag = 0.0;
            for (int64_t p = 0; p < K; ++p) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                sum += a * b;
                mag += fabs(a * b);
            }
            double want = alpha * sum + (beta != 0.0f ? beta * (double)C0[i * ldc + j] : 0.0);
            double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta) + 1.0);
            if (!(fabs(C[i * ldc + j] - want) <= tol)) {
                fprintf(stderr, "ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g pad=%lld threads=%d: "
                        "C[%lld][%lld] = %g, wanted %g\n", ta, tb, (long long)M, (long long)N,
                        (long long)K, alpha, beta, (long long)pad, threads, (long long)i,
                        (long long)j, C[i * ldc + j], want);
                bad = 1;
            }
        }
    /* padding between rows of C is untouched */
    for (int64_t i = 0; i + 1 < M && !bad; ++i)
        for (int64_t j = N; j < ldc; ++j)
            if (memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float)) != 0)
                bad = 1;
    CHECK(!bad);
    /* repeatable bit for bit */
    float *C1 = malloc((size_t)c_count * sizeof(float));
    memcpy(C1, C0, (size_t)c_count * sizeof(float));
    CHECK_OK(cnnc_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc));
    CHECK(memcmp(C, C1, (size_t)c_count * sizeof(float)) == 0);
    free(A); free(B); free(C); free(C0); free(C1);
}

static void test_shapes(void)
{
    /* around MR (4, 6, 14), NR (8, 16, 32), and a few odd shapes */
    static const int64_t sizes[][3] = {
        {1, 1, 1}, {1, 7, 3}, {7, 1, 5}, {3, 5, 1}, {13, 17, 19}, {14, 32, 9}, {15, 33, 10},
        {5, 31, 27}, {28, 64, 64}, {29, 65, 7}, {6, 16, 300}, {37, 9, 257}, {64, 10, 128},
        {2, 200, 33}, {200, 2, 40}, {1, 300, 70}, {300, 1, 70}, {50, 150, 37}, {29, 200, 300},
        {33, 161, 16}, {15, 140, 1},
    };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
        for (int t = 0; t < 4; ++t)
            check_case(t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, 0, 1);
}

static void test_blocks(void)
{
    /* crosses MC (128/240/336), KC (256) and NC (2048/4096) boundaries, 2 threads */
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 341, 45, 520, 1.0f, 0.0f, 0, 2);
    check_case(CNNC_TRANS, CNNC_NO_TRANS, 130, 70, 513, 0.5f, 2.0f, 3, 2);
    check_case(CNNC_NO_TRANS, CNNC_TRANS, 17, 4100, 3, 1.0f, 1.0f, 0, 2);
    check_case(CNNC_TRANS, CNNC_TRANS, 250, 37, 260, -1.0f, 0.5f, 1, 1);
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 3, 200, 300, 1.0f, 0.0f, 0, 2);
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 281, 150, 513, 1.0f, 0.0f, 0, 2);
    check_case(CNNC_TRANS, CNNC_TRANS, 281, 150, 513, 1.0f, 0.0f, 0, 1);
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 15, 3, 70000, 1.0f, 0.5f, 0, 2);
}

static void test_few_rows(void)
{
    /* few rows on 2 threads, split by the panels of C (a dense layer at
     * batch 1 or 2, 49 pixels of a 7 x 7 image), the running team held at 2 */
    int adaptive = cnnc_get_adaptive_team();
    cnnc_set_adaptive_team(0);
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 1, 1000, 1024, 1.0f, 0.0f, 3, 2);
    check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 999, 1100, 1.0f, 0.5f, 0, 2);
    check_case(CNNC_NO_TRANS, CNNC_TRANS, 49, 1024, 512, 1.0f, 0.0f, 1, 2);
    check_case(CNNC_TRANS, CNNC_NO_TRANS, 35, 700, 300, 1.0f, 0.0f, 0, 2);
    cnnc_set_adaptive_team(adaptive);
}

static void test_alpha_beta(void)
{
    for (int threads = 1; threads <= 2; ++threads) {
        check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 33, 47, 29, 2.5f, 0.0f, 2, threads);
        check_case(CNNC_NO_TRANS, CNNC_TRANS, 33, 47, 29, -1.0f, 1.0f, 0, threads);
        check_case(CNNC_TRANS, CNNC_NO_TRANS, 33, 47, 29, 0.25f, -3.0f, 5, threads);
        check_case(CNNC_TRANS, CNNC_TRANS, 33, 47, 29, 0.0f, 0.5f, 0, threads);
        check_case(CNNC_NO_TRANS, CNNC_NO_TRANS, 33, 47, 29, 0.0f, 0.0f, 1, threads);
    }
    /* K == 0 scales C, A and B unread */
    float C[6] = {1, 2, 3, 4, 5, 6};
    CHECK_OK(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, C, 3));
    CHECK(C[0] == 2.0f && C[5] == 12.0f);
    C[0] = NAN;
    CHECK_OK(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 0.0f, C, 3));
    CHECK(C[0] == 0.0f && C[5] == 0.0f);
}

static void test_errors(void)
{
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, -1, 2, 2, 1, a, 2, b, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "M = -1") != NULL);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1, a, 1, b, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "lda") != NULL);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_TRANS, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "ldb") != NULL);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1, a, 2, b, 2, 0, c, 1), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "ldc") != NULL);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1, NULL, 2, b, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "A is NULL") != NULL);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1, a, 2, NULL, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1, a, 2, b, 2, 0, NULL, 2), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_sgemm((cnnc_transpose)5, CNNC_NO_TRANS, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2), CNNC_ERR_INVALID_ARGUMENT);
    /* empty products do nothing, even with NULL pointers */
    CHECK_OK(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 0, 2, 2, 1, NULL, 2, NULL, 2, 0, NULL, 2));
    CHECK_OK(cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 0, 2, 1, NULL, 2, NULL, 1, 0, NULL, 1));
}

int main(void)
{
    test_shapes();
    test_blocks();
    test_few_rows();
    test_alpha_beta();
    test_errors();
    cnnc_release_workspace();
    return check_finish("test_gemm");
}
