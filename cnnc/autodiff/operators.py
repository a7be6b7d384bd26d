"""Python operators (``+ - * / ** @``, unary minus, ``abs``, comparisons,
indexing) of traced tensors and weights, each one a :mod:`cnnc.ops` call,
and the array attributes both read from their ``value``."""


def _ops():
    # cnnc.ops imports the traced operations, which import this module.
    from cnnc import ops
    return ops


class Operators:
    """Mixin: arithmetic that dispatches to ``cnnc.ops`` (broadcasting as
    NumPy), so a Tensor or a Weight behaves like an array in a ``call()``,
    and a symbolic tensor of the functional API records the operation."""

    __slots__ = ()

    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __pow__(self, other):
        return _ops().power(self, other)

    def __rpow__(self, other):
        return _ops().power(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops().abs(self)

    def __getitem__(self, key):
        return _ops().get_item(self, key)

    def __lt__(self, other):
        return _ops().less(self, other)

    def __le__(self, other):
        return _ops().less_equal(self, other)

    def __gt__(self, other):
        return _ops().greater(self, other)

    def __ge__(self, other):
        return _ops().greater_equal(self, other)

    @property
    def T(self):
        return _ops().transpose(self)


class ArrayValue(Operators):
    """Mixin: the array attributes of an object holding an array ``value``."""

    __slots__ = ()

    @property
    def shape(self):
        return self.value.shape

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def size(self):
        return self.value.size

    def numpy(self):
        """The value as a NumPy array (no gradient flows through it)."""
        return self.value
