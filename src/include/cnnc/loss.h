/* Loss functions on logits and predictions. */
#ifndef CNNC_LOSS_H
#define CNNC_LOSS_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
