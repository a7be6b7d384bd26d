"""Adam (Kingma & Ba), with AMSGrad as an option."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, moment_rates


class Adam(Optimizer):
    """Adam with the bias corrections of the paper, step ``t = iterations + 1``.
    Slots: ``m`` (first moment), ``v`` (second moment) and, with
    ``amsgrad``, ``vhat`` (running maximum of ``v``)."""

    _default_name = "adam"
    _decoupled = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = moment_rates(beta_1, beta_2, epsilon)
        self.amsgrad = bool(amsgrad)

    def _create_slots(self, weight):
        slots = {"m": np.zeros_like(weight.value), "v": np.zeros_like(weight.value)}
        if self.amsgrad:
            slots["vhat"] = np.zeros_like(weight.value)
        return slots

    def _update(self, param, grad, slots, lr, options):
        ops.adam_update(param, grad, slots["m"], slots["v"], self.iterations + 1, lr,
                        beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                        vhat=slots.get("vhat"), **options)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon, amsgrad=self.amsgrad)
