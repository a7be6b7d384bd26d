"""Weight regularizers: penalties added to the training loss.

A regularizer ``r`` gives the penalty ``r(w)`` (a Python float) and its
gradient ``r.gradient(w)`` (an array of w's shape), with Keras's definitions:
``L1(l1)``: ``l1 * sum(|w|)``; ``L2(l2)``: ``l2 * sum(w**2)`` (no factor 1/2);
``L1L2(l1, l2)``: both. The coefficients are also exposed as ``r.l1`` and
``r.l2`` so that a trainer may fold the gradient into the optimizer update
(the ``l1=``/``l2=`` arguments of the ``cnnc.ops.*_update`` kernels).

Layers do not add the penalty gradient in ``backward``; the trainer does.
"""
import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


def _coefficient(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    return value


class Regularizer:
    """Base class: ``__call__(w) -> float`` and ``gradient(w) -> array``."""

    l1 = 0.0
    l2 = 0.0

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(w).sum())
        if self.l2:
            penalty += self.l2 * float(np.square(w).sum())
        return penalty

    def gradient(self, w):
        """d penalty / d w, float32 of w's shape (the subgradient 0 at w = 0 for L1)."""
        w = np.asarray(w, dtype=np.float32)
        grad = np.zeros_like(w)
        if self.l1:
            grad += np.float32(self.l1) * np.sign(w)
        if self.l2:
            grad += np.float32(2.0 * self.l2) * w
        return grad

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(Regularizer):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        self.l1 = _coefficient(l1, "l1")

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w**2)``."""

    def __init__(self, l2=0.01):
        self.l2 = _coefficient(l2, "l2")

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _coefficient(l1, "l1")
        self.l2 = _coefficient(l2, "l2")

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


def l1(l1=0.01):
    """An L1 regularizer (Keras's ``regularizers.l1``)."""
    return L1(l1)


def l2(l2=0.01):
    """An L2 regularizer (Keras's ``regularizers.l2``)."""
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """An L1 + L2 regularizer (Keras's ``regularizers.l1_l2``, both 0.01 by default)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_FACTORIES = {"l1": l1, "l2": l2, "l1_l2": l1_l2, "l1l2": l1_l2}


def serialize(regularizer):
    """``{"class_name": ..., "config": {...}}``, or None for None."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        raise ValueError(f"cannot serialize regularizer {regularizer!r}")
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config):
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a regularizer config must be a dict with 'class_name', got {config!r}")
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"unknown regularizer {config['class_name']!r}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A Regularizer from None, a name ("l1", "l2", "l1_l2"), a config dict or
    a Regularizer."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        factory = _FACTORIES.get(identifier.lower())
        if factory is None:
            raise ValueError(f"unknown regularizer {identifier!r}; expected one of "
                             f"{sorted(_FACTORIES)}")
        return factory()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"could not interpret regularizer {identifier!r}: expected a name, a "
                     f"config dict or a cnnc.regularizers.Regularizer")
