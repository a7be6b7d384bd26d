"""Feeding training: shuffled, batched, prefetched data (see Dataset)."""
from cnnc.data.dataset import Dataset  # noqa: F401

__all__ = ["Dataset"]
