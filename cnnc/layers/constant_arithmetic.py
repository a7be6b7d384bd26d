"""Arithmetic between a tensor and a stored constant."""
import numpy as np

from cnnc.layers.base import Layer

_OPERATIONS = ("add", "subtract", "multiply", "divide", "maximum", "minimum")


class ConstantArithmetic(Layer):
    """``y = x <op> c`` (or ``c <op> x`` with ``reverse=True``) for op one of
    "add", "subtract", "multiply", "divide", "maximum", "minimum" (the
    gradient of the last two goes to x where x holds the result, NaN
    propagates), with ``c`` a constant that
    broadcasts against the non-batch shape of ``x`` without enlarging it
    (NumPy rules). What ONNX's Add/Sub/Mul/Div with an initializer become.

    constant_shape: the shape of ``c`` (non-batch axes, rank at most that of
    the input without its batch axis). Weight: constant (not trainable: it is
    part of the computation, as a normalization's mean); set its value with
    ``set_weights`` or ``constant=`` at construction.
    """

    def __init__(self, operation, constant_shape=None, reverse=False, constant=None, **kwargs):
        super().__init__(**kwargs)
        if operation not in _OPERATIONS:
            raise ValueError(f"operation must be one of {_OPERATIONS}, got {operation!r}")
        if constant is not None:
            constant = np.asarray(constant, np.float32)
            if constant_shape is not None and tuple(constant_shape) != constant.shape:
                raise ValueError(f"constant has shape {constant.shape}, constant_shape says "
                                 f"{tuple(constant_shape)}")
            constant_shape = constant.shape
        if constant_shape is None:
            raise ValueError("ConstantArithmetic needs constant_shape or constant")
        self.operation = operation
        self.reverse = bool(reverse)
        self.constant_shape = tuple(int(d) for d in constant_shape)
        if any(d < 1 for d in self.constant_shape):
            raise ValueError(f"constant_shape must hold positive sizes, got {constant_shape!r}")
        self._initial = constant
        self.constant = None
        self._x = None

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        initial = self._initial
        self.constant = self.add_weight(
            "constant", self.constant_shape,
            "zeros" if initial is None else (lambda shape: initial), trainable=False)
        self._initial = None
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        inner = input_shape[1:]
        c = self.constant_shape
        if len(c) > len(inner) or any(
                b != 1 and a is not None and a != b for a, b in zip(inner[len(inner) - len(c):], c)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: a constant of shape {c} does "
                             f"not broadcast onto inputs of shape {input_shape} without "
                             f"enlarging them")
        return input_shape

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape)
        self._x = x if training else None
        c = self.constant.value
        a, b = (c, x) if self.reverse else (x, c)
        if self.operation == "add":
            return np.add(a, b, dtype=np.float32)
        if self.operation == "subtract":
            return np.subtract(a, b, dtype=np.float32)
        if self.operation == "multiply":
            return np.multiply(a, b, dtype=np.float32)
        if self.operation in ("maximum", "minimum"):
            return getattr(np, self.operation)(x, c, dtype=np.float32)
        return np.divide(a, b, dtype=np.float32)

    def backward(self, dy):
        x = self._x
        if x is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x, training=True) first")
        self.constant.grad.fill(0.0)
        c = self.constant.value
        if self.operation == "add":
            return dy
        if self.operation == "subtract":
            return np.negative(dy) if self.reverse else dy
        if self.operation == "multiply":
            return np.multiply(dy, c, dtype=np.float32)
        if self.operation in ("maximum", "minimum"):
            y = getattr(np, self.operation)(x, c)
            return np.where((x == y) | np.isnan(x), dy, np.float32(0.0)).astype(np.float32)
        if self.reverse:  # d(c / x) = -c / x^2
            return np.negative(dy * c / (x * x)).astype(np.float32, copy=False)
        return np.divide(dy, c, dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"operation": self.operation, "constant_shape": list(self.constant_shape),
                       "reverse": self.reverse})
        return config
