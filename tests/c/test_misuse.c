/* Misuse of the public C API: NULL pointers, negative, zero and overflowing
 * sizes, outputs overlapping inputs, bad enums, bad CNNC_ISA names, calls
 * before anything is initialized. Every case runs in a child process, so a
 * crash is counted rather than ending the run; the test fails on any crash,
 * any OK status for an invalid call, and any failure without a message.
 * Under CNNC_SANITIZE=ON the children run under AddressSanitizer and UBSan,
 * whose reports make them exit non-zero (counted as crashes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define BIG ((int64_t)1 << 62)
#define HUGE_SIDE ((int64_t)1 << 40)

/* Child exit codes. */
enum { REFUSED = 10, ACCEPTED = 11, NO_MESSAGE = 12, WRONG_STATUS = 13 };

static float buf_a[4096], buf_b[4096], buf_c[4096];
static int64_t labels[16];

typedef struct {
    const char *name;
    cnnc_status (*call)(void);
    cnnc_status want; /* CNNC_OK: the call is valid and must succeed */
    int any_error;    /* for want != OK: any error status with a message will do */
} misuse_case;

/* Each case is a small function; the macros keep one line per case. */
#define REFUSE(id, status, expr) static cnnc_status id(void) { return (expr); } enum { id##_want = status }
#define ACCEPT(id, expr) static cnnc_status id(void) { return (expr); } enum { id##_want = CNNC_OK }

static cnnc_conv2d_desc conv_desc(void)
{
    cnnc_conv2d_desc d = {.batch = 2, .in_h = 6, .in_w = 6, .in_channels = 3, .out_channels = 4,
                          .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                          .dilation_h = 1, .dilation_w = 1, .groups = 1};
    return d;
}

static cnnc_pool2d_params pool_params(void)
{
    cnnc_pool2d_params p = {.n = 2, .h = 4, .w = 4, .c = 3, .pool_h = 2, .pool_w = 2,
                            .stride_h = 2, .stride_w = 2};
    return p;
}

/* ---- core --------------------------------------------------------------- */
REFUSE(set_isa_bad_enum, CNNC_ERR_INVALID_ARGUMENT, cnnc_set_isa((cnnc_isa)7));
REFUSE(set_isa_negative, CNNC_ERR_INVALID_ARGUMENT, cnnc_set_isa((cnnc_isa)-1));
REFUSE(threads_zero, CNNC_ERR_INVALID_ARGUMENT, cnnc_set_num_threads(0));
REFUSE(threads_negative, CNNC_ERR_INVALID_ARGUMENT, cnnc_set_num_threads(-4));
static cnnc_status status_string_bad(void)
{
    const char *s = cnnc_status_string((cnnc_status)99);
    return s && *s ? CNNC_OK : CNNC_ERR_INTERNAL; /* names it as unknown, no crash */
}
enum { status_string_bad_want = CNNC_OK };
static cnnc_status malloc_huge(void)
{
    void *p = cnnc_malloc(SIZE_MAX - 8);
    cnnc_free(p);
    return p == NULL ? CNNC_OK : CNNC_ERR_INTERNAL; /* NULL, no wrapped-around small block */
}
enum { malloc_huge_want = CNNC_OK };
static cnnc_status free_null(void)
{
    cnnc_free(NULL);
    cnnc_release_workspace();
    cnnc_release_workspace();
    return CNNC_OK;
}
enum { free_null_want = CNNC_OK };

/* ---- gemm --------------------------------------------------------------- */
REFUSE(sgemm_m_2_62, CNNC_ERR_OVERFLOW,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, BIG, 1, 1, 1.0f, buf_a, 1, buf_b, 1, 0.0f, buf_c, 1));
REFUSE(sgemm_n_2_62, CNNC_ERR_OVERFLOW,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, BIG, 1, 1.0f, buf_a, 1, buf_b, BIG, 0.0f, buf_c, BIG));
REFUSE(sgemm_k_2_62, CNNC_ERR_OVERFLOW,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, BIG, 1.0f, buf_a, BIG, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_ld_overflow, CNNC_ERR_OVERFLOW,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 4, 2, 2, 1.0f, buf_a, INT64_MAX / 2, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_m_negative, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, -1, 2, 2, 1.0f, buf_a, 2, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_lda_small, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 3, 1.0f, buf_a, 2, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_bad_trans, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm((cnnc_transpose)5, CNNC_NO_TRANS, 2, 2, 2, 1.0f, buf_a, 2, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_a_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1.0f, NULL, 2, buf_b, 2, 0.0f, buf_c, 2));
REFUSE(sgemm_c_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 2, 1.0f, buf_a, 2, buf_b, 2, 0.0f, NULL, 2));
REFUSE(sgemm_c_is_a, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 32, 32, 32, 1.0f, buf_a, 32, buf_b, 32, 0.0f, buf_a, 32));
REFUSE(sgemm_c_overlaps_b, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_TRANS, 16, 16, 16, 1.0f, buf_a, 16, buf_b, 16, 0.0f, buf_b + 100, 16));
ACCEPT(sgemm_k_zero_scales_c,
       cnnc_sgemm(CNNC_NO_TRANS, CNNC_NO_TRANS, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.5f, buf_c, 2));

/* ---- activations -------------------------------------------------------- */
REFUSE(act_bad_kind, CNNC_ERR_INVALID_ARGUMENT, cnnc_activation_forward((cnnc_activation)42, 4, buf_a, buf_c, 0.0f));
REFUSE(act_kind_count, CNNC_ERR_INVALID_ARGUMENT, cnnc_activation_forward(CNNC_ACTIVATION_COUNT, 4, buf_a, buf_c, 0.0f));
REFUSE(act_negative_n, CNNC_ERR_INVALID_ARGUMENT, cnnc_relu_forward(-5, buf_a, buf_c));
REFUSE(act_x_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_relu_forward(4, NULL, buf_c));
REFUSE(act_y_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_sigmoid_forward(4, buf_a, NULL));
REFUSE(act_backward_dy_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_tanh_backward(4, buf_a, NULL, buf_c));
REFUSE(act_partial_overlap, CNNC_ERR_INVALID_ARGUMENT, cnnc_gelu_forward(64, buf_a, buf_a + 3, 0));
REFUSE(act_backward_dx_overlaps_x, CNNC_ERR_INVALID_ARGUMENT, cnnc_elu_backward(64, buf_a + 1, buf_b, buf_a, 1.0f));
/* In place (y == x) is documented as supported for elementwise functions. */
static cnnc_status act_in_place(void)
{
    for (int i = 0; i < 64; ++i)
        buf_c[i] = (float)(i - 32) / 8.0f;
    float expect[64];
    CHECK_OK(cnnc_activation_forward(CNNC_ACTIVATION_SILU, 64, buf_c, expect, 0.0f));
    cnnc_status s = cnnc_activation_forward(CNNC_ACTIVATION_SILU, 64, buf_c, buf_c, 0.0f);
    if (s == CNNC_OK && memcmp(expect, buf_c, sizeof expect) != 0)
        return CNNC_ERR_INTERNAL; /* in place must give the same values */
    return s;
}

enum { act_in_place_want = CNNC_OK };
ACCEPT(softmax_zero_cols, cnnc_softmax_forward(2, 0, buf_a, buf_c));
REFUSE(softmax_overflow, CNNC_ERR_OVERFLOW, cnnc_softmax_forward(BIG, BIG, buf_a, buf_c));
REFUSE(softmax_overlap, CNNC_ERR_INVALID_ARGUMENT, cnnc_softmax_forward(4, 16, buf_a, buf_a + 8));
REFUSE(log_softmax_backward_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_log_softmax_backward(2, 4, buf_a, NULL, buf_c));

/* ---- elementwise -------------------------------------------------------- */
REFUSE(add_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_add_forward(4, buf_a, NULL, buf_c));
REFUSE(add_negative, CNNC_ERR_INVALID_ARGUMENT, cnnc_add_forward(-1, buf_a, buf_b, buf_c));
REFUSE(add_partial_overlap, CNNC_ERR_INVALID_ARGUMENT, cnnc_add_forward(64, buf_a, buf_b, buf_b + 1));
ACCEPT(add_in_place, cnnc_add_forward(64, buf_a, buf_b, buf_b));
REFUSE(add_relu_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_add_relu_forward(4, NULL, buf_b, buf_c));
REFUSE(add_relu_partial_overlap, CNNC_ERR_INVALID_ARGUMENT, cnnc_add_relu_forward(64, buf_a, buf_b, buf_a + 1));
ACCEPT(add_relu_in_place, cnnc_add_relu_forward(64, buf_a, buf_b, buf_a));
REFUSE(bias_add_zero_c, CNNC_ERR_INVALID_ARGUMENT, cnnc_bias_add_forward(4, 0, buf_a, buf_b, buf_c));
REFUSE(bias_add_overflow, CNNC_ERR_OVERFLOW, cnnc_bias_add_forward(BIG, BIG, buf_a, buf_b, buf_c));
REFUSE(bias_add_backward_overlap, CNNC_ERR_INVALID_ARGUMENT, cnnc_bias_add_backward(4, 8, buf_a, buf_a + 4));
static cnnc_status concat_negative_width_call(void)
{
    int64_t widths[2] = {2, -3};
    const float *in[2] = {buf_a, buf_b};
    return cnnc_concat_forward(4, 2, widths, in, buf_c);
}
enum { concat_negative_width_call_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status concat_null_input(void)
{
    int64_t widths[2] = {2, 3};
    const float *in[2] = {buf_a, NULL};
    return cnnc_concat_forward(4, 2, widths, in, buf_c);
}
enum { concat_null_input_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(concat_k_zero, CNNC_ERR_INVALID_ARGUMENT, cnnc_concat_forward(4, 0, NULL, NULL, buf_c));
static cnnc_status concat_width_overflow(void)
{
    int64_t widths[2] = {INT64_MAX - 1, 8};
    const float *in[2] = {buf_a, buf_b};
    return cnnc_concat_forward(1, 2, widths, in, buf_c);
}
enum { concat_width_overflow_want = CNNC_ERR_OVERFLOW };
static cnnc_status concat_output_overlaps_input(void)
{
    int64_t widths[2] = {4, 4};
    const float *in[2] = {buf_a, buf_c + 8};
    return cnnc_concat_forward(4, 2, widths, in, buf_c);
}
enum { concat_output_overlaps_input_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(dropout_rate_one, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_dropout_forward(4, 1.0f, 1, 0, buf_a, buf_c, (uint8_t *)buf_b));
REFUSE(dropout_rate_nan, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_dropout_forward(4, NAN, 1, 0, buf_a, buf_c, (uint8_t *)buf_b));
REFUSE(dropout_mask_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_dropout_forward(4, 0.5f, 1, 0, buf_a, buf_c, NULL));

/* ---- convolution --------------------------------------------------------- */
static cnnc_status conv_zero_stride(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.stride_h = 0;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_zero_stride_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_negative_pad(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.pad_left = -1;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_negative_pad_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_groups_mismatch(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.groups = 2;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_groups_mismatch_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_kernel_too_big(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.kernel_h = 9;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_kernel_too_big_want = CNNC_ERR_SHAPE };
static cnnc_status conv_huge(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.batch = HUGE_SIDE;
    d.in_h = d.in_w = HUGE_SIDE;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_huge_want = CNNC_ERR_OVERFLOW };
static cnnc_status conv_dilation_overflow(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.dilation_h = INT64_MAX / 2;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_c);
}
enum { conv_dilation_overflow_want = CNNC_ERR_SHAPE };
REFUSE(conv_desc_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_conv2d_forward(NULL, buf_a, buf_b, NULL, buf_c));
static cnnc_status conv_x_null(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_forward(&d, NULL, buf_b, NULL, buf_c);
}
enum { conv_x_null_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_1x1_y_is_x(void)
{
    cnnc_conv2d_desc d = conv_desc();
    d.kernel_h = d.kernel_w = 1;
    d.out_channels = 3;
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_a);
}
enum { conv_1x1_y_is_x_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_y_overlaps_w(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_forward(&d, buf_a, buf_b, NULL, buf_b + 10);
}
enum { conv_y_overlaps_w_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_backward_data_dx_is_dy(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_backward_data(&d, buf_b, buf_a, buf_a);
}
enum { conv_backward_data_dx_is_dy_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_backward_weights_dw_is_db(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_backward_weights(&d, buf_a, buf_b, buf_c, buf_c + 4);
}
enum { conv_backward_weights_dw_is_db_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_transpose_y_is_x(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_transpose_forward(&d, buf_a, buf_b, NULL, buf_a);
}
enum { conv_transpose_y_is_x_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status conv_output_size_null(void)
{
    cnnc_conv2d_desc d = conv_desc();
    return cnnc_conv2d_output_size(&d, NULL, NULL);
}
enum { conv_output_size_null_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status same_padding_zero_stride(void)
{
    int64_t before, after;
    return cnnc_conv_same_padding(8, 3, 0, 1, &before, &after);
}
enum { same_padding_zero_stride_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status same_padding_overflow(void)
{
    int64_t before, after;
    return cnnc_conv_same_padding(INT64_MAX, INT64_MAX / 2, 1, 4, &before, &after);
}
enum { same_padding_overflow_want = CNNC_ERR_OVERFLOW };

/* ---- pooling ------------------------------------------------------------ */
static cnnc_status pool_zero_window(void)
{
    cnnc_pool2d_params p = pool_params();
    p.pool_w = 0;
    return cnnc_max_pool2d_forward(&p, buf_a, buf_c);
}
enum { pool_zero_window_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status pool_pad_too_big(void)
{
    cnnc_pool2d_params p = pool_params();
    p.pad_top = 2;
    return cnnc_avg_pool2d_forward(&p, buf_a, buf_c);
}
enum { pool_pad_too_big_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status pool_huge(void)
{
    cnnc_pool2d_params p = pool_params();
    p.n = HUGE_SIDE;
    p.h = p.w = HUGE_SIDE;
    return cnnc_max_pool2d_forward(&p, buf_a, buf_c);
}
enum { pool_huge_want = CNNC_ERR_OVERFLOW };
REFUSE(pool_params_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_max_pool2d_forward(NULL, buf_a, buf_c));
static cnnc_status pool_y_overlaps_x(void)
{
    cnnc_pool2d_params p = pool_params();
    return cnnc_max_pool2d_forward(&p, buf_a, buf_a + 5);
}
enum { pool_y_overlaps_x_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status pool_backward_dx_is_dy(void)
{
    cnnc_pool2d_params p = pool_params();
    return cnnc_avg_pool2d_backward(&p, buf_a, buf_a);
}
enum { pool_backward_dx_is_dy_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(global_pool_negative, CNNC_ERR_INVALID_ARGUMENT, cnnc_global_avg_pool2d_forward(2, -1, 4, 3, buf_a, buf_c));
REFUSE(global_pool_overflow, CNNC_ERR_OVERFLOW, cnnc_global_max_pool2d_forward(BIG, BIG, 4, 3, buf_a, buf_c));
REFUSE(global_pool_backward_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_global_max_pool2d_backward(2, 4, 4, 3, NULL, buf_b, buf_c));

/* ---- batch norm --------------------------------------------------------- */
REFUSE(bn_zero_channels, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_batch_norm_inference(4, 0, buf_a, NULL, NULL, buf_b, buf_b, 1e-3f, 0, buf_c));
REFUSE(bn_negative_epsilon, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_batch_norm_inference(4, 3, buf_a, NULL, NULL, buf_b, buf_b + 3, -1.0f, 0, buf_c));
REFUSE(bn_bad_flags, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_batch_norm_inference(4, 3, buf_a, NULL, NULL, buf_b, buf_b + 3, 1e-3f, 0x40, buf_c));
REFUSE(bn_train_overflow, CNNC_ERR_OVERFLOW,
       cnnc_batch_norm_train_forward(BIG, BIG, buf_a, NULL, NULL, 0.9f, 1e-3f, 0, buf_b, buf_b + 8, buf_c,
                                     buf_c + 16, buf_c + 32));
REFUSE(bn_train_y_overlaps_x, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_batch_norm_train_forward(8, 4, buf_a, NULL, NULL, 0.9f, 1e-3f, 0, buf_b, buf_b + 8, buf_a + 4,
                                     buf_c, buf_c + 16));
REFUSE(bn_backward_null_mean, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_batch_norm_backward(8, 4, buf_a, buf_b, NULL, NULL, NULL, buf_c, buf_c + 64, buf_c + 128,
                                buf_c + 192));

/* ---- losses ------------------------------------------------------------- */
static cnnc_status sce_label_out_of_range(void)
{
    labels[0] = 0, labels[1] = 7;
    return cnnc_softmax_cross_entropy(2, 1, 4, buf_a, labels, NULL, 0.0f, CNNC_NO_IGNORE, NULL, 1.0f,
                                      buf_c, buf_c + 64);
}
enum { sce_label_out_of_range_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status sce_label_negative(void)
{
    labels[0] = -1, labels[1] = 0;
    return cnnc_softmax_cross_entropy(2, 1, 4, buf_a, labels, NULL, 0.0f, CNNC_NO_IGNORE, NULL, 1.0f,
                                      buf_c, buf_c + 64);
}
enum { sce_label_negative_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(sce_labels_and_targets, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_softmax_cross_entropy(2, 1, 4, buf_a, labels, buf_b, 0.0f, CNNC_NO_IGNORE, NULL, 1.0f,
                                  buf_c, buf_c + 64));
REFUSE(sce_overflow, CNNC_ERR_OVERFLOW,
       cnnc_softmax_cross_entropy(BIG, BIG, 4, buf_a, NULL, buf_b, 0.0f, CNNC_NO_IGNORE, NULL, 1.0f,
                                  buf_c, buf_c + 64));
REFUSE(cce_bad_smoothing, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_categorical_cross_entropy(2, 1, 4, buf_a, NULL, buf_b, 1.5f, CNNC_NO_IGNORE, 1e-7f, NULL, 1.0f,
                                      buf_c, buf_c + 64));
ACCEPT(bce_loss_null,
       cnnc_binary_cross_entropy(2, 4, buf_a, buf_b, 0.0f, 1e-7f, NULL, 1.0f, NULL, buf_c));
REFUSE(mse_negative, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_mean_squared_error(-2, 4, buf_a, buf_b, NULL, 1.0f, buf_c, buf_c + 64));
REFUSE(mse_grad_overlaps_pred, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_mean_squared_error(4, 4, buf_a, buf_b, NULL, 1.0f, buf_c, buf_a + 2));
REFUSE(mae_nan_scale, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_mean_absolute_error(2, 4, buf_a, buf_b, NULL, NAN, buf_c, buf_c + 64));

/* ---- optimizers --------------------------------------------------------- */
static cnnc_optim_common optim(float lr)
{
    return cnnc_optim_common_init(lr);
}
static cnnc_status sgd_negative_lr(void)
{
    cnnc_optim_common c = optim(-0.1f);
    return cnnc_sgd_update(8, buf_a, buf_b, buf_c, &c, 0.9f, 0);
}
enum { sgd_negative_lr_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(sgd_common_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_sgd_update(8, buf_a, buf_b, buf_c, NULL, 0.9f, 0));
static cnnc_status adam_step_zero(void)
{
    cnnc_optim_common c = optim(0.1f);
    return cnnc_adam_update(8, buf_a, buf_b, buf_c, buf_c + 8, NULL, 0, &c, 0.9f, 0.999f, 1e-7f);
}
enum { adam_step_zero_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status adam_m_is_v(void)
{
    cnnc_optim_common c = optim(0.1f);
    return cnnc_adam_update(8, buf_a, buf_b, buf_c, buf_c, NULL, 1, &c, 0.9f, 0.999f, 1e-7f);
}
enum { adam_m_is_v_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status adam_param_is_grad(void)
{
    cnnc_optim_common c = optim(0.1f);
    return cnnc_adam_update(8, buf_a, buf_a, buf_c, buf_c + 8, NULL, 1, &c, 0.9f, 0.999f, 1e-7f);
}
enum { adam_param_is_grad_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status rmsprop_bad_rho(void)
{
    cnnc_optim_common c = optim(0.1f);
    return cnnc_rmsprop_update(8, buf_a, buf_b, buf_c, NULL, NULL, &c, 1.5f, 0.0f, 1e-7f);
}
enum { rmsprop_bad_rho_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status adagrad_negative_n(void)
{
    cnnc_optim_common c = optim(0.1f);
    return cnnc_adagrad_update(-8, buf_a, buf_b, buf_c, &c, 1e-7f);
}
enum { adagrad_negative_n_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(sum_squares_null, CNNC_ERR_INVALID_ARGUMENT, cnnc_sum_squares(8, buf_a, NULL));

/* ---- augmentation ------------------------------------------------------- */
REFUSE(flip_negative, CNNC_ERR_INVALID_ARGUMENT, cnnc_random_flip(2, -4, 4, 3, buf_a, 1, 0, 1, buf_c));
REFUSE(flip_overflow, CNNC_ERR_OVERFLOW, cnnc_random_flip(BIG, BIG, 4, 3, buf_a, 1, 0, 1, buf_c));
REFUSE(flip_y_overlaps_x, CNNC_ERR_INVALID_ARGUMENT, cnnc_random_flip(2, 4, 4, 3, buf_a, 1, 0, 1, buf_a + 3));
REFUSE(crop_bigger_than_padded, CNNC_ERR_SHAPE,
       cnnc_random_crop(2, 4, 4, 3, buf_a, 9, 4, 0, 0.0f, 1, buf_c));
REFUSE(warp_bad_fill_mode, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_affine_warp(2, 4, 4, 3, buf_a, 4, 4, buf_b, 6, CNNC_INTERP_BILINEAR, (cnnc_fill_mode)9, 0.0f, buf_c));
REFUSE(warp_bad_interpolation, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_affine_warp(2, 4, 4, 3, buf_a, 4, 4, buf_b, 6, (cnnc_interpolation)-2, CNNC_FILL_CONSTANT, 0.0f, buf_c));
REFUSE(warp_matrices_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_affine_warp(2, 4, 4, 3, buf_a, 4, 4, NULL, 6, CNNC_INTERP_BILINEAR, CNNC_FILL_CONSTANT, 0.0f, buf_c));
REFUSE(affine_ranges_null, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_random_affine(2, 4, 4, 3, buf_a, NULL, CNNC_INTERP_BILINEAR, CNNC_FILL_REFLECT, 0.0f, 1, buf_c));
REFUSE(brightness_reversed_range, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_random_brightness(2, 4, 4, 3, buf_a, 0.5f, -0.5f, 0.0f, 1.0f, 1, buf_c));
REFUSE(contrast_nan, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_random_contrast(2, 4, 4, 3, buf_a, NAN, 1.5f, 0.0f, 1.0f, 1, buf_c));
REFUSE(erasing_bad_probability, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_random_erasing(2, 4, 4, 3, buf_a, 2.0f, 0.02f, 0.3f, 0.3f, 3.3f, 0.0f, 1, buf_c));

/* ---- model files -------------------------------------------------------- */
static cnnc_model *model_out;
REFUSE(model_load_null_path, CNNC_ERR_INVALID_ARGUMENT, cnnc_model_load(NULL, &model_out));
REFUSE(model_load_null_out, CNNC_ERR_INVALID_ARGUMENT, cnnc_model_load("model.cnnc", NULL));
static cnnc_status model_load_missing_file(void)
{
    cnnc_status s = cnnc_model_load("/nonexistent/dir/model.cnnc", &model_out);
    return s == CNNC_OK ? s : CNNC_ERR_INVALID_ARGUMENT; /* any error with a message */
}
enum { model_load_missing_file_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status model_load_garbage(void)
{
    static const char junk[64] = "not a model file at all, just some bytes";
    cnnc_status s = cnnc_model_load_memory(junk, sizeof junk, &model_out);
    return s == CNNC_OK ? s : CNNC_ERR_INVALID_ARGUMENT;
}
enum { model_load_garbage_want = CNNC_ERR_INVALID_ARGUMENT };
static cnnc_status model_load_empty(void)
{
    cnnc_status s = cnnc_model_load_memory(buf_a, 0, &model_out);
    return s == CNNC_OK ? s : CNNC_ERR_INVALID_ARGUMENT;
}
enum { model_load_empty_want = CNNC_ERR_INVALID_ARGUMENT };
REFUSE(model_predict_null_model, CNNC_ERR_INVALID_ARGUMENT, cnnc_model_predict(NULL, 1, buf_a, buf_c));
static cnnc_status model_shape_null_model(void)
{
    int rank;
    int64_t shape[8];
    return cnnc_model_input_shape(NULL, &rank, shape);
}
enum { model_shape_null_model_want = CNNC_ERR_INVALID_ARGUMENT };
static const char *tensor_names_dup[2] = {"dense/kernel", "dense/kernel"};
static const int tensor_ranks[2] = {1, 1};
static const int tensor_bad_rank[2] = {9, 1};
static const int64_t tensor_shapes[16] = {4, 0, 0, 0, 0, 0, 0, 0, 4};
static const int64_t tensor_negative[16] = {-4, 0, 0, 0, 0, 0, 0, 0, 4};
static const float *tensor_data[2] = {buf_a, buf_a};
static const float *tensor_null_data[2] = {NULL, buf_a};
static const char *tensor_names[2] = {"dense/kernel", "dense/bias"};
static const char config_json[] = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}";
REFUSE(model_tensors_null_model, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 0, NULL, NULL, NULL, NULL, NULL));
REFUSE(model_tensors_null_config, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(NULL, 0, NULL, NULL, NULL, NULL, &model_out));
REFUSE(model_tensors_null_arrays, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 2, tensor_names, NULL, tensor_shapes, tensor_data, &model_out));
REFUSE(model_tensors_bad_rank, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 2, tensor_names, tensor_bad_rank, tensor_shapes, tensor_data, &model_out));
REFUSE(model_tensors_negative_dim, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 2, tensor_names, tensor_ranks, tensor_negative, tensor_data, &model_out));
REFUSE(model_tensors_null_data, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 2, tensor_names, tensor_ranks, tensor_shapes, tensor_null_data, &model_out));
REFUSE(model_tensors_duplicate, CNNC_ERR_INVALID_ARGUMENT,
       cnnc_model_load_tensors(config_json, 2, tensor_names_dup, tensor_ranks, tensor_shapes, tensor_data, &model_out));
REFUSE(model_tensors_bad_json, CNNC_ERR_FORMAT,
       cnnc_model_load_tensors("{\"class_name\": ", 2, tensor_names, tensor_ranks, tensor_shapes, tensor_data, &model_out));
static cnnc_status model_free_null(void)
{
    cnnc_model_free(NULL);
    return cnnc_model_num_inputs(NULL) <= 0 ? CNNC_OK : CNNC_ERR_INTERNAL;
}
enum { model_free_null_want = CNNC_OK };

#define C(id) {#id, id, (cnnc_status)id##_want, 0}

static const misuse_case cases[] = {
    C(set_isa_bad_enum), C(set_isa_negative), C(threads_zero), C(threads_negative),
    C(status_string_bad), C(malloc_huge), C(free_null),
    C(sgemm_m_2_62), C(sgemm_n_2_62), C(sgemm_k_2_62), C(sgemm_ld_overflow), C(sgemm_m_negative),
    C(sgemm_lda_small), C(sgemm_bad_trans), C(sgemm_a_null), C(sgemm_c_null), C(sgemm_c_is_a),
    C(sgemm_c_overlaps_b), C(sgemm_k_zero_scales_c),
    C(act_bad_kind), C(act_kind_count), C(act_negative_n), C(act_x_null), C(act_y_null),
    C(act_backward_dy_null), C(act_partial_overlap), C(act_backward_dx_overlaps_x), C(act_in_place),
    C(softmax_zero_cols), C(softmax_overflow), C(softmax_overlap), C(log_softmax_backward_null),
    C(add_null), C(add_negative), C(add_partial_overlap), C(add_in_place), C(add_relu_null),
    C(add_relu_partial_overlap), C(add_relu_in_place), C(bias_add_zero_c),
    C(bias_add_overflow), C(bias_add_backward_overlap), C(concat_negative_width_call),
    C(concat_null_input), C(concat_k_zero), C(concat_width_overflow), C(concat_output_overlaps_input),
    C(dropout_rate_one), C(dropout_rate_nan), C(dropout_mask_null),
    C(conv_zero_stride), C(conv_negative_pad), C(conv_groups_mismatch), C(conv_kernel_too_big),
    C(conv_huge), C(conv_dilation_overflow), C(conv_desc_null), C(conv_x_null), C(conv_1x1_y_is_x),
    C(conv_y_overlaps_w), C(conv_backward_data_dx_is_dy), C(conv_backward_weights_dw_is_db),
    C(conv_transpose_y_is_x), C(conv_output_size_null), C(same_padding_zero_stride),
    C(same_padding_overflow),
    C(pool_zero_window), C(pool_pad_too_big), C(pool_huge), C(pool_params_null), C(pool_y_overlaps_x),
    C(pool_backward_dx_is_dy), C(global_pool_negative), C(global_pool_overflow),
    C(global_pool_backward_null),
    C(bn_zero_channels), C(bn_negative_epsilon), C(bn_bad_flags), C(bn_train_overflow),
    C(bn_train_y_overlaps_x), C(bn_backward_null_mean),
    C(sce_label_out_of_range), C(sce_label_negative), C(sce_labels_and_targets), C(sce_overflow),
    C(cce_bad_smoothing), C(bce_loss_null), C(mse_negative), C(mse_grad_overlaps_pred), C(mae_nan_scale),
    C(sgd_negative_lr), C(sgd_common_null), C(adam_step_zero), C(adam_m_is_v), C(adam_param_is_grad),
    C(rmsprop_bad_rho), C(adagrad_negative_n), C(sum_squares_null),
    C(flip_negative), C(flip_overflow), C(flip_y_overlaps_x), C(crop_bigger_than_padded),
    C(warp_bad_fill_mode), C(warp_bad_interpolation), C(warp_matrices_null), C(affine_ranges_null),
    C(brightness_reversed_range), C(contrast_nan), C(erasing_bad_probability),
    C(model_load_null_path), C(model_load_null_out), C(model_load_missing_file), C(model_load_garbage),
    C(model_load_empty), C(model_predict_null_model), C(model_shape_null_model), C(model_free_null),
    C(model_tensors_null_model), C(model_tensors_null_config), C(model_tensors_null_arrays),
    C(model_tensors_bad_rank), C(model_tensors_negative_dim), C(model_tensors_null_data),
    C(model_tensors_duplicate), C(model_tensors_bad_json),
};

/* Runs one case in a child; returns the child's verdict or -signal. */
static int run_child(const misuse_case *c, const char *isa_env)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (isa_env)
            setenv("CNNC_ISA", isa_env, 1);
        cnnc_status s = c->call();
        if (c->want == CNNC_OK)
            _exit(s == CNNC_OK ? ACCEPTED : WRONG_STATUS);
        if (s == CNNC_OK)
            _exit(ACCEPTED);
        if (s != c->want) {
            fprintf(stderr, "  %s: %s (%s), wanted %s\n", c->name, cnnc_status_string(s), cnnc_last_error(),
                    cnnc_status_string(c->want));
            _exit(WRONG_STATUS);
        }
        const char *msg = cnnc_last_error();
        _exit(msg && *msg ? REFUSED : NO_MESSAGE);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1000;
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* Before any other call: the error string exists, the ISA is detected
 * lazily, and a CNNC_ISA naming no path is ignored (the best one is used). */
static cnnc_status before_init(void)
{
    const char *e = cnnc_last_error();
    if (!e || *e)
        return CNNC_ERR_INTERNAL;
    return cnnc_get_isa() == cnnc_max_isa() ? CNNC_OK : CNNC_ERR_INTERNAL;
}

/* Runs this program again as a fresh process (nothing initialized yet)
 * with CNNC_ISA set to isa_env, in --fresh mode: main() then runs only
 * before_init. Returns its verdict as run_child does. */
/* The child could not run this program again: under qemu-user,
 * /proc/self/exe is the emulator and a foreign binary cannot be exec'd. */
enum { EXEC_FAILED = 125 };

static int run_fresh(const char *self, const char *isa_env)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CNNC_ISA", isa_env, 1);
        execl(self, self, "--fresh", (char *)NULL);
        _exit(EXEC_FAILED);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1000;
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fresh") == 0)
        return before_init() == CNNC_OK ? ACCEPTED : WRONG_STATUS;
    int refused = 0, accepted_valid = 0, silent_ok = 0, wrong = 0, no_message = 0, crashed = 0;
    /* Before any other call, with CNNC_ISA naming no path (or empty). */
    const char *fresh_env[] = {"no-such-isa", ""};
    for (int i = 0; i < 2; ++i) {
        int r = run_fresh("/proc/self/exe", fresh_env[i]);
        if (r == ACCEPTED)
            ++accepted_valid;
        else if (r == EXEC_FAILED)
            fprintf(stderr, "  before_init with CNNC_ISA=\"%s\": not run (this program cannot be "
                            "re-executed here, e.g. under qemu-user)\n", fresh_env[i]);
        else {
            fprintf(stderr, "  before_init with CNNC_ISA=\"%s\": verdict %d\n", fresh_env[i], r);
            r < 0 ? ++crashed : ++wrong;
        }
    }
    const int count = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < count; ++i) {
        const misuse_case *c = &cases[i];
        int r = run_child(c, NULL);
        if (r < 0) {
            fprintf(stderr, "  %s: CRASHED (signal %d)\n", c->name, -r);
            ++crashed;
        } else if (c->want == CNNC_OK) {
            if (r == ACCEPTED)
                ++accepted_valid;
            else {
                fprintf(stderr, "  %s: a valid call failed\n", c->name);
                ++wrong;
            }
        } else if (r == REFUSED) {
            ++refused;
        } else if (r == ACCEPTED) {
            fprintf(stderr, "  %s: SILENT OK for an invalid call\n", c->name);
            ++silent_ok;
        } else if (r == NO_MESSAGE) {
            fprintf(stderr, "  %s: failed without a message\n", c->name);
            ++no_message;
        } else {
            ++wrong;
        }
    }
    printf("misuse cases: %d; refused with the documented status: %d; other error status: %d; "
           "valid edge calls accepted: %d; silent OK: %d; no message: %d; crashed: %d\n",
           count + 2, refused, wrong, accepted_valid, silent_ok, no_message, crashed);
    check_failures += silent_ok + no_message + crashed + wrong;
    return check_finish("test_misuse");
}
