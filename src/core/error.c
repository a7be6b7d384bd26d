#include <stdarg.h>
#include <stdio.h>
#include "cnnc_internal.h"

static _Thread_local char last_error[512];

cnnc_status cnnc_error(cnnc_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return status;
}

const char *cnnc_last_error(void) { return last_error; }

void cnnc_clear_error(void) { last_error[0] = '\0'; }

const char *cnnc_status_string(cnnc_status status)
{
    switch (status) {
    case CNNC_OK: return "ok";
    case CNNC_ERR_INVALID_ARGUMENT: return "invalid argument";
    case CNNC_ERR_SHAPE: return "shape mismatch";
    case CNNC_ERR_OVERFLOW: return "size overflow";
    case CNNC_ERR_OUT_OF_MEMORY: return "out of memory";
    case CNNC_ERR_UNSUPPORTED: return "unsupported";
    case CNNC_ERR_INTERNAL: return "internal error";
    case CNNC_ERR_FORMAT: return "invalid file";
    case CNNC_ERR_IO: return "i/o error";
    }
    return "unknown status";
}

const char *cnnc_version(void) { return CNNC_VERSION_STRING; }
