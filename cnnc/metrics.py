"""Metrics (``cnnc.metrics``): stateful accumulators over an epoch, Keras
names and semantics.

``update_state(y_true, y_pred, sample_weight=None)`` adds a batch,
``result()`` returns the value so far, ``reset_state()`` starts again.
The string ``"accuracy"`` (or ``"acc"``) in ``Model.compile`` becomes the
accuracy that fits the loss, as in Keras: binary for binary cross-entropy
or a single output unit, sparse for sparse categorical cross-entropy,
categorical otherwise.
"""
import numpy as np

from cnnc._sparse_labels import sparse_labels

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "accuracy", "binary_accuracy",
           "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
           "sparse_top_k_categorical_accuracy", "MeanSquaredError", "MeanAbsoluteError",
           "RootMeanSquaredError", "mean_squared_error", "mean_absolute_error", "get",
           "resolve_accuracy"]


class Metric:
    """Base class: subclasses implement update_state, result, reset_state.

    ``state_names``: the attributes holding the metric's state as sums
    (floats or arrays) that add up across data shards, so that data-parallel
    training can combine the ranks' metrics exactly.
    """

    state_names = ()

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result")

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state")

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """Weighted mean of the values given to ``update_state(values,
    sample_weight=None)`` (used for the running loss)."""

    state_names = ("total", "count")

    def __init__(self, name="mean"):
        super().__init__(name)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
            return
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim > values.ndim and weights.shape[:values.ndim] == values.shape:
            # Weights per position (a mask) for values per sample: each sample
            # weighs the mean of its positions' weights.
            weights = weights.mean(axis=tuple(range(values.ndim, weights.ndim)))
        if values.ndim and weights.shape != values.shape:
            weights = np.broadcast_to(weights.reshape((-1,) + (1,) * (values.ndim - 1)),
                                      values.shape)
        self.total += float((values * weights).sum())
        self.count += float(weights.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """Mean of a per-sample function ``fn(y_true, y_pred, **kwargs) -> (N,)``."""

    def __init__(self, fn, name=None, **kwargs):
        super().__init__(name or fn.__name__)
        self.fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self):
        return dict(super().get_config(), **self._fn_kwargs)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# -- per-sample functions -----------------------------------------------------

def accuracy(y_true, y_pred):
    """Exact equality of targets and predictions, averaged per sample."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    equal = (y_true.reshape(y_pred.shape) == y_pred).astype(np.float32)
    return equal.reshape(equal.shape[0], -1).mean(axis=1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of outputs where ``(y_pred > threshold) == y_true`` per sample."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    equal = ((y_pred > threshold) == (y_true > 0.5)).astype(np.float32)
    return equal.reshape(equal.shape[0], -1).mean(axis=1)


def categorical_accuracy(y_true, y_pred):
    """1 where ``argmax(y_true) == argmax(y_pred)``, per sample."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the integer target equals ``argmax(y_pred)``, per sample."""
    y_pred = np.asarray(y_pred)
    labels = sparse_labels(y_true, y_pred.shape, "sparse_categorical_accuracy")
    return (labels == np.argmax(y_pred, axis=-1)).astype(np.float32)


def _in_top_k(labels, y_pred, k):
    # A target is in the top k when fewer than k classes score strictly higher.
    target_scores = y_pred[np.arange(y_pred.shape[0]), labels]
    higher = (y_pred > target_scores[:, None]).sum(axis=-1)
    return (higher < k).astype(np.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the one-hot target is among the k highest predictions."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the integer target is among the k highest predictions."""
    y_pred = np.asarray(y_pred)
    return _in_top_k(sparse_labels(y_true, y_pred.shape, "sparse_top_k_categorical_accuracy"), y_pred, k)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of ``(y_true - y_pred) ** 2``."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    diff = np.asarray(y_true, dtype=np.float64).reshape(y_pred.shape) - y_pred
    return (diff * diff).reshape(diff.shape[0], -1).mean(axis=1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean of ``|y_true - y_pred|``."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    diff = np.asarray(y_true, dtype=np.float64).reshape(y_pred.shape) - y_pred
    return np.abs(diff).reshape(diff.shape[0], -1).mean(axis=1)


# -- metric classes -------------------------------------------------------------

class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy"):
        super().__init__(accuracy, name)

    def get_config(self):
        return {"name": self.name}


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(binary_accuracy, name, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(categorical_accuracy, name)

    def get_config(self):
        return {"name": self.name}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Accuracy against integer labels. ``ignore_class``: positions labelled
    with it are left out of the mean (the accuracy ``"accuracy"`` resolves
    to for a SparseCategoricalCrossentropy with ``ignore_class`` takes the
    loss's; Keras's metric has no such argument and counts them as misses)."""

    def __init__(self, name="sparse_categorical_accuracy", ignore_class=None):
        super().__init__(sparse_categorical_accuracy, name)
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(
                ignore_class, (int, np.integer))):
            raise ValueError(f"ignore_class must be None or an integer, got {ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.ignore_class is None:
            return super().update_state(y_true, y_pred, sample_weight)
        y_pred = np.asarray(y_pred)
        labels = sparse_labels(y_true, y_pred.shape, self.name, self.ignore_class)
        kept = labels != self.ignore_class
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float32)
            weights = weights.reshape(weights.shape + (1,) * (kept.ndim - weights.ndim))
            kept = kept * weights
        return Mean.update_state(self, labels == np.argmax(y_pred, axis=-1), kept)

    def get_config(self):
        config = {"name": self.name}
        if self.ignore_class is not None:
            config["ignore_class"] = self.ignore_class
        return config


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        super().__init__(top_k_categorical_accuracy, name, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        super().__init__(sparse_top_k_categorical_accuracy, name, k=k)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error"):
        super().__init__(mean_squared_error, name)

    def get_config(self):
        return {"name": self.name}


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error"):
        super().__init__(mean_absolute_error, name)

    def get_config(self):
        return {"name": self.name}


class RootMeanSquaredError(MeanSquaredError):
    """``sqrt`` of the mean squared error over everything seen."""

    def __init__(self, name="root_mean_squared_error"):
        super().__init__(name)

    def result(self):
        return float(np.sqrt(super().result()))


class _ConfusionMetric(Metric):
    """Counts over all (flattened) outputs: prediction positive when
    ``y_pred > thresholds``; ``class_id`` restricts to one output column,
    ``top_k`` to the k highest predictions of each row."""

    state_names = ("true_positives", "false_positives", "false_negatives")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        super().__init__(name)
        self.thresholds = 0.5 if thresholds is None else float(thresholds)
        self.top_k = top_k
        self.class_id = class_id
        self.reset_state()

    def reset_state(self):
        self.true_positives = 0.0
        self.false_positives = 0.0
        self.false_negatives = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred, dtype=np.float32)
        y_true = np.asarray(y_true).reshape(y_pred.shape) > 0.5
        positive = y_pred > self.thresholds
        if self.top_k is not None:
            kth = -np.sort(-y_pred, axis=-1)[..., min(self.top_k, y_pred.shape[-1]) - 1:][..., :1]
            positive &= y_pred >= kth
        if self.class_id is not None:
            positive = positive[..., self.class_id]
            y_true = y_true[..., self.class_id]
        if sample_weight is None:
            weights = np.ones(positive.shape, np.float64)
        else:
            weights = np.broadcast_to(np.asarray(sample_weight, np.float64).reshape(
                (-1,) + (1,) * (positive.ndim - 1)), positive.shape)
        self.true_positives += float(weights[positive & y_true].sum())
        self.false_positives += float(weights[positive & ~y_true].sum())
        self.false_negatives += float(weights[~positive & y_true].sum())

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_ConfusionMetric):
    """``true_positives / (true_positives + false_positives)``."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision"):
        super().__init__(thresholds, top_k, class_id, name)

    def result(self):
        denominator = self.true_positives + self.false_positives
        return self.true_positives / denominator if denominator else 0.0


class Recall(_ConfusionMetric):
    """``true_positives / (true_positives + false_negatives)``."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall"):
        super().__init__(thresholds, top_k, class_id, name)

    def result(self):
        denominator = self.true_positives + self.false_negatives
        return self.true_positives / denominator if denominator else 0.0


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision, "recall": Recall, "mean": Mean,
    "mean_squared_error": MeanSquaredError, "mean_absolute_error": MeanAbsoluteError,
    "root_mean_squared_error": RootMeanSquaredError,
}
_ALIASES = {"mse": MeanSquaredError, "mae": MeanAbsoluteError, "rmse": RootMeanSquaredError}
_CLASSES = {cls.__name__: cls for cls in (
    Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall,
    MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError)}
_FUNCTIONS = {binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
              sparse_categorical_accuracy: SparseCategoricalAccuracy,
              top_k_categorical_accuracy: TopKCategoricalAccuracy,
              sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
              mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError}


def resolve_accuracy(name, loss, output_shape):
    """The accuracy metric Keras picks for the string ``"accuracy"``/``"acc"``
    given the compiled loss and the output shape."""
    from cnnc import losses
    if isinstance(loss, losses.BinaryCrossentropy) or (output_shape and output_shape[-1] == 1):
        return BinaryAccuracy(name=name)
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return SparseCategoricalAccuracy(name=name, ignore_class=loss.ignore_class)
    return CategoricalAccuracy(name=name)


def get(identifier, loss=None, output_shape=None):
    """A Metric from a name, a metric function, a class, a config dict, a
    per-sample function ``fn(y_true, y_pred)``, or a Metric."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return resolve_accuracy(identifier, loss, output_shape)
        if identifier.lower() in _ALIASES:
            return _ALIASES[identifier.lower()](name=identifier)
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown metric {identifier!r}; known: "
                             f"{sorted(_BY_NAME) + ['accuracy']}")
        return cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown metric class {identifier.get('class_name')!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        return MeanMetricWrapper(identifier, getattr(identifier, "__name__", "metric"))
    raise TypeError(f"cannot interpret {identifier!r} as a metric")
