"""Activation functions, each a forward/backward pair on the C kernels.

``cnnc.activations.get("relu")`` (or the module attribute ``relu``) is an
:class:`ActivationFunction`: calling it computes the forward pass;
``forward(x, inplace=False)`` and ``backward(x, y, dy)`` are what layers use
(``x`` the input, ``y`` the output of the forward, ``dy`` the gradient with
respect to ``y``). Functions whose gradient is a function of the output alone
(``uses_input = False``) let a layer overwrite the pre-activation in place and
keep only ``y``.

Names as in Keras: linear, relu, relu6, leaky_relu, elu, selu, gelu, sigmoid,
hard_sigmoid, hard_silu (hard_swish), tanh, softmax, log_softmax, swish (silu),
softplus, softsign, exponential; and gelu_tanh (gelu's tanh approximation).
"""
import numpy as np

from cnnc import _kernels as ops
from cnnc.autodiff.dispatch import any_traced, unary

__all__ = ["ActivationFunction", "get", "serialize", "deserialize"]


class ActivationFunction:
    """One activation function. Subclasses define ``forward``/``backward``."""

    name = None
    uses_input = True  # whether backward needs the forward's input x

    def __call__(self, x):
        if any_traced(x):
            # Inside a traced call(): the same kernels, recorded on the tape.
            return unary(x, lambda v: self.forward(np.asarray(v, dtype=np.float32)),
                         lambda v, y, g: self.backward(np.asarray(v, dtype=np.float32), y,
                                                       np.asarray(g, dtype=np.float32)))
        return self.forward(np.asarray(x, dtype=np.float32))

    def forward(self, x, inplace=False):
        raise NotImplementedError

    def backward(self, x, y, dy):
        raise NotImplementedError

    @property
    def is_linear(self):
        return False

    def __repr__(self):
        return f"<activation {self.name}>"


class _Linear(ActivationFunction):
    name = "linear"
    uses_input = False

    def forward(self, x, inplace=False):
        return x

    def backward(self, x, y, dy):
        return dy

    @property
    def is_linear(self):
        return True


class _ReLU(ActivationFunction):
    name = "relu"
    uses_input = False  # y > 0 exactly where x > 0

    def forward(self, x, inplace=False):
        return ops.relu(x, out=x if inplace else None)

    def backward(self, x, y, dy):
        return ops.relu_backward(y, dy)


class _ReLU6(ActivationFunction):
    name = "relu6"
    uses_input = False

    def forward(self, x, inplace=False):
        return np.clip(x, 0.0, 6.0, out=x if inplace else None)

    def backward(self, x, y, dy):
        return np.where((y > 0.0) & (y < 6.0), dy, np.float32(0.0))


class _LeakyReLU(ActivationFunction):
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        self.negative_slope = float(negative_slope)

    def forward(self, x, inplace=False):
        return ops.leaky_relu(x, alpha=self.negative_slope)

    def backward(self, x, y, dy):
        return ops.leaky_relu_backward(x, dy, alpha=self.negative_slope)


class _ELU(ActivationFunction):
    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, x, inplace=False):
        return ops.elu(x, alpha=self.alpha)

    def backward(self, x, y, dy):
        return ops.elu_backward(x, dy, alpha=self.alpha)


class _SELU(ActivationFunction):
    """scale * elu(x, alpha) with the self-normalizing constants."""
    name = "selu"
    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946

    def forward(self, x, inplace=False):
        y = ops.elu(x, alpha=self.ALPHA)
        y *= np.float32(self.SCALE)
        return y

    def backward(self, x, y, dy):
        dx = ops.elu_backward(x, dy, alpha=self.ALPHA)
        dx *= np.float32(self.SCALE)
        return dx


class _GELU(ActivationFunction):
    name = "gelu"

    def __init__(self, approximate=False):
        self.approximate = bool(approximate)
        if self.approximate:
            self.name = "gelu_tanh"

    def forward(self, x, inplace=False):
        return ops.gelu(x, approximate=self.approximate)

    def backward(self, x, y, dy):
        return ops.gelu_backward(x, dy, approximate=self.approximate)


class _Sigmoid(ActivationFunction):
    name = "sigmoid"

    def forward(self, x, inplace=False):
        return ops.sigmoid(x)

    def backward(self, x, y, dy):
        return ops.sigmoid_backward(x, dy)


class _HardSigmoid(ActivationFunction):
    """relu6(x + 3) / 6, as Keras 3."""
    name = "hard_sigmoid"
    uses_input = False

    def forward(self, x, inplace=False):
        y = np.multiply(x, np.float32(1.0 / 6.0), out=x if inplace else None)
        y += np.float32(0.5)
        return np.clip(y, 0.0, 1.0, out=y)

    def backward(self, x, y, dy):
        return np.where((y > 0.0) & (y < 1.0), dy * np.float32(1.0 / 6.0), np.float32(0.0))


class _HardSwish(ActivationFunction):
    """x * relu6(x + 3) / 6 (Keras 3's hard_silu, ONNX's HardSwish)."""
    name = "hard_silu"

    def forward(self, x, inplace=False):
        gate = np.multiply(x, np.float32(1.0 / 6.0))
        gate += np.float32(0.5)
        np.clip(gate, 0.0, 1.0, out=gate)
        return np.multiply(x, gate, out=x if inplace else None)

    def backward(self, x, y, dy):
        # 0 below -3, 1 above 3, x / 3 + 1/2 between
        slope = np.multiply(x, np.float32(1.0 / 3.0))
        slope += np.float32(0.5)
        slope[x <= -3.0] = 0.0
        slope[x >= 3.0] = 1.0
        slope *= dy
        return slope


class _Tanh(ActivationFunction):
    name = "tanh"

    def forward(self, x, inplace=False):
        return ops.tanh(x)

    def backward(self, x, y, dy):
        return ops.tanh_backward(x, dy)


def _over_last_axis(fn, *arrays):
    """Run a last-axis kernel on arrays viewed as 2-D (rows, last)."""
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float32).reshape(-1, shape[-1]) for a in arrays]
    return fn(*flat).reshape(shape)


class _Softmax(ActivationFunction):
    """Softmax over the last axis."""
    name = "softmax"
    uses_input = False

    def forward(self, x, inplace=False):
        if x.ndim < 1:
            raise ValueError("softmax needs an input with at least one axis")
        return _over_last_axis(ops.softmax, x)

    def backward(self, x, y, dy):
        return _over_last_axis(ops.softmax_backward, y, dy)


class _LogSoftmax(ActivationFunction):
    name = "log_softmax"
    uses_input = False

    def forward(self, x, inplace=False):
        return _over_last_axis(ops.log_softmax, x)

    def backward(self, x, y, dy):
        return _over_last_axis(ops.log_softmax_backward, y, dy)


class _Swish(ActivationFunction):
    """x * sigmoid(x) (also called silu)."""
    name = "swish"

    def forward(self, x, inplace=False):
        s = ops.sigmoid(x)
        s *= x
        return s

    def backward(self, x, y, dy):
        # d/dx x s(x) = s + x s (1 - s) = s + y (1 - s)
        s = ops.sigmoid(x)
        dx = np.subtract(np.float32(1.0), s)
        dx *= y
        dx += s
        dx *= dy
        return dx


class _Softplus(ActivationFunction):
    name = "softplus"

    def forward(self, x, inplace=False):
        return np.logaddexp(np.float32(0.0), x, out=x if inplace else None)

    def backward(self, x, y, dy):
        dx = ops.sigmoid(x)
        dx *= dy
        return dx


class _Softsign(ActivationFunction):
    name = "softsign"

    def forward(self, x, inplace=False):
        return x / (np.float32(1.0) + np.abs(x))

    def backward(self, x, y, dy):
        d = np.float32(1.0) + np.abs(x)
        return dy / (d * d)


class _Exponential(ActivationFunction):
    name = "exponential"
    uses_input = False

    def forward(self, x, inplace=False):
        return np.exp(x, out=x if inplace else None)

    def backward(self, x, y, dy):
        return dy * y


linear = _Linear()
relu = _ReLU()
relu6 = _ReLU6()
leaky_relu = _LeakyReLU()
elu = _ELU()
selu = _SELU()
gelu = _GELU()
gelu_tanh = _GELU(approximate=True)  # the tanh approximation
sigmoid = _Sigmoid()
hard_sigmoid = _HardSigmoid()
hard_silu = _HardSwish()
hard_swish = hard_silu
tanh = _Tanh()
softmax = _Softmax()
log_softmax = _LogSoftmax()
swish = _Swish()
silu = swish
softplus = _Softplus()
softsign = _Softsign()
exponential = _Exponential()

_BY_NAME = {f.name: f for f in (linear, relu, relu6, leaky_relu, elu, selu, gelu, gelu_tanh,
                                sigmoid, hard_sigmoid, hard_silu, tanh, softmax, log_softmax,
                                swish, softplus, softsign, exponential)}
_BY_NAME["silu"] = swish
_BY_NAME["hard_swish"] = hard_silu
_BY_NAME["none"] = linear

__all__ += sorted(_BY_NAME)


class FunctionActivation(ActivationFunction):
    """An activation from a plain function written with :mod:`cnnc.ops`
    (e.g. ``activation=lambda x: x * ops.sigmoid(x)``): its backward
    re-runs the function on a traced input and differentiates it."""

    def __init__(self, function):
        self.function = function
        self.name = getattr(function, "__name__", "function")

    def forward(self, x, inplace=False):
        return np.asarray(self.function(x), dtype=np.float32)

    def backward(self, x, y, dy):
        from cnnc.autodiff import gradients, trace
        from cnnc.autodiff.tensor import Tensor, lift
        leaf = Tensor(np.asarray(x, dtype=np.float32), requires_grad=True)
        with trace(True, False):
            out = lift(self.function(leaf))
        (dx,), _ = gradients([out], [dy], [leaf])
        return np.zeros_like(leaf.value) if dx is None else np.asarray(dx, np.float32)


def get(identifier):
    """An ActivationFunction from None (linear), a name, an object with
    ``forward``/``backward`` methods, or a plain function written with
    :mod:`cnnc.ops` (differentiated automatically; not savable by name)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower())
        if fn is None:
            raise ValueError(f"unknown activation {identifier!r}; expected one of "
                             f"{sorted(_BY_NAME)}")
        return fn
    if isinstance(identifier, ActivationFunction):
        return identifier
    if all(callable(getattr(identifier, m, None)) for m in ("forward", "backward")):
        return identifier
    if callable(identifier):
        known = _BY_NAME.get(getattr(identifier, "__name__", None))
        if known is not None and getattr(identifier, "__module__", "").startswith("cnnc."):
            return known  # cnnc.ops.relu and friends: the fused activation
        return FunctionActivation(identifier)
    raise ValueError(f"activation must be None, a name such as 'relu', a cnnc.activations "
                     f"function or a callable; got {identifier!r}")


def serialize(activation):
    """The name stored in layer configs."""
    name = getattr(activation, "name", None)
    if name not in _BY_NAME or _BY_NAME[name] is not activation:
        raise ValueError(f"cannot serialize activation {activation!r}: only the built-in "
                         f"activations have a name")
    return name


def deserialize(name):
    return get(name)
