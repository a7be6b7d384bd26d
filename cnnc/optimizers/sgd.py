"""Stochastic gradient descent with optional (Nesterov) momentum."""
import numpy as np

from cnnc import ops
from cnnc.optimizers.optimizer import Optimizer


class SGD(Optimizer):
    """``velocity = momentum * velocity - lr * g; w += velocity`` (Nesterov:
    ``w += momentum * velocity - lr * g``); plain ``w -= lr * g`` when
    momentum is 0. Slot: ``momentum`` (the velocity)."""

    _default_name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _create_slots(self, weight):
        return {"momentum": np.zeros_like(weight.value)} if self.momentum > 0 else {}

    def _update(self, param, grad, slots, lr, options):
        ops.sgd_update(param, grad, slots.get("momentum"), lr, momentum=self.momentum,
                       nesterov=self.nesterov, **options)

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)
