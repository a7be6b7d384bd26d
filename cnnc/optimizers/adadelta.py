"""Adadelta (Zeiler): rates from running averages of squared gradients and
squared updates."""
import math

import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, check_range


class Adadelta(Optimizer):
    """``acc_g = rho acc_g + (1 - rho) g^2``,
    ``delta = sqrt(acc_d + epsilon) / sqrt(acc_g + epsilon) * g``,
    ``acc_d = rho acc_d + (1 - rho) delta^2``, ``w -= learning_rate * delta``
    (Keras's and PyTorch's rule; Keras's defaults, use ``learning_rate=1.0``
    for the paper's form). Slots: ``accumulated_grad``,
    ``accumulated_delta_var``."""

    _default_name = "adadelta"

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_range("rho", rho, 0.0, 1.0, high_open=True)
        self.epsilon = check_range("epsilon", epsilon, 0.0, math.inf, high_open=True)

    def _create_slots(self, weight):
        return {"accumulated_grad": np.zeros_like(weight.value),
                "accumulated_delta_var": np.zeros_like(weight.value)}

    def _update(self, param, grad, slots, lr, options):
        ops.adadelta_update(param, grad, slots["accumulated_grad"], slots["accumulated_delta_var"],
                            lr, rho=self.rho, epsilon=self.epsilon, **options)

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, epsilon=self.epsilon)
