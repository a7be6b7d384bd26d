/* Elementwise arithmetic, bias, concatenation and dropout. */
#ifndef CNNC_ELEMENTWISE_H
#define CNNC_ELEMENTWISE_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
