"""Adagrad (Duchi et al.): per-element rates from the sum of squared gradients."""
import math

import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, check_range


class Adagrad(Optimizer):
    """``accumulator += g^2; w -= learning_rate * g / sqrt(accumulator + epsilon)``
    (Keras's rule and defaults; PyTorch adds epsilon after the root and starts
    the accumulator at 0). Slot: ``accumulator``, starting at
    ``initial_accumulator_value``."""

    _default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_range("initial_accumulator_value",
                                                     initial_accumulator_value, 0.0, math.inf,
                                                     high_open=True)
        self.epsilon = check_range("epsilon", epsilon, 0.0, math.inf, high_open=True)

    def _create_slots(self, weight):
        return {"accumulator": np.full_like(weight.value, self.initial_accumulator_value)}

    def _update(self, param, grad, slots, lr, options):
        ops.adagrad_update(param, grad, slots["accumulator"], lr, epsilon=self.epsilon, **options)

    def get_config(self):
        return dict(super().get_config(), initial_accumulator_value=self.initial_accumulator_value,
                    epsilon=self.epsilon)
