# cython: language_level=3, boundscheck=False, wraparound=False
"""Bridge to the C optim family (src/include/cnnc/optim.h)."""

__all__ = []
