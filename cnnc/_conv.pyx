# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C conv family (src/include/cnnc/conv.h)."""

__all__ = []
