"""The optimizer base class: learning rate (constant or schedule), gradient
clipping, decoupled weight decay, per-weight state ("slots") and its saving.

Subclasses create their slots in ``_create_slots`` and apply one update in
``_update`` by calling a C kernel of ``cnnc.ops``; parameters are updated in
place, so every reference to a weight array stays valid.
"""
import math

import numpy as np

from cnnc.optimizers import schedules as _schedules


class Optimizer:
    """Base class of cnnc optimizers (Keras 3 arguments).

    learning_rate: float or a ``LearningRateSchedule`` evaluated at
        ``iterations`` (0 for the first update).
    weight_decay: decoupled decay, ``w -= learning_rate * weight_decay * w``
        before the gradient step.
    clipnorm: clip each gradient to this L2 norm; global_clipnorm: scale all
        gradients together so their joint L2 norm is at most this;
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
    """

    _default_name = "optimizer"

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("use at most one of clipnorm and global_clipnorm")
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm)):
            if value is not None and not value > 0:
                raise ValueError(f"{arg} must be > 0, got {value!r}")
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.name = name or self._default_name
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.iterations = 0
        self._slots = {}  # id(weight) -> (weight, {slot name: array})
        self.learning_rate = learning_rate

    # -- learning rate -----------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate of the next update (a schedule is evaluated at
        the current ``iterations``)."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, _schedules.LearningRateSchedule):
            self._schedule = value
            self._learning_rate = None
            return
        if getattr(self, "_schedule", None) is not None:
            raise TypeError("this optimizer's learning rate is a schedule and cannot be set to "
                            "a number; create a new optimizer instead")
        value = float(value)
        if not value >= 0 or not math.isfinite(value):
            raise ValueError(f"learning_rate must be a finite number >= 0, got {value!r}")
        self._schedule = None
        self._learning_rate = value

    @property
    def lr(self):
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    # -- state -------------------------------------------------------------
    def _create_slots(self, weight):
        """Return {slot name: zero array} for one weight."""
        return {}

    def build(self, weights):
        """Create the state of every weight not seen yet."""
        for weight in weights:
            if id(weight) not in self._slots:
                self._slots[id(weight)] = (weight, self._create_slots(weight))

    def slots(self, weight):
        """The state arrays of ``weight`` (name -> array), created if needed."""
        self.build([weight])
        return self._slots[id(weight)][1]

    def has_slots(self, weight):
        return id(weight) in self._slots

    def reset(self):
        """Forget all state and restart the step count."""
        self._slots.clear()
        self.iterations = 0

    # -- updates -------------------------------------------------------------
    def _clip(self, grads):
        if self.clipnorm is not None:
            for g in grads:
                norm = math.sqrt(float(np.dot(g.reshape(-1), g.reshape(-1))))
                if norm > self.clipnorm:
                    np.multiply(g, np.float32(self.clipnorm / norm), out=g)
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(float(np.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
            if total > self.global_clipnorm:
                scale = np.float32(self.global_clipnorm / total)
                for g in grads:
                    np.multiply(g, scale, out=g)
        if self.clipvalue is not None:
            for g in grads:
                np.clip(g, -self.clipvalue, self.clipvalue, out=g)

    def apply(self, weights):
        """One update of every weight from its ``grad``, plus the gradient of
        its regularizer's penalty (the training step of a model). Gradients
        may be modified in place (regularization, clipping)."""
        for w in weights:
            if w.regularizer is not None:
                np.add(w.grad, w.regularizer.gradient(w.value), out=w.grad)
        self.apply_gradients([(w.grad, w) for w in weights])

    def apply_gradients(self, grads_and_vars):
        """One update from ``(gradient, Weight)`` pairs (Keras's signature).
        Gradients must be float32 C-contiguous arrays of the weights' shapes;
        they may be modified in place by clipping."""
        pairs = []
        for grad, weight in grads_and_vars:
            if grad is None:
                continue
            if not (isinstance(grad, np.ndarray) and grad.dtype == np.float32
                    and grad.flags.c_contiguous and grad.flags.writeable):
                grad = np.array(grad, dtype=np.float32, order="C")
            if grad.shape != weight.value.shape:
                raise ValueError(f"gradient of {weight.name!r} has shape {grad.shape}, "
                                 f"expected {weight.value.shape}")
            pairs.append((grad, weight))
        if not pairs:
            return
        if self.clipnorm is not None or self.global_clipnorm is not None or self.clipvalue is not None:
            self._clip([g for g, _ in pairs])
        lr = self.learning_rate
        decay = self._decay_factor(lr)
        for grad, weight in pairs:
            if id(weight) not in self._slots:
                self._slots[id(weight)] = (weight, self._create_slots(weight))
            if decay is not None:
                np.multiply(weight.value, decay, out=weight.value)
            self._update(weight.value, grad, self._slots[id(weight)][1], lr)
        self.iterations += 1

    def _decay_factor(self, lr):
        """Multiplier of the decoupled weight decay applied before the
        kernel, or None when the kernel applies it (or there is none)."""
        if not self.weight_decay:
            return None
        return np.float32(1.0 - lr * self.weight_decay)

    def _update(self, param, grad, slots, lr):
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    # -- serialization ---------------------------------------------------------
    def get_config(self):
        lr = (_schedules.serialize(self._schedule) if self._schedule is not None
              else self._learning_rate)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self.learning_rate:g} iterations={self.iterations}>"
