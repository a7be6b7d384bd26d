"""Integer class labels for the sparse losses and metrics, checked once:
shape (the prediction's shape without its class axis, or with a trailing
1), integer values, and range ``[0, num_classes)``."""
import numpy as np


def sparse_labels(y_true, pred_shape, who, ignore_class=None):
    """``y_true`` as int64 of shape ``pred_shape[:-1]``; ValueError naming
    ``who`` for one-hot targets, fractional values or labels out of range
    (labels equal to ``ignore_class`` pass, as Keras ignores them)."""
    labels = np.asarray(y_true)
    pred_shape = tuple(pred_shape)
    lead, classes = pred_shape[:-1], pred_shape[-1]
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"{who}: targets must be integer class indices, got dtype {labels.dtype}")
    if labels.shape == lead + (1,) and classes != 1:
        labels = labels.reshape(lead)
    if labels.shape != lead:
        if labels.shape == pred_shape:
            raise ValueError(
                f"{who} expects integer class indices of shape {lead}, got targets of shape "
                f"{labels.shape} like the predictions (one-hot?): use the non-sparse "
                f"{'loss' if 'entropy' in who.lower() else 'metric'} (e.g. "
                f"CategoricalCrossentropy / CategoricalAccuracy), or pass np.argmax(y, axis=-1)")
        raise ValueError(f"{who}: targets have shape {labels.shape}, expected {lead} (one class "
                         f"index per prediction of shape {pred_shape})")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.array_equal(np.floor(labels), labels):
            raise ValueError(f"{who}: targets must be whole class indices, got non-integer values")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= classes)
    if ignore_class is not None:
        bad &= labels != ignore_class
    if bad.any():
        first = labels[bad].flat[0]
        raise ValueError(f"{who}: label {first} is out of range for {classes} classes "
                         f"(labels must lie in [0, {classes}))")
    return labels
