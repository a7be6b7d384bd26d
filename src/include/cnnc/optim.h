/* Fused optimizer updates over flat parameter arrays. */
#ifndef CNNC_OPTIM_H
#define CNNC_OPTIM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
