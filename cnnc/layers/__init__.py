"""Keras-style layers (channels-last)."""
from cnnc.layers.base import Layer, SymbolicTensor, Weight  # noqa: F401
