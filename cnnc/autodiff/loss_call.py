"""Custom losses through the tape: a function ``fn(y_true, y_pred)`` (or a
Loss subclass's ``call``) written with :mod:`cnnc.ops` gets the gradient with
respect to ``y_pred`` that a model's training step needs."""
import numpy as np

from cnnc.autodiff.engine import gradients
from cnnc.autodiff.tensor import Tensor, lift, trace


def traced_loss(fn, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
    """``(loss, grad)`` as :meth:`cnnc.losses.Loss.compute` returns them.

    ``fn`` returns the loss per sample ``(N,)`` or per element ``(N, ...)``
    (averaged over the non-batch axes, as Keras's ``sum_over_batch_size``
    reduction does), or one scalar for the batch (its mean over the batch,
    so each sample's loss reads as that scalar)."""
    pred = np.ascontiguousarray(y_pred, dtype=np.float32)
    target = np.asarray(y_true)
    if target.dtype != np.float32:
        target = target.astype(np.float32)
    n = pred.shape[0]
    leaf = Tensor(pred, requires_grad=need_grad)
    with trace(need_grad, False):
        out = lift(fn(target, leaf))
    value = np.asarray(out.value, dtype=np.float64)
    if value.ndim == 0:
        if sample_weight is not None:
            raise ValueError("a loss function returning one scalar for the batch cannot take "
                             "sample weights; return one value per sample")
        per_sample = np.full(n, value, np.float64)
        seed = np.float32(grad_scale * n)
    else:
        if value.shape[0] != n:
            raise ValueError(f"the loss function returned shape {value.shape} for a batch of "
                             f"{n} samples; return (N,) or (N, ...) values")
        count = max(int(np.prod(value.shape[1:])), 1)
        per_sample = value.reshape(n, -1).mean(axis=1)
        scale = np.full(n, grad_scale / count, np.float32)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, np.float32).reshape(n)
            per_sample = per_sample * weights
            scale = scale * weights
        seed = np.broadcast_to(scale.reshape((n,) + (1,) * (value.ndim - 1)), value.shape)
    loss = per_sample.astype(np.float32)
    if not need_grad:
        return loss, None
    if not out.requires_grad:
        return loss, np.zeros_like(pred)
    (grad,), _ = gradients([out], [np.asarray(seed, np.float32)], [leaf])
    if grad is None:
        grad = np.zeros_like(pred)
    return loss, np.ascontiguousarray(grad, np.float32)
