# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C loss family (src/include/cnnc/loss.h)."""

__all__ = []
