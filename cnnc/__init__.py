"""cnnc: convolutional neural networks on the CPU, with a plain C core."""
from cnnc._wait_policy import load_with_policy as _load_with_policy

# The first import of an extension loads the C library and its OpenMP runtime;
# NumPy loads OpenBLAS (cnnc._wait_policy).
_load_with_policy(lambda: (__import__("numpy"), __import__("cnnc._core")))

from cnnc._core import (  # noqa: E402,F401
    available_isas,
    core_version as _core_version,
    get_adaptive_team,
    get_cpu_quota,
    get_deterministic,
    get_num_threads,
    get_oversubscription,
    get_running_limit,
    get_team_limit,
    get_thread_limit,
    get_usable_cpus,
    isa,
    max_isa,
    release_workspace,
    set_adaptive_team,
    set_deterministic,
    set_isa,
    set_num_threads,
    set_oversubscription,
    set_running_limit,
    threads_for,
    threads_under_contention,
    work_grain,
)
from cnnc._wait_policy import bound_loaded_openblas_wait as _bound_loaded_openblas_wait  # noqa: E402

_bound_loaded_openblas_wait()

from cnnc._paths import (  # noqa: F401
    get_cmake_dir,
    get_include,
    get_library_dir,
    get_pkgconfig_dir,
)
from cnnc import ops  # noqa: F401

__version__ = _core_version()

# The Keras-style API as attributes of the package (cnnc.layers.Dense, ...), so
# Keras code runs with ``import cnnc as keras``.
from cnnc import (  # noqa: E402,F401
    activations, applications, callbacks, datasets, initializers, layers, losses, metrics,
    models, optimizers, random, regularizers, saving, utils,
)
from cnnc.layers import Input, InputLayer, Layer  # noqa: E402,F401
from cnnc.models import Model, Sequential  # noqa: E402,F401
