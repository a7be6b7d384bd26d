# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C augment family (src/include/cnnc/augment.h)."""

__all__ = []
