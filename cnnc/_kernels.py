"""The C kernels on NumPy arrays, by the names :mod:`cnnc.ops` gives them
before its Keras-named, differentiable functions replace some of them
(``matmul``, ``conv2d``, ``relu``, ...).

Built-in layers, activations, losses and optimizers call these directly:
they run on arrays and have their own fused backward, so the checks for
traced and symbolic tensors of ``cnnc.ops`` would only add Python work to
every call of the training hot path.
"""
from cnnc._activation import *  # noqa: F401,F403
from cnnc._gemm import *  # noqa: F401,F403
from cnnc._conv import *  # noqa: F401,F403
from cnnc._pool import *  # noqa: F401,F403
from cnnc._norm import *  # noqa: F401,F403
from cnnc._elementwise import *  # noqa: F401,F403
from cnnc._loss import *  # noqa: F401,F403
from cnnc._optim import *  # noqa: F401,F403
from cnnc._augment import *  # noqa: F401,F403
from cnnc._spatial import *  # noqa: F401,F403
