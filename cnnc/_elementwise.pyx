# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C elementwise family (src/include/cnnc/elementwise.h)."""

__all__ = []
