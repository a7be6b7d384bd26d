"""The standardization LayerNormalization and GroupNormalization share:
statistics over some axes, and its backward."""
import numpy as np


def standardize(x, axes, epsilon):
    """``(x - mean) / sqrt(var + epsilon)`` with the (biased) statistics over
    ``axes``; returns it with ``inv_std`` (keepdims shape) for the backward."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.square(centered).mean(axis=axes, keepdims=True)
    inv_std = (1.0 / np.sqrt(var + np.float32(epsilon))).astype(np.float32)
    return (centered * inv_std).astype(np.float32, copy=False), inv_std


def standardize_backward(dxhat, xhat, inv_std, axes):
    """Gradient with respect to x given the gradient with respect to
    standardize's output: ``inv_std (g - mean(g) - xhat mean(g xhat))``."""
    mean_g = dxhat.mean(axis=axes, keepdims=True)
    mean_gx = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return (inv_std * (dxhat - mean_g - xhat * mean_gx)).astype(np.float32, copy=False)
