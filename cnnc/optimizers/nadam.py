"""Nadam (Dozat): Adam with Nesterov momentum and Keras's momentum schedule."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, moment_rates


class Nadam(Optimizer):
    """Keras's Nadam at step ``t = iterations + 1``, with
    ``mu_t = beta_1 (1 - 0.5 * 0.96^t)`` and ``P_t = mu_1 ... mu_t``:
    ``m = beta_1 m + (1 - beta_1) g``, ``v = beta_2 v + (1 - beta_2) g^2``,
    ``w -= learning_rate (mu_{t+1} m / (1 - P_t mu_{t+1}) + (1 - mu_t) g / (1 - P_t))
    / (sqrt(v / (1 - beta_2^t)) + epsilon)``. This is PyTorch's ``NAdam``
    with ``momentum_decay=1`` (its default 0.004 makes the schedule
    ``0.96^(0.004 t)``). Slots: ``momentum``, ``velocity``; ``P_t`` is a
    function of ``iterations`` (computed in double), so a saved step count
    restores it."""

    _default_name = "nadam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = moment_rates(beta_1, beta_2, epsilon)
        self._product = (0, 1.0)  # (step, mu_1 ... mu_step), continued step by step

    def _mu_product(self, step):
        done, product = self._product
        if done != step:
            if done > step:
                done, product = 0, 1.0
            product = ops.nadam_mu_product(step, self.beta_1, 1.0, done, product)
            self._product = (step, product)
        return product

    def _create_slots(self, weight):
        return {"momentum": np.zeros_like(weight.value), "velocity": np.zeros_like(weight.value)}

    def _update(self, param, grad, slots, lr, options):
        step = self.iterations + 1
        ops.nadam_update(param, grad, slots["momentum"], slots["velocity"], step, lr,
                         beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                         momentum_decay=1.0, mu_product=self._mu_product(step), **options)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)
