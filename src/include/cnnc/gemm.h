/* Single-precision general matrix multiply. */
#ifndef CNNC_GEMM_H
#define CNNC_GEMM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
