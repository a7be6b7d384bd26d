"""RMSprop (Hinton), optionally centered and with momentum."""
import math

import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, check_range


class RMSprop(Optimizer):
    """Divides the gradient by a running root mean square of recent
    gradients. Slots: ``velocity`` (mean square), ``momentum`` when
    ``momentum > 0``, ``average_gradient`` when ``centered``."""

    _default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_range("rho", rho, 0.0, 1.0, high_open=True)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_range("epsilon", epsilon, 0.0, math.inf, high_open=True)
        self.centered = bool(centered)

    def _create_slots(self, weight):
        slots = {"velocity": np.zeros_like(weight.value)}
        if self.momentum > 0:
            slots["momentum"] = np.zeros_like(weight.value)
        if self.centered:
            slots["average_gradient"] = np.zeros_like(weight.value)
        return slots

    def _update(self, param, grad, slots, lr, options):
        ops.rmsprop_update(param, grad, slots["velocity"], lr, rho=self.rho,
                           momentum=self.momentum, epsilon=self.epsilon, centered=self.centered,
                           mom=slots.get("momentum"), mg=slots.get("average_gradient"),
                           **options)

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum,
                    epsilon=self.epsilon, centered=self.centered)
