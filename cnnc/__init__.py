"""cnnc: convolutional neural networks on the CPU, with a plain C core."""
import os as _os

from cnnc._core import (  # noqa: F401
    core_version as _core_version,
    get_num_threads,
    isa,
    max_isa,
    release_workspace,
    set_isa,
    set_num_threads,
)
from cnnc import ops  # noqa: F401

__version__ = _core_version()

_PACKAGE_DIR = _os.path.dirname(_os.path.abspath(__file__))


def get_include():
    """Directory holding cnnc.h and cnnc/*.h of the installed C core."""
    return _os.path.join(_PACKAGE_DIR, "include")


def get_library_dir():
    """Directory holding the installed libcnnc shared library."""
    return _os.path.join(_PACKAGE_DIR, "lib")


# The Keras-style API as attributes of the package (cnnc.layers.Dense, ...).
from cnnc import (  # noqa: E402,F401
    activations, applications, callbacks, initializers, layers, losses, metrics, models,
    optimizers, regularizers, utils,
)
