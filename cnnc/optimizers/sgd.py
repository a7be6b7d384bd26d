"""Stochastic gradient descent with optional (Nesterov) momentum."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, check_range


class SGD(Optimizer):
    """``velocity = momentum * velocity - lr * g; w += velocity`` (Nesterov:
    ``w += momentum * velocity - lr * g``); plain ``w -= lr * g`` when
    momentum is 0. Slot: ``momentum`` (the velocity)."""

    _default_name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def _create_slots(self, weight):
        return {"momentum": np.zeros_like(weight.value)} if self.momentum > 0 else {}

    def _update(self, param, grad, slots, lr, options):
        ops.sgd_update(param, grad, slots.get("momentum"), lr, momentum=self.momentum,
                       nesterov=self.nesterov, **options)

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)
