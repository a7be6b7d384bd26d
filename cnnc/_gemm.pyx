# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C gemm family (src/include/cnnc/gemm.h)."""

__all__ = []
