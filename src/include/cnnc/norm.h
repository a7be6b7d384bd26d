/* Batch normalization over the channel axis. */
#ifndef CNNC_NORM_H
#define CNNC_NORM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
