"""Operations on arrays and traced tensors (``keras.ops`` for cnnc).

On NumPy arrays the functions run the C kernels (channels-last float32:
every one checks shapes and dtypes, converts non-float32 or non-contiguous
inputs, and releases the GIL) or NumPy, and return arrays. Inside a traced
``call()`` (a custom layer, a subclassed model, a Lambda, a custom loss) the
same functions take the traced tensors flowing through the model and record
their gradients (see :mod:`cnnc.autodiff`).
"""
from cnnc._kernels import *  # noqa: F401,F403

# Keras's names, differentiable on traced tensors; they replace the kernels
# of the same name and keep their behaviour on arrays.
from cnnc.autodiff.math_ops import *  # noqa: F401,F403,E402
from cnnc.autodiff.shape_ops import *  # noqa: F401,F403,E402
from cnnc.autodiff.nn_ops import *  # noqa: F401,F403,E402


def _symbolic_aware(function, name):
    """``function``, recording an OpLayer node when it is given symbolic
    tensors of the functional API (imported then: layers import this module)."""
    import functools

    @functools.wraps(function)
    def op(*args, **kwargs):
        if has_symbolic(args, kwargs):
            from cnnc.layers.op_layer import OpLayer
            return OpLayer.apply(name, args, kwargs)
        return function(*args, **kwargs)
    return op


from cnnc.autodiff import KERAS_OPS as _KERAS_OPS  # noqa: E402
from cnnc.autodiff.dispatch import has_symbolic  # noqa: E402

for _name in sorted(_KERAS_OPS):
    globals()[_name] = _symbolic_aware(globals()[_name], _name)
del _name
