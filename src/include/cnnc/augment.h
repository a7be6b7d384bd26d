/* Data augmentation on NHWC image batches. */
#ifndef CNNC_AUGMENT_H
#define CNNC_AUGMENT_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
