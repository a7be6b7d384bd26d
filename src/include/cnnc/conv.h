/* Convolutions (1-D, 2-D, transposed), channels-last. */
#ifndef CNNC_CONV_H
#define CNNC_CONV_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
