"""Adamax (Kingma & Ba, section 7.1): Adam with the infinity norm."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, moment_rates


class Adamax(Optimizer):
    """``m = beta_1 m + (1 - beta_1) g``, ``u = max(beta_2 u, |g|)``,
    ``w -= learning_rate / (1 - beta_1^t) * m / (u + epsilon)`` at step
    ``t = iterations + 1`` (Keras's rule; PyTorch adds epsilon to ``|g|``
    inside the maximum instead). Slots: ``m``, ``u``."""

    _default_name = "adamax"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = moment_rates(beta_1, beta_2, epsilon)

    def _create_slots(self, weight):
        return {"m": np.zeros_like(weight.value), "u": np.zeros_like(weight.value)}

    def _update(self, param, grad, slots, lr, options):
        ops.adamax_update(param, grad, slots["m"], slots["u"], self.iterations + 1, lr,
                          beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, **options)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)
