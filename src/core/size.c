#include <stdarg.h>
#include "cnnc_internal.h"

cnnc_status cnnc_mul_sizes(int64_t *out, int count, ...)
{
    va_list args;
    va_start(args, count);
    int64_t product = 1;
    cnnc_status status = CNNC_OK;
    for (int i = 0; i < count; ++i) {
        int64_t factor = va_arg(args, int64_t);
        if (factor < 0) {
            status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "negative size %lld", (long long)factor);
            break;
        }
        if (__builtin_mul_overflow(product, factor, &product)) {
            status = cnnc_error(CNNC_ERR_OVERFLOW, "size product overflows 64 bits");
            break;
        }
    }
    va_end(args);
    *out = status == CNNC_OK ? product : 0;
    return status;
}

cnnc_status cnnc_float_bytes(int64_t count, size_t *bytes)
{
    if (count < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "negative element count %lld", (long long)count);
    if ((uint64_t)count > SIZE_MAX / sizeof(float))
        return cnnc_error(CNNC_ERR_OVERFLOW, "%lld floats do not fit in memory", (long long)count);
    *bytes = (size_t)count * sizeof(float);
    return CNNC_OK;
}

/* Byte extent of count floats, saturated: sizes are validated elsewhere, and
 * a saturated extent still detects any overlap within the address space. */
static uintptr_t float_extent(int64_t count)
{
    if (count <= 0)
        return 0;
    return (uint64_t)count > UINTPTR_MAX / sizeof(float) ? UINTPTR_MAX : (uintptr_t)count * sizeof(float);
}

cnnc_status cnnc_check_disjoint(const char *fn, const char *out_name, const float *out, int64_t out_count,
                                const char *in_name, const float *in, int64_t in_count, int same_ok)
{
    if (out == NULL || in == NULL || out_count <= 0 || in_count <= 0)
        return CNNC_OK;
    if (same_ok && (const void *)out == (const void *)in && out_count == in_count)
        return CNNC_OK;
    uintptr_t o = (uintptr_t)out, i = (uintptr_t)in;
    uintptr_t o_len = float_extent(out_count), i_len = float_extent(in_count);
    int disjoint = (o >= i && o - i >= i_len) || (i > o && i - o >= o_len);
    if (disjoint)
        return CNNC_OK;
    return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s overlaps %s (%s)", fn, out_name, in_name,
                      same_ok ? "only exactly in place is supported" : "outputs must not share memory with inputs");
}
