"""Low-level kernels on NumPy arrays (channels-last float32).

Every function checks shapes and dtypes, converts non-float32 or
non-contiguous inputs, and runs the C core with the GIL released.
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
