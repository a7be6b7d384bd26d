"""OpLayer: a :mod:`cnnc.ops` function applied to symbolic tensors of the
functional API (``y = ops.relu(x) * 2`` on an ``Input``), as Keras records
operations on KerasTensors."""
import numpy as np

from cnnc import _weight_limit
from cnnc.layers.base import Layer, unique_name


def _encode(value, tensors):
    """A JSON-able template of an argument; symbolic tensors become
    ``{"tensor": i}`` and are collected into ``tensors``."""
    if getattr(type(value), "_is_symbolic_tensor", False):
        tensors.append(value)
        return {"tensor": len(tensors) - 1}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, slice):
        return {"slice": [_encode(v, tensors) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, dict):
        raise TypeError("dict arguments of an op on symbolic tensors are not supported")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    return value


def _check_template(template, op):
    """Count the tensors of a template (at least one) and bound, while a
    file is loaded, the integers that size arrays (repeats, pads, shapes)."""
    count = 0
    stack = [template]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "tensor" in item:
                count += 1
            elif "array" in item:
                _weight_limit.check_computed(len(str(item["array"])), f"op {op!r}")
                if np.dtype(item.get("dtype", "float32")).kind not in "biuf":
                    raise ValueError(f"op {op!r}: arrays of numbers only")
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            ints = [v for v in item if isinstance(v, int) and not isinstance(v, bool)]
            if ints:
                _weight_limit.check_computed(int(np.prod([abs(v) for v in ints],
                                                         dtype=np.float64)), f"op {op!r}")
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            _weight_limit.check_computed(abs(item), f"op {op!r}")
    return count


def _decode(template, tensors):
    if isinstance(template, list):
        return [_decode(v, tensors) for v in template]
    if isinstance(template, dict):
        if "tensor" in template:
            return tensors[template["tensor"]]
        if "tuple" in template:
            return tuple(_decode(v, tensors) for v in template["tuple"])
        if "slice" in template:
            return slice(*(_decode(v, tensors) for v in template["slice"]))
        if "ellipsis" in template:
            return Ellipsis
        if "array" in template:
            return np.asarray(template["array"], dtype=np.dtype(template["dtype"]))
        raise ValueError(f"unknown argument template {template!r}")
    return template


class OpLayer(Layer):
    """Applies the ``cnnc.ops`` function ``op`` with the argument template
    ``args``/``kwargs`` (the symbolic tensors it was called on are the
    layer's inputs). Differentiated automatically; saved by the op's name."""

    def __init__(self, op, args=(), kwargs=None, **layer_kwargs):
        from cnnc.autodiff import KERAS_OPS
        if op not in KERAS_OPS:
            raise ValueError(f"OpLayer: {op!r} is not a cnnc.ops operation")
        layer_kwargs.setdefault("name", unique_name(op))
        super().__init__(**layer_kwargs)
        self.op = op
        self.args = list(args)
        self.kwargs = dict(kwargs or {})
        if _check_template([self.args, self.kwargs], op) == 0:
            raise ValueError(f"OpLayer {op!r} has no tensor input")

    @classmethod
    def apply(cls, op, args, kwargs):
        """Record ``op(*args, **kwargs)`` on symbolic tensors: a new node."""
        tensors = []
        layer = cls(op, [_encode(a, tensors) for a in args],
                    {k: _encode(v, tensors) for k, v in kwargs.items()})
        return layer(tensors if len(tensors) > 1 else tensors[0])

    def call(self, inputs):
        from cnnc import ops
        tensors = inputs if isinstance(inputs, list) else [inputs]
        args = [_decode(a, tensors) for a in self.args]
        kwargs = {k: _decode(v, tensors) for k, v in self.kwargs.items()}
        return getattr(ops, self.op)(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({"op": self.op, "args": self.args, "kwargs": self.kwargs})
        return config
