"""Reverse-mode automatic differentiation (see :mod:`cnnc.autodiff.tensor`).

The operations themselves are in :mod:`cnnc.ops`; ``gradients`` replays the
tape of traced results; ``trace`` opens a traced context by hand."""
from cnnc.autodiff.engine import WeightGrads, gradients  # noqa: F401
from cnnc.autodiff.tensor import Tensor, trace  # noqa: F401
