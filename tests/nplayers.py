"""Small layers written in plain NumPy (float64 inside) for testing the
model machinery independently of the C kernels."""
import zlib

import numpy as np

from cnnc.layers.base import Layer


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class NpDense(Layer):
    """x @ kernel + bias, optionally followed by tanh or softmax."""

    def __init__(self, units, activation=None, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.act = activation
        self.kernel_regularizer = kernel_regularizer

    @property
    def activation_name(self):
        return self.act

    def build(self, input_shape):
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        fan_in = input_shape[-1]
        self.kernel = self.add_weight("kernel", (fan_in, self.units),
                                      lambda s: rng.uniform(-1, 1, s) / np.sqrt(fan_in),
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,),
                                    lambda s: rng.uniform(-0.1, 0.1, s))
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        self._x = x.astype(np.float64)
        z = self._x @ self.kernel.value + self.bias.value
        self._y = None
        if self.act == "tanh":
            self._y = np.tanh(z)
        elif self.act == "softmax" and not self._logits_mode:
            self._y = softmax(z)
        out = z if self._y is None else self._y
        return out.astype(np.float32)

    def backward(self, dy):
        dy = dy.astype(np.float64)
        if self._y is None:
            dz = dy
        elif self.act == "tanh":
            dz = dy * (1 - self._y ** 2)
        else:
            dz = self._y * (dy - (dy * self._y).sum(-1, keepdims=True))
        if self.trainable:
            self.kernel.grad[...] = self._x.T @ dz
            self.bias.grad[...] = dz.sum(0)
        else:
            self._zero_grads()
        if not self.need_input_gradient:
            return None
        return (dz @ self.kernel.value.T).astype(np.float32)

    def get_config(self):
        return dict(super().get_config(), units=self.units, activation=self.act)


class NpAdd(Layer):
    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def forward(self, xs, training=False):
        return np.sum(xs, axis=0).astype(np.float32)

    def backward(self, dy):
        return [dy, dy]


class NpConcat(Layer):
    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (sum(s[-1] for s in input_shape),)

    def forward(self, xs, training=False):
        self._sizes = [x.shape[-1] for x in xs]
        return np.concatenate(xs, axis=-1)

    def backward(self, dy):
        return list(np.split(dy, np.cumsum(self._sizes)[:-1], axis=-1))


class NpSplit(Layer):
    """One input, two outputs (its first and second halves)."""

    def compute_output_shape(self, input_shape):
        half = input_shape[-1] // 2
        return [tuple(input_shape[:-1]) + (half,), tuple(input_shape[:-1]) + (half,)]

    def forward(self, x, training=False):
        half = x.shape[-1] // 2
        return [np.ascontiguousarray(x[..., :half]), np.ascontiguousarray(x[..., half:])]

    def backward(self, dys):
        return np.concatenate(dys, axis=-1)
