"""Losses (``cnnc.losses``), Keras names and semantics.

A loss object computes, for a batch, the per-sample loss ``(N,)`` and the
gradient of ``sum(per-sample loss)`` with respect to the prediction, both in
C kernels of ``cnnc.ops``. Models reduce as Keras's default
``"sum_over_batch_size"``: ``sum(loss_i * sample_weight_i) / N``.

Cross-entropies on a ``softmax`` (or ``sigmoid``) output are recognised by
``Model.compile``: the model then hands the pre-activation logits to
``compute_from_logits``, which runs the fused, numerically stable
``softmax_cross_entropy`` (``sigmoid_cross_entropy``) kernel instead of
taking the log of probabilities.
"""
import numpy as np

from cnnc import ops

__all__ = ["Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
           "mean_squared_error", "mean_absolute_error", "mse", "mae", "get", "serialize",
           "deserialize"]


def _float_targets(y_true, y_pred, name):
    y_true = np.asarray(y_true)
    if y_true.dtype != np.float32 or not y_true.flags.c_contiguous:
        y_true = np.ascontiguousarray(y_true, dtype=np.float32)
    if y_true.shape != y_pred.shape:
        if y_true.size == y_pred.size:
            y_true = y_true.reshape(y_pred.shape)
        else:
            raise ValueError(f"{name}: targets have shape {y_true.shape} but predictions have "
                             f"shape {y_pred.shape}")
    return y_true


class Loss:
    """Base class. Subclasses implement ``compute(y_true, y_pred) ->
    (per_sample_loss, grad)`` where grad is d(sum of per-sample losses)/d(y_pred).

    ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced scalar
    like a Keras loss object.
    """

    #: ``"softmax"``/``"sigmoid"`` when a preceding activation of that name
    #: can be fused into ``compute_from_logits``.
    fusable_activation = None

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "sum", "none", None):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def compute(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement compute")

    def compute_from_logits(self, y_true, logits):
        raise TypeError(f"{type(self).__name__} has no fused logits form")

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops_input(y_pred)
        per_sample, _ = self.compute(y_true, y_pred)
        if sample_weight is not None:
            per_sample = per_sample * np.asarray(sample_weight, np.float32).reshape(-1)
        if self.reduction in ("none", None):
            return per_sample
        total = float(np.sum(per_sample, dtype=np.float64))
        return total if self.reduction == "sum" else total / max(per_sample.shape[0], 1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def ops_input(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype != np.float32 or not y_pred.flags.c_contiguous:
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
    return y_pred


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _smooth(y_true, label_smoothing):
    if not label_smoothing:
        return y_true
    classes = y_true.shape[-1]
    return (y_true * np.float32(1.0 - label_smoothing)
            + np.float32(label_smoothing / classes)).astype(np.float32)


class CategoricalCrossentropy(Loss):
    """``-sum(y_true * log(y_pred))`` over the class axis; targets are
    one-hot (or probability) rows. ``from_logits``: ``y_pred`` are logits."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis not in (-1,):
            raise ValueError("cross-entropies are over the last axis (axis=-1)")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def compute(self, y_true, y_pred):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred)
        y_true = _smooth(_float_targets(y_true, y_pred, self.name), self.label_smoothing)
        return ops.categorical_cross_entropy(y_pred, y_true)

    def compute_from_logits(self, y_true, logits):
        y_true = _float_targets(y_true, logits, self.name)
        return ops.softmax_cross_entropy(logits, y_true, label_smoothing=self.label_smoothing)

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing, axis=self.axis)


def _int_labels(y_true, y_pred, name):
    y_true = np.asarray(y_true)
    n = y_pred.shape[0]
    if y_true.shape not in ((n,), (n, 1)):
        raise ValueError(f"{name}: integer targets must have shape ({n},) or ({n}, 1), "
                         f"got {y_true.shape}")
    labels = y_true.reshape(n)
    if labels.dtype.kind == "f":
        rounded = labels.astype(np.int64)
        if not np.array_equal(rounded, labels):
            raise ValueError(f"{name}: targets must be integer class indices")
        labels = rounded
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got {labels.dtype}")
    classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name}: class indices must be in [0, {classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return np.ascontiguousarray(labels, dtype=np.int64)


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class targets ``(N,)``."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)

    def compute(self, y_true, y_pred):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred)
        labels = _int_labels(y_true, y_pred, self.name)
        one_hot = np.zeros(y_pred.shape, np.float32)
        one_hot[np.arange(labels.shape[0]), labels] = 1.0
        return ops.categorical_cross_entropy(y_pred, one_hot)

    def compute_from_logits(self, y_true, logits):
        return ops.softmax_cross_entropy(logits, _int_labels(y_true, logits, self.name))

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits)


class BinaryCrossentropy(Loss):
    """Mean over the last axes of ``-(y log p + (1 - y) log(1 - p))``."""

    fusable_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        super().__init__(name, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _targets(self, y_true, y_pred):
        y_true = _float_targets(y_true, y_pred, self.name)
        if self.label_smoothing:
            y_true = (y_true * np.float32(1.0 - self.label_smoothing)
                      + np.float32(0.5 * self.label_smoothing)).astype(np.float32)
        return y_true

    def compute(self, y_true, y_pred):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred)
        return ops.binary_cross_entropy(y_pred, self._targets(y_true, y_pred))

    def compute_from_logits(self, y_true, logits):
        return ops.sigmoid_cross_entropy(logits, self._targets(y_true, logits))

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing)


class MeanSquaredError(Loss):
    """Mean over the non-batch axes of ``(y_true - y_pred) ** 2``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name, reduction)

    def compute(self, y_true, y_pred):
        return ops.mean_squared_error(y_pred, _float_targets(y_true, y_pred, self.name))


class MeanAbsoluteError(Loss):
    """Mean over the non-batch axes of ``|y_true - y_pred|``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name, reduction)

    def compute(self, y_true, y_pred):
        return ops.mean_absolute_error(y_pred, _float_targets(y_true, y_pred, self.name))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample categorical cross-entropy ``(N,)``."""
    return CategoricalCrossentropy(from_logits, label_smoothing, reduction="none")(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample cross-entropy with integer targets ``(N,)``."""
    return SparseCategoricalCrossentropy(from_logits, reduction="none")(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample binary cross-entropy ``(N,)``."""
    return BinaryCrossentropy(from_logits, label_smoothing, reduction="none")(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error ``(N,)``."""
    return MeanSquaredError(reduction="none")(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error ``(N,)``."""
    return MeanAbsoluteError(reduction="none")(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error

_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in (
    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
    MeanSquaredError, MeanAbsoluteError)}
_FUNCTIONS = {categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
              binary_crossentropy: BinaryCrossentropy,
              mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError}


def get(identifier):
    """A Loss object from a Keras name, a loss function of this module, a
    class, a config dict, or a Loss (returned as is)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown loss {identifier!r}; known: {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    raise TypeError(f"cannot use {identifier!r} as a loss: cnnc has no automatic differentiation, "
                    "so a custom loss must subclass cnnc.losses.Loss and return its gradient "
                    "from compute(y_true, y_pred)")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    classes = dict(_CLASSES, **(custom_objects or {}))
    cls = classes.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown loss class {config.get('class_name')!r}")
    return cls.from_config(config.get("config", {}))
