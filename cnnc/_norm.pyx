# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C norm family (src/include/cnnc/norm.h)."""

__all__ = []
