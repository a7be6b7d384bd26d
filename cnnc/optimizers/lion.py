"""Lion (Chen et al., 2023): sign of an interpolated momentum."""
import numpy as np

from cnnc import _kernels as ops
from cnnc.optimizers.optimizer import Optimizer, check_range


class Lion(Optimizer):
    """``w -= learning_rate * sign(beta_1 m + (1 - beta_1) g)``, then
    ``m = beta_2 m + (1 - beta_2) g`` (Keras's rule and defaults). Its
    updates have unit size per element: a learning rate 3-10x smaller than
    AdamW's and a weight decay 3-10x larger keep a similar strength.
    Slot: ``momentum``."""

    _default_name = "lion"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 < beta_1 <= 1.0:
            raise ValueError(f"beta_1 must be in (0, 1] (0 makes Lion sign SGD), got {beta_1!r}")
        self.beta_1 = float(beta_1)
        self.beta_2 = check_range("beta_2", beta_2, 0.0, 1.0)

    def _create_slots(self, weight):
        return {"momentum": np.zeros_like(weight.value)}

    def _update(self, param, grad, slots, lr, options):
        ops.lion_update(param, grad, slots["momentum"], lr, beta_1=self.beta_1, beta_2=self.beta_2,
                        **options)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2)
