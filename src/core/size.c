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
