"""Argument normalization shared by the ops wrappers.

Policy: inputs that are not float32 are converted (as NumPy users expect of a
function); inputs that are not C-contiguous are copied. Output arrays passed
by the caller (``out=``) are never converted: they must be float32 and
C-contiguous with the right shape, or a TypeError/ValueError is raised.
"""
import numpy as np


def as_float32(x, name="x", allow_empty=False):
    """Return ``x`` as a C-contiguous float32 ndarray, converting if needed."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous:
        array = x
    else:
        try:
            if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
                raise TypeError
            array = np.ascontiguousarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            kind = getattr(getattr(x, "dtype", None), "name", type(x).__name__)
            raise TypeError(f"{name} must be a real numeric array, got {kind}") from None
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return array


def check_out(out, shape, name="out"):
    """Validate a caller-supplied output array, or allocate one."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    return out


def same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_b} has shape {b.shape}, expected the shape of {name_a} {a.shape}")


def real_scalar(value, name):
    """``value`` as a Python float: TypeError if it is not a real number,
    ValueError if it is NaN (range checks are the C function's)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if value != value:
        raise ValueError(f"{name} is NaN")
    return value
