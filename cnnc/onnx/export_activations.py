"""cnnc activation functions as ONNX nodes."""
import math

import numpy as np

from cnnc.onnx.graph_builder import Value

_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)


def _gelu(g, x, hint, approximate):
    if g.opset >= 20:
        return g.node("Gelu", [x], hint, approximate="tanh" if approximate else "none")
    half = g.const(np.float32(0.5), f"{hint}_half")
    one = g.const(np.float32(1.0), f"{hint}_one")
    if approximate:  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [x, g.node("Mul", [x, x], f"{hint}_sq")], f"{hint}_cube")
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(np.float32(0.044715),
                                                                 f"{hint}_c")], f"{hint}_c3")],
                       f"{hint}_inner")
        scaled = g.node("Mul", [inner, g.const(np.float32(math.sqrt(2.0 / math.pi)),
                                               f"{hint}_k")], f"{hint}_scaled")
        gate = g.node("Tanh", [scaled], f"{hint}_tanh")
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        gate = g.node("Erf", [g.node("Mul", [x, g.const(np.float32(1.0 / math.sqrt(2.0)),
                                                        f"{hint}_k")], f"{hint}_scaled")],
                      f"{hint}_erf")
    return g.node("Mul", [g.node("Mul", [x, half], f"{hint}_halfx"),
                          g.node("Add", [gate, one], f"{hint}_gate")], hint)


def activation(g, fn, value, hint):
    """``fn`` (a cnnc.activations function) applied to ``value``."""
    name = getattr(fn, "name", None)
    x = value.name
    if name in (None, "linear") and getattr(fn, "is_linear", False):
        return value
    if name == "relu":
        y = g.node("Relu", [x], hint)
    elif name == "relu6":
        y = g.node("Clip", [x, g.const(np.float32(0), f"{hint}_min"),
                            g.const(np.float32(6), f"{hint}_max")], hint)
    elif name == "leaky_relu":
        y = g.node("LeakyRelu", [x], hint, alpha=fn.negative_slope)
    elif name == "elu":
        y = g.node("Elu", [x], hint, alpha=fn.alpha)
    elif name == "selu":
        y = g.node("Selu", [x], hint, alpha=_SELU[0], gamma=_SELU[1])
    elif name in ("gelu", "gelu_tanh"):
        y = _gelu(g, x, hint, fn.approximate)
    elif name == "sigmoid":
        y = g.node("Sigmoid", [x], hint)
    elif name == "hard_sigmoid":
        y = g.node("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
    elif name == "hard_silu" and g.opset >= 14:
        y = g.node("HardSwish", [x], hint)
    elif name == "hard_silu":
        gate = g.node("HardSigmoid", [x], f"{hint}_gate", alpha=1.0 / 6.0, beta=0.5)
        y = g.node("Mul", [x, gate], hint)
    elif name == "tanh":
        y = g.node("Tanh", [x], hint)
    elif name in ("softmax", "log_softmax"):
        axis = value.perm.index(value.rank - 1)  # cnnc's last axis
        y = g.node("Softmax" if name == "softmax" else "LogSoftmax", [x], hint, axis=axis)
    elif name == "swish":
        y = g.node("Mul", [x, g.node("Sigmoid", [x], f"{hint}_sigmoid")], hint)
    elif name == "softplus":
        y = g.node("Softplus", [x], hint)
    elif name == "softsign":
        y = g.node("Softsign", [x], hint)
    elif name == "exponential":
        y = g.node("Exp", [x], hint)
    else:
        raise ValueError(f"cannot export the activation {fn!r} to ONNX (custom activations "
                         f"have no ONNX form)")
    return Value(y, value.perm, value.shape)
