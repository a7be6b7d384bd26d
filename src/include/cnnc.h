/* cnnc: convolutional neural network kernels for the CPU. Umbrella header. */
#ifndef CNNC_H
#define CNNC_H

#include "cnnc/common.h"
#include "cnnc/activation.h"
#include "cnnc/gemm.h"
#include "cnnc/conv.h"
#include "cnnc/pool.h"
#include "cnnc/norm.h"
#include "cnnc/elementwise.h"
#include "cnnc/loss.h"
#include "cnnc/optim.h"
#include "cnnc/augment.h"
#include "cnnc/model.h"
#include "cnnc/spatial.h"

#endif
