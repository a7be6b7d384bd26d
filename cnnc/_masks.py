"""Mask arithmetic shared by the layers, losses and metrics that consume
Keras's masks (see :mod:`cnnc.models.masking` for how masks travel)."""
import numpy as np


def check_step_mask(layer, x, mask, axes):
    """``mask`` as a boolean array of ``x.shape[:axes]``; ValueError naming
    the layer otherwise."""
    mask = np.asarray(mask)
    if mask.shape != x.shape[:axes]:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: the mask has shape {mask.shape}, "
                         f"expected {x.shape[:axes]} for inputs of shape {x.shape}")
    return mask if mask.dtype == np.bool_ else mask != 0


def sample_weights_with_mask(sample_weight, mask):
    """Keras's weights of masked metrics: the mask as weights (0 where
    masked), times the per-sample weights broadcast over the mask's axes."""
    weights = np.asarray(mask, dtype=np.float32)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32).reshape(
            (weights.shape[0],) + (1,) * (weights.ndim - 1))
        weights = weights * sw
    return weights


def masked_loss(compute, y_true, y_pred, mask, sample_weight, grad_scale, need_grad,
                rescale=True):
    """A loss over the unmasked positions only, as Keras reduces a masked
    loss: every position of ``y_pred.shape[:-1]`` is one loss element,
    weighted by ``mask * total / (valid + 1e-7)`` (``rescale``: the batch
    mean is then the mean over the valid positions) and by its sample's
    weight.

    compute: a per-row loss ``compute(y_true, y_pred, sample_weight=,
    grad_scale=, need_grad=) -> ((rows,), grad)`` on 2-D predictions.
    Returns the per-sample losses ``(N,)`` (each the mean over its
    positions of the weighted element losses) and the gradient of their sum
    times ``grad_scale``.
    """
    y_pred = np.asarray(y_pred)
    lead = y_pred.shape[:-1]
    mask = np.asarray(mask)
    if mask.shape != lead:
        raise ValueError(f"the mask of the model output has shape {mask.shape}, but the loss "
                         f"needs one entry per position {lead} of the output of shape "
                         f"{y_pred.shape}")
    weights = mask.astype(np.float32)
    if rescale:
        valid = float(np.count_nonzero(mask))
        weights *= np.float32(mask.size / (valid + 1e-7))
    if sample_weight is not None:
        weights = sample_weights_with_mask(sample_weight, weights)
    rows = int(np.prod(lead, dtype=np.int64))
    n = lead[0]
    per = rows // n if n else 1
    y_true = np.asarray(y_true)
    if y_true.shape[:len(lead)] != lead:
        raise ValueError(f"targets of shape {y_true.shape} do not match the output of shape "
                         f"{y_pred.shape}")
    flat_true = y_true.reshape((rows,) + y_true.shape[len(lead):])
    flat_pred = np.ascontiguousarray(y_pred.reshape(rows, y_pred.shape[-1]))
    losses, grad = compute(flat_true, flat_pred, sample_weight=weights.reshape(rows),
                           grad_scale=grad_scale / max(per, 1), need_grad=need_grad)
    per_sample = (np.asarray(losses, dtype=np.float64).reshape(n, per).sum(axis=1) /
                  max(per, 1)).astype(np.float32)
    if grad is not None:
        grad = grad.reshape(y_pred.shape)
    return per_sample, grad
