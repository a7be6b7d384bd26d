# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C pool family (src/include/cnnc/pool.h)."""

__all__ = []
