"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter)."""
from cnnc.optimizers.adam import Adam


class AdamW(Adam):
    """Adam plus ``w -= learning_rate * weight_decay * w`` at every step
    (Keras's default ``weight_decay=0.004``)."""

    _default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay,
                         **kwargs)
