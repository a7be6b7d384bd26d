/* Max and average pooling, 1-D, 2-D and global. */
#ifndef CNNC_POOL_H
#define CNNC_POOL_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
