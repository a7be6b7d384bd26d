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

Custom losses are written as Keras writes them, with :mod:`cnnc.ops`: a
function ``fn(y_true, y_pred)`` given to ``compile`` (wrapped in a
:class:`LossFunctionWrapper`) or a Loss subclass implementing ``call``;
their gradient comes from automatic differentiation.
"""
import numpy as np

from cnnc import _kernels as ops
from cnnc._masks import masked_loss
from cnnc.autodiff.loss_call import traced_loss
from cnnc._sparse_labels import sparse_labels

__all__ = ["Loss", "LossFunctionWrapper", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
           "mean_squared_error", "mean_absolute_error", "mse", "mae", "get", "serialize",
           "deserialize"]


class Loss:
    """Base class. Subclasses implement ``compute(y_true, y_pred,
    sample_weight=None, grad_scale=1.0, need_grad=True) -> (loss, grad)``:
    ``loss[i] = w_i * L_i`` per sample ``(N,)`` and ``grad = grad_scale *
    d(sum(loss)) / d(y_pred)`` (None when ``need_grad`` is false).

    ``loss(y_true, y_pred, sample_weight=None)`` returns the reduced value
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

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        if type(self).call is Loss.call:
            raise NotImplementedError(f"{type(self).__name__} must implement call or compute")
        return traced_loss(self.call, y_true, y_pred, sample_weight, grad_scale, need_grad)

    def call(self, y_true, y_pred):
        """Keras's form: the loss per sample (or per element) written with
        :mod:`cnnc.ops`; ``compute`` differentiates it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call or compute")

    def compute_from_logits(self, y_true, logits, sample_weight=None, grad_scale=1.0,
                            need_grad=True):
        raise TypeError(f"{type(self).__name__} has no fused logits form")

    def compute_masked(self, y_true, y_pred, mask, sample_weight=None, grad_scale=1.0,
                       need_grad=True, from_logits=False):
        """``compute`` (``from_logits``: ``compute_from_logits``) over the
        positions a mask of ``y_pred.shape[:-1]`` keeps, reduced as Keras
        reduces a masked loss: the batch mean is the mean over the kept
        positions (see :func:`cnnc._masks.masked_loss`)."""
        compute = self.compute_from_logits if from_logits else self.compute
        return masked_loss(compute, y_true, y_pred, mask, sample_weight, grad_scale, need_grad,
                           rescale=self._rescales_masked())

    def _rescales_masked(self):
        return self.reduction in ("sum_over_batch_size", "mean")

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample, _ = self.compute(y_true, y_pred, sample_weight=sample_weight, need_grad=False)
        if self.reduction in ("none", None):
            return per_sample
        total = float(np.sum(per_sample, dtype=np.float64))
        return total if self.reduction == "sum" else total / max(per_sample.shape[0], 1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred, **kwargs)`` written with
    :mod:`cnnc.ops`. Saved by the function's name: load the model with
    ``custom_objects={name: fn}``."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction)
        self.fn = fn
        self.fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def get_config(self):
        name = getattr(self.fn, "__name__", "<lambda>")
        if name == "<lambda>":
            raise ValueError("a loss given as a lambda cannot be saved; use a named function "
                             "and load with custom_objects={name: function}")
        return dict(super().get_config(), fn=name, **self.fn_kwargs)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        name = config.pop("fn")
        fn = (custom_objects or {}).get(name)
        if fn is None:
            raise ValueError(f"the loss function {name!r} is not known: pass "
                             f"custom_objects={{{name!r}: function}}")
        return cls(fn, **config)


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _check_smoothing(label_smoothing):
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return float(label_smoothing)


class CategoricalCrossentropy(Loss):
    """``-sum(y_true * log(y_pred))`` over the last (class) axis, with
    Keras's clipping of probabilities to ``[1e-7, 1 - 1e-7]``. Targets are
    one-hot (or probability) rows, label-smoothed by ``label_smoothing``.
    ``from_logits``: ``y_pred`` are logits (fused, stable softmax)."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError("cross-entropies are over the last axis (axis=-1)")
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        self.axis = axis

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred, sample_weight, grad_scale, need_grad)
        return ops.categorical_cross_entropy(y_pred, y_true, label_smoothing=self.label_smoothing,
                                             sample_weight=sample_weight, grad_scale=grad_scale,
                                             need_grad=need_grad)

    def compute_from_logits(self, y_true, logits, sample_weight=None, grad_scale=1.0,
                            need_grad=True):
        return ops.softmax_cross_entropy(logits, y_true, label_smoothing=self.label_smoothing,
                                         sample_weight=sample_weight, grad_scale=grad_scale,
                                         need_grad=need_grad)

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing, axis=self.axis)


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class targets ``(N,)`` (or
    ``(N, 1)``, or ``(N, ...)`` per position for segmentation).

    ``ignore_class``: targets of that value contribute nothing, and with the
    default ``"sum_over_batch_size"`` reduction the batch loss is the mean
    over the *valid* elements only, ``sum(w * loss over valid) / count(valid)``
    (as Keras's mask and PyTorch's ``ignore_index`` with ``reduction="mean"``);
    a batch with no valid element has loss 0. The per-sample values that
    ``compute`` returns carry the factor ``count(all) / count(valid)`` so that
    the trainer's division by the batch size gives that mean.

    ``label_smoothing``: the target of label ``k`` becomes ``(1 - s)`` on class
    ``k`` plus ``s / C`` on every class, as ``CategoricalCrossentropy`` with
    one-hot targets and PyTorch's ``cross_entropy(label_smoothing=s)`` with
    class indices (Keras's sparse loss has no such option)."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", label_smoothing=0.0):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(
                ignore_class, (int, np.integer))):
            raise ValueError(f"ignore_class must be None or an integer, got {ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def _valid_scale(self, labels):
        """count(all) / count(valid) when ignored elements must leave the mean, else 1."""
        if self.ignore_class is None or self.reduction != "sum_over_batch_size":
            return 1.0
        valid = int(np.count_nonzero(labels != self.ignore_class))
        return labels.size / valid if valid else 0.0

    def _scaled(self, kernel, y_true, y_pred, sample_weight, grad_scale, need_grad, **kwargs):
        labels = sparse_labels(y_true, np.shape(y_pred), self.name, self.ignore_class)
        scale = self._valid_scale(labels)
        loss, grad = kernel(y_pred, labels, sample_weight=sample_weight,
                            grad_scale=grad_scale * scale, ignore_index=self.ignore_class,
                            label_smoothing=self.label_smoothing, need_grad=need_grad, **kwargs)
        if scale != 1.0:
            loss *= np.float32(scale)
        return loss, grad

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred, sample_weight, grad_scale, need_grad)
        return self._scaled(ops.categorical_cross_entropy, y_true, y_pred, sample_weight,
                            grad_scale, need_grad)

    def compute_masked(self, y_true, y_pred, mask, sample_weight=None, grad_scale=1.0,
                       need_grad=True, from_logits=False):
        """A model mask and ``ignore_class`` together: one mask (kept and not
        ignored), one mean over what it keeps (as Keras)."""
        if self.ignore_class is None:
            return super().compute_masked(y_true, y_pred, mask, sample_weight, grad_scale,
                                          need_grad, from_logits)
        labels = sparse_labels(y_true, np.shape(y_pred), self.name, self.ignore_class)
        keep = np.logical_and(mask, labels != self.ignore_class)
        kernel = (ops.softmax_cross_entropy if from_logits or self.from_logits
                  else ops.categorical_cross_entropy)

        def compute(labels, y_pred, **kwargs):
            return kernel(y_pred, labels, ignore_index=self.ignore_class, **kwargs)
        return masked_loss(compute, labels, y_pred, keep, sample_weight, grad_scale, need_grad,
                           rescale=self._rescales_masked())

    def compute_from_logits(self, y_true, logits, sample_weight=None, grad_scale=1.0,
                            need_grad=True):
        return self._scaled(ops.softmax_cross_entropy, y_true, logits, sample_weight, grad_scale,
                            need_grad)

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    ignore_class=self.ignore_class, label_smoothing=self.label_smoothing)


class BinaryCrossentropy(Loss):
    """Mean over the non-batch axes of ``-(y log p + (1 - y) log(1 - p))``
    (p clipped to ``[1e-7, 1 - 1e-7]`` as Keras); ``from_logits``: stable
    form on logits."""

    fusable_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        if self.from_logits:
            return self.compute_from_logits(y_true, y_pred, sample_weight, grad_scale, need_grad)
        return ops.binary_cross_entropy(y_pred, y_true, label_smoothing=self.label_smoothing,
                                        sample_weight=sample_weight, grad_scale=grad_scale,
                                        need_grad=need_grad)

    def compute_from_logits(self, y_true, logits, sample_weight=None, grad_scale=1.0,
                            need_grad=True):
        return ops.sigmoid_cross_entropy(logits, y_true, label_smoothing=self.label_smoothing,
                                         sample_weight=sample_weight, grad_scale=grad_scale,
                                         need_grad=need_grad)

    def get_config(self):
        return dict(super().get_config(), from_logits=self.from_logits,
                    label_smoothing=self.label_smoothing)


class MeanSquaredError(Loss):
    """Mean over the non-batch axes of ``(y_true - y_pred) ** 2``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name, reduction)

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        return ops.mean_squared_error(y_pred, y_true, sample_weight=sample_weight,
                                      grad_scale=grad_scale, need_grad=need_grad)


class MeanAbsoluteError(Loss):
    """Mean over the non-batch axes of ``|y_true - y_pred|``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name, reduction)

    def compute(self, y_true, y_pred, sample_weight=None, grad_scale=1.0, need_grad=True):
        return ops.mean_absolute_error(y_pred, y_true, sample_weight=sample_weight,
                                       grad_scale=grad_scale, need_grad=need_grad)


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
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"cannot use {identifier!r} as a loss: give a name, a Loss, or a function "
                    f"fn(y_true, y_pred) written with cnnc.ops")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    classes = dict(_CLASSES, LossFunctionWrapper=LossFunctionWrapper, **(custom_objects or {}))
    cls = classes.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown loss class {config.get('class_name')!r}")
    if cls is LossFunctionWrapper:
        return cls.from_config(config.get("config", {}), custom_objects)
    return cls.from_config(config.get("config", {}))
