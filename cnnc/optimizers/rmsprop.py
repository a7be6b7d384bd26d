"""RMSprop (Hinton), optionally centered and with momentum."""
import numpy as np

from cnnc import ops
from cnnc.optimizers.optimizer import Optimizer


class RMSprop(Optimizer):
    """Divides the gradient by a running root mean square of recent
    gradients. Slots: ``velocity`` (mean square), ``momentum`` when
    ``momentum > 0``, ``average_gradient`` when ``centered``."""

    _default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
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
