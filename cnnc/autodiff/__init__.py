"""Reverse-mode automatic differentiation (see :mod:`cnnc.autodiff.tensor`).

The operations themselves are in :mod:`cnnc.ops`; ``gradients`` replays the
tape of traced results; ``trace`` opens a traced context by hand."""
from cnnc.autodiff import math_ops, nn_ops, shape_ops
from cnnc.autodiff.engine import WeightGrads, gradients  # noqa: F401
from cnnc.autodiff.tensor import Tensor, trace  # noqa: F401

#: The differentiable operations cnnc.ops exports under Keras's names.
KERAS_OPS = frozenset(math_ops.__all__) | frozenset(shape_ops.__all__) | frozenset(
    nn_ops.__all__)
