"""The optimizer base class: learning rate (constant or schedule), gradient
clipping, decoupled weight decay, a moving average of the weights (EMA),
per-weight state ("slots") and its saving.

Subclasses create their slots in ``_create_slots`` and apply one update in
``_update`` by calling a C kernel of ``cnnc.ops``. Parameters are updated in
place. When the slots are elementwise (``_elementwise_slots``, true for every
built-in optimizer), ``build`` or the first update moves the values,
gradients and slots of the weights it is given into flat buffers (see
``flat_state``): a model's whole update is then one kernel call over one
buffer. Each ``Weight.value`` / ``Weight.grad`` becomes a view into them, so
an array taken from a weight before that point no longer follows it.
Clipping factors, weight decay and the EMA belong to this class: a subclass
sees them only as the common keyword arguments of its kernel.
"""
import math
import re

import numpy as np

from cnnc import _kernels as ops
from cnnc._memory import trim_heap
from cnnc.optimizers import schedules as _schedules
from cnnc.optimizers.flat_state import FlatState


def check_range(arg, value, low, high, high_open=False):
    """Refuse a hyperparameter outside [low, high] (or [low, high)), NaN included."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        raise ValueError(f"{arg} must be in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def moment_rates(beta_1, beta_2, epsilon):
    """The checked (beta_1, beta_2, epsilon) of the Adam family."""
    return (check_range("beta_1", beta_1, 0.0, 1.0, high_open=True),
            check_range("beta_2", beta_2, 0.0, 1.0, high_open=True),
            check_range("epsilon", epsilon, 0.0, math.inf, high_open=True))


def _kernel_coefficients(regularizer):
    """(l1, l2) when the regularizer is one of the built-in L1/L2 penalties,
    which the update kernels apply themselves; None for any other."""
    from cnnc import regularizers
    if type(regularizer) in (regularizers.L1, regularizers.L2, regularizers.L1L2):
        return regularizer.l1, regularizer.l2
    return None


class Optimizer:
    """Base class of cnnc optimizers, with Keras 3's arguments (every
    optimizer takes these as keywords after its own).

    learning_rate: float or a ``LearningRateSchedule`` evaluated at
        ``iterations`` (0 for the first update).
    weight_decay: decoupled decay, ``w -= learning_rate * weight_decay * w``
        before the gradient step (skipping the weights named in
        ``exclude_from_weight_decay``).
    clipnorm: clip each gradient to this L2 norm; global_clipnorm: scale all
        gradients together so their joint L2 norm is at most this;
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        At most one of the three. Clipping sees the gradient plus the
        weight's regularization penalty (the gradient of the loss).
    use_ema: keep ``average = ema_momentum * average + (1 - ema_momentum) * w``
        after every update (``average = w`` at the first), in the slot
        ``average``; ``finalize_variable_values`` (called by ``fit`` at the
        end) copies the averages into the weights, and so does every
        ``ema_overwrite_frequency``-th update when that is set.
    """

    _default_name = "optimizer"
    # True when every slot has its weight's shape and ``_update`` works
    # elementwise, so one call may update many weights laid end to end in
    # one buffer; a subclass with other state sets it False and is updated
    # weight by weight.
    _elementwise_slots = True

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, name=None):
        clips = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(clips) > 1:
            raise ValueError(f"use at most one of clipnorm, clipvalue and global_clipnorm, got {clips}")
        for arg, value in clips.items():
            if not value > 0:
                raise ValueError(f"{arg} must be > 0, got {value!r}")
        if weight_decay is not None and not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if not 0.0 <= ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1], got {ema_momentum!r}")
        if ema_overwrite_frequency is not None and (
                isinstance(ema_overwrite_frequency, bool)
                or not isinstance(ema_overwrite_frequency, (int, np.integer))
                or ema_overwrite_frequency < 1):
            raise ValueError(f"ema_overwrite_frequency must be an integer >= 1 or None, got "
                             f"{ema_overwrite_frequency!r}")
        self.name = name or self._default_name
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.use_ema = bool(use_ema)
        self.ema_momentum = float(ema_momentum)
        self.ema_overwrite_frequency = (None if ema_overwrite_frequency is None
                                        else int(ema_overwrite_frequency))
        self.iterations = 0
        self._slots = {}  # id(weight) -> (weight, {slot name: array})
        self._no_decay_ids = set()
        self._no_decay_pattern = None
        self._flat = None  # FlatState of the weights last updated together
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

    def _new_slots(self, weight):
        """The subclass's slots of one weight, plus the moving average."""
        slots = self._create_slots(weight)
        if self.use_ema:
            slots["average"] = np.zeros_like(weight.value)
        return slots

    def build(self, weights):
        """Create the state of every weight not seen yet (and pack the
        weights into flat buffers, see the module docstring)."""
        weights = list(weights)
        if not self._pack(weights):
            for weight in weights:
                self._weight_slots(weight)

    def _weight_slots(self, weight):
        entry = self._slots.get(id(weight))
        if entry is None:
            entry = self._slots[id(weight)] = (weight, self._new_slots(weight))
        return entry[1]

    def _pack(self, weights):
        """Lay these weights end to end in flat buffers unless they are
        already; False where this optimizer updates weight by weight."""
        if not self._elementwise_slots or not weights or len({id(w) for w in weights}) != len(weights):
            return False
        if self._flat is None or not self._flat.holds(weights):
            flat = FlatState(weights, self._new_slots, {k: s for k, (_, s) in self._slots.items()})
            for weight in weights:
                self._slots[id(weight)] = (weight, flat.weight_slots[id(weight)])
            self._flat = flat
            # Per-weight arrays below the C library's adaptive mmap
            # threshold (raised by any larger block freed before them) sit
            # in its heap under blocks made after them, so freeing them
            # gives nothing back: the first step would hold them beside
            # their copies (VGG16's conv kernels, 74 MiB, while the
            # initializers drew whole kernels through float64 temporaries).
            trim_heap()
        return True

    def slots(self, weight):
        """The state arrays of ``weight`` (name -> array), created if needed."""
        return self._weight_slots(weight)

    def has_slots(self, weight):
        return id(weight) in self._slots

    def reset(self):
        """Forget all state and restart the step count."""
        self._slots.clear()
        self._flat = None
        self.iterations = 0

    # -- updates -------------------------------------------------------------
    def apply(self, weights):
        """One update of every weight from its ``grad`` plus the gradient of
        its regularizer's penalty: the training step of a model."""
        weights = list(weights)
        self._pack(weights)
        self._apply([(w.grad, w) for w in weights], regularize=True)

    def apply_gradients(self, grads_and_vars):
        """One update from ``(gradient, Weight)`` pairs (Keras's signature)."""
        self._apply(grads_and_vars, regularize=False)

    def _apply(self, grads_and_vars, regularize):
        pairs = []
        for grad, weight in grads_and_vars:
            if grad is None:
                continue
            grad = np.asarray(grad)
            if grad.shape != weight.shape:
                raise ValueError(f"gradient of {weight.name!r} has shape {grad.shape}, "
                                 f"expected {weight.shape}")
            pairs.append((grad, weight))
        if not pairs:
            return
        norm_clip = self.clipnorm is not None or self.global_clipnorm is not None
        penalties = []
        for i, (grad, weight) in enumerate(pairs):
            l1 = l2 = 0.0
            reg = weight.regularizer if regularize else None
            if reg is not None:
                folded = _kernel_coefficients(reg)
                if folded is None or norm_clip:
                    # The clipping norm must see the penalty's gradient.
                    pairs[i] = (np.add(grad, reg.gradient(weight.value), dtype=np.float32),
                                weight)
                else:
                    l1, l2 = folded
            penalties.append((l1, l2))
        scales = [1.0] * len(pairs)
        if self.clipnorm is not None:
            for i, (grad, _) in enumerate(pairs):
                norm = math.sqrt(ops.sum_squares(grad))
                if norm > self.clipnorm:
                    scales[i] = self.clipnorm / norm
        if self.global_clipnorm is not None:
            norm = math.sqrt(ops.global_norm_sq([g for g, _ in pairs]))
            if norm > self.global_clipnorm:
                scales = [s * self.global_clipnorm / norm for s in scales]
        lr = self.learning_rate
        keys = [(scales[i], penalties[i], self._decay_of(w)) for i, (_, w) in enumerate(pairs)]

        def options(i):
            return dict(l1=penalties[i][0], l2=penalties[i][1], weight_decay=keys[i][2], decoupled=True,
                        grad_scale=scales[i], clipvalue=self.clipvalue)

        packed = self._packed(pairs)
        if packed:
            # Consecutive weights with the same options in one call each:
            # without per-weight clipping or penalties, one call for all.
            flat, first = self._flat, 0
            for i in range(1, len(pairs) + 1):
                if i == len(pairs) or keys[i] != keys[first]:
                    begin, end = flat.span(first, i - 1)
                    if end > begin:
                        self._update(flat.value[begin:end], flat.grad[begin:end],
                                     {name: a[begin:end] for name, a in flat.slots.items()}, lr,
                                     options(first))
                    first = i
            for weight in flat.weights:
                weight.touch()  # written through the flat buffer, not weight.value
        else:
            for i, (grad, weight) in enumerate(pairs):
                self._update(weight.value, grad, self._weight_slots(weight), lr, options(i))
        if self.use_ema:
            self._update_average([w for _, w in pairs], packed)
        self.iterations += 1

    def _packed(self, pairs):
        """Whether the pairs are exactly the packed weights with their own
        gradients, in order."""
        flat = self._flat
        return (flat is not None and len(pairs) == len(flat.weights)
                and all(w is fw and g is w.grad for (g, w), fw in zip(pairs, flat.weights))
                and flat.holds(flat.weights))

    # -- weight decay and moving average -----------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """No weight decay for the weights of ``var_list``, nor for those whose
        name contains a match of one of the regular expressions ``var_names``
        (e.g. ``["bias"]``), as Keras. Call before training."""
        self._no_decay_ids = {id(w) for w in var_list or ()}
        names = [str(n) for n in var_names or ()]
        self._no_decay_pattern = re.compile("|".join(names)) if names else None

    def _decay_of(self, weight):
        if not self.weight_decay or id(weight) in self._no_decay_ids:
            return 0.0
        if self._no_decay_pattern is not None and self._no_decay_pattern.search(weight.name):
            return 0.0
        return self.weight_decay

    def _update_average(self, weights, packed=False):
        """Keras's EMA step, after the update of ``iterations`` (0-based):
        the first update starts the average at the weight; every
        ``ema_overwrite_frequency``-th one copies the averages back.
        ``packed``: the weights are exactly the flat buffers' (one call over
        them; the kernel is elementwise, so the bits are the same)."""
        momentum = self.ema_momentum if self.iterations > 0 else 0.0
        if packed:
            flat = self._flat
            begin, end = flat.span(0, len(flat.weights) - 1)
            ops.ema_update(flat.slots["average"][begin:end], flat.value[begin:end], momentum)
        else:
            for weight in weights:
                ops.ema_update(self._slots[id(weight)][1]["average"], weight.value, momentum)
        freq = self.ema_overwrite_frequency
        if freq and (self.iterations + 1) % freq == 0:
            self.finalize_variable_values(weights)

    def finalize_variable_values(self, var_list):
        """With ``use_ema``, copy each weight's moving average into it (what
        ``fit`` does after its last epoch); otherwise nothing."""
        if not self.use_ema:
            return
        for weight in var_list:
            entry = self._slots.get(id(weight))
            if entry is not None:
                np.copyto(weight.value, entry[1]["average"])

    def _update(self, param, grad, slots, lr, options):
        """Run the C kernel: ``options`` are the common keyword arguments of
        the ``cnnc.ops.*_update`` functions."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    # -- serialization ---------------------------------------------------------
    def get_config(self):
        lr = (_schedules.serialize(self._schedule) if self._schedule is not None
              else self._learning_rate)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self.learning_rate:g} iterations={self.iterations}>"
