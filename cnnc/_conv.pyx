# cython: language_level=3, boundscheck=False, wraparound=False
"""Convolutions (2-D, 1-D, transposed 2-D), channels-last, forward and backward.

Shapes and padding rules follow Keras/TensorFlow: x (N, H, W, Cin), w (KH, KW,
Cin // groups, Cout), "same" padding puts the odd pixel at the bottom/right.
"""
import operator

import numpy as np

from libc.stdint cimport int64_t
from cnnc._pointers cimport in_ptr, out_ptr
from cnnc._common cimport cnnc_status, check_status, CNNC_OK
from cnnc._arrays import as_float32

cdef extern from "cnnc.h" nogil:
    ctypedef struct cnnc_conv2d_desc:
        int64_t batch, in_h, in_w, in_channels, out_channels
        int64_t kernel_h, kernel_w
        int64_t stride_h, stride_w
        int64_t dilation_h, dilation_w
        int64_t pad_top, pad_bottom, pad_left, pad_right
        int64_t groups
    cnnc_status cnnc_conv2d_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                    const float *bias, float *y)
    cnnc_status cnnc_conv2d_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy,
                                          float *dx)
    cnnc_status cnnc_conv2d_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy,
                                             float *dw, float *db)
    cnnc_status cnnc_conv2d_transpose_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                              const float *bias, float *y)
    cnnc_status cnnc_conv2d_transpose_backward_data(const cnnc_conv2d_desc *desc, const float *w,
                                                    const float *dy, float *dx)
    cnnc_status cnnc_conv2d_transpose_backward_weights(const cnnc_conv2d_desc *desc, const float *x,
                                                       const float *dy, float *dw, float *db)

ctypedef cnnc_status (*forward_fn)(const cnnc_conv2d_desc *, const float *, const float *, const float *,
                                   float *) noexcept nogil
ctypedef cnnc_status (*backward_data_fn)(const cnnc_conv2d_desc *, const float *, const float *,
                                         float *) noexcept nogil
ctypedef cnnc_status (*backward_weights_fn)(const cnnc_conv2d_desc *, const float *, const float *,
                                            float *, float *) noexcept nogil

__all__ = [
    "conv2d", "conv2d_backward", "conv1d", "conv1d_backward",
    "conv2d_transpose", "conv2d_transpose_backward", "conv_output_length", "same_padding",
]


# ---- argument parsing --------------------------------------------------------

def _int(value, name):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


def _ints(value, count, name, minimum):
    """An int or a sequence of `count` ints, each >= minimum."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{name} must be an int or a sequence of {count} ints, got {value!r}")
        values = tuple(_int(v, name) for v in value)
    else:
        values = (_int(value, name),) * count
    for v in values:
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def same_padding(length, kernel, stride, dilation):
    """TensorFlow's "same" padding along one axis: (before, after), the odd
    pixel after. The output length is ceil(length / stride)."""
    out = -(-length // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - length, 0)
    return total // 2, total - total // 2


def conv_output_length(length, kernel, stride, dilation, pad_before, pad_after):
    """Output length of a convolution along one axis (floor division)."""
    return (length + pad_before + pad_after - (kernel - 1) * dilation - 1) // stride + 1


def _padding_2d(padding, size, kernel, strides, dilation):
    """((top, bottom), (left, right)) from "valid", "same", an int, a pair of
    ints (symmetric per axis) or ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode == "same":
            return tuple(same_padding(size[i], kernel[i], strides[i], dilation[i]) for i in range(2))
        raise ValueError(f"padding must be 'valid', 'same' or explicit ((top, bottom), (left, right)), got {padding!r}")
    if isinstance(padding, (list, tuple)) and len(padding) == 2 and all(isinstance(p, (list, tuple)) for p in padding):
        pads = tuple(_ints(p, 2, "padding", 0) for p in padding)
    else:
        try:
            pads = tuple((p, p) for p in _ints(padding, 2, "padding", 0))
        except TypeError:
            raise ValueError(f"padding must be 'valid', 'same' or explicit ((top, bottom), (left, right)), "
                             f"got {padding!r}") from None
    return pads


def _padding_1d(padding, length, kernel, stride, dilation):
    """(left, right) from "valid", "same", "causal", an int or (left, right)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            return same_padding(length, kernel, stride, dilation)
        if mode == "causal":
            return ((kernel - 1) * dilation, 0)
        raise ValueError(f"padding must be 'valid', 'same', 'causal' or explicit (left, right), got {padding!r}")
    try:
        return _ints(padding, 2, "padding", 0)
    except TypeError:
        raise ValueError(f"padding must be 'valid', 'same', 'causal' or explicit (left, right), got {padding!r}") from None


def _array(value, name, ndim, layout):
    a = as_float32(value, name)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")
    return a


class _Geometry:
    """A validated 2-D convolution problem (the forward direction)."""

    def __init__(self, x_shape, w_shape, strides, pads, dilation, groups):
        n, h, w, cin = x_shape
        kh, kw, cin_g, cout = w_shape
        groups = _int(groups, "groups")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        if cin % groups:
            raise ValueError(f"groups = {groups} does not divide the {cin} input channels of x")
        if cout % groups:
            raise ValueError(f"groups = {groups} does not divide the {cout} output channels of w")
        if cin_g * groups != cin:
            raise ValueError(f"w has shape {tuple(w_shape)}, expected (KH, KW, {cin // groups}, Cout) for "
                             f"{cin} input channels and groups = {groups}")
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.strides, self.pads, self.dilation, self.groups = strides, pads, dilation, groups
        out = []
        for axis, (size, k, s, d, (p0, p1)) in enumerate(zip((h, w), (kh, kw), strides, dilation, pads)):
            span = (k - 1) * d + 1
            if span > size + p0 + p1:
                name = ("height", "width")[axis]
                raise ValueError(f"w: the kernel {name} {k} (dilated to {span}) is larger than the padded input "
                                 f"{name} {size} + {p0} + {p1}")
            out.append(conv_output_length(size, k, s, d, p0, p1))
        self.y_shape = (n, out[0], out[1], cout)


cdef cnnc_conv2d_desc _desc(geometry):
    cdef cnnc_conv2d_desc d
    d.batch, d.in_h, d.in_w, d.in_channels = geometry.x_shape
    d.kernel_h, d.kernel_w = geometry.w_shape[0], geometry.w_shape[1]
    d.out_channels = geometry.w_shape[3]
    d.stride_h, d.stride_w = geometry.strides
    d.dilation_h, d.dilation_w = geometry.dilation
    (d.pad_top, d.pad_bottom), (d.pad_left, d.pad_right) = geometry.pads
    d.groups = geometry.groups
    return d


def _bias(b, channels):
    if b is None:
        return None
    b = as_float32(b, "b")
    if b.shape != (channels,):
        raise ValueError(f"b has shape {b.shape}, expected ({channels},)")
    return b


def _check_dy(dy, shape):
    dy = as_float32(dy, "dy")
    if dy.shape != tuple(shape):
        raise ValueError(f"dy has shape {dy.shape}, expected the output shape {tuple(shape)}")
    return dy


def _geometry_2d(x, w, strides, padding, dilation, groups):
    strides = _ints(strides, 2, "strides", 1)
    dilation = _ints(dilation, 2, "dilation", 1)
    pads = _padding_2d(padding, x.shape[1:3], w.shape[:2], strides, dilation)
    return _Geometry(x.shape, w.shape, strides, pads, dilation, groups)


# ---- the three passes on a geometry -----------------------------------------

cdef _run_forward(cnnc_conv2d_desc d, x, w, b, y_shape, forward_fn fn):
    y = np.empty(y_shape, np.float32)
    cdef const float *px = in_ptr(x)
    cdef const float *pw = in_ptr(w)
    cdef const float *pb = in_ptr(b)
    cdef float *py = out_ptr(y)
    cdef cnnc_status status
    with nogil:
        status = fn(&d, px, pw, pb, py)
    check_status(status)
    return y


def _forward(geometry, x, w, b):
    return _run_forward(_desc(geometry), x, w, b, geometry.y_shape, cnnc_conv2d_forward)


cdef tuple _run_backward(cnnc_conv2d_desc d, x, w, dy, dx_shape, dw_shape, int64_t db_len,
                         need_dx, need_dw, backward_data_fn data_fn, backward_weights_fn weights_fn,
                         need_db=True):
    """The two backward passes shared by conv2d and its transpose: dx, then
    dw and db, each skipped when not needed (None is returned for it; db
    needs dw too). Skipping db (a layer without bias) skips a pass over dy
    and leaves dw's bits as they are."""
    dx = np.empty(dx_shape, np.float32) if need_dx else None
    dw = np.empty(dw_shape, np.float32) if need_dw else None
    db = np.empty((db_len,), np.float32) if need_dw and need_db else None
    cdef const float *px = in_ptr(x)
    cdef const float *pw = in_ptr(w)
    cdef const float *pdy = in_ptr(dy)
    cdef float *pdx = out_ptr(dx)
    cdef float *pdw = out_ptr(dw)
    cdef float *pdb = out_ptr(db)
    cdef cnnc_status status = CNNC_OK
    with nogil:
        if pdx != NULL:
            status = data_fn(&d, pw, pdy, pdx)
        if status == CNNC_OK and pdw != NULL:
            status = weights_fn(&d, px, pdy, pdw, pdb)
    check_status(status)
    return dx, dw, db


def _backward(geometry, x, w, dy, need_dx, need_dw, need_db):
    return _run_backward(_desc(geometry), x, w, dy, geometry.x_shape, geometry.w_shape,
                         geometry.w_shape[3], need_dx, need_dw,
                         cnnc_conv2d_backward_data, cnnc_conv2d_backward_weights, need_db)


# ---- Conv2D -------------------------------------------------------------------

def conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1):
    """2-D convolution (cross-correlation, as Keras and PyTorch).

    x: (N, H, W, Cin); w: (KH, KW, Cin // groups, Cout); b: (Cout,) or None.
    strides, dilation: int or (h, w). padding: "valid", "same" (TensorFlow's
    rule: output ceil(size / stride), odd padding pixel at the bottom/right),
    an int, (ph, pw), or ((top, bottom), (left, right)). groups divides Cin and
    Cout (groups == Cin is a depthwise convolution).
    Returns y: (N, OH, OW, Cout) float32.
    """
    x = _array(x, "x", 4, "(N, H, W, Cin)")
    w = _array(w, "w", 4, "(KH, KW, Cin // groups, Cout)")
    geometry = _geometry_2d(x, w, strides, padding, dilation, groups)
    return _forward(geometry, x, w, _bias(b, w.shape[3]))


def conv2d_backward(x, w, dy, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1, need_dx=True,
                    need_dw=True, need_db=True):
    """Gradients of conv2d: returns (dx, dw, db) given dy (N, OH, OW, Cout);
    dx is None when need_dx is False (e.g. for the first layer), dw and db
    are None when need_dw is False (frozen weights), db alone when need_db
    is False (no bias; dw has the same bits either way)."""
    x = _array(x, "x", 4, "(N, H, W, Cin)")
    w = _array(w, "w", 4, "(KH, KW, Cin // groups, Cout)")
    geometry = _geometry_2d(x, w, strides, padding, dilation, groups)
    dy = _check_dy(dy, geometry.y_shape)
    return _backward(geometry, x, w, dy, need_dx, need_dw, need_db)


# ---- Conv1D -------------------------------------------------------------------

def _geometry_1d(x, w, stride, padding, dilation, groups):
    stride = _ints(stride, 1, "stride", 1)[0]
    dilation = _ints(dilation, 1, "dilation", 1)[0]
    pads = _padding_1d(padding, x.shape[1], w.shape[0], stride, dilation)
    n, length, cin = x.shape
    return _Geometry((n, 1, length, cin), (1,) + w.shape, (1, stride), ((0, 0), pads), (1, dilation), groups)


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1):
    """1-D convolution. x: (N, L, Cin); w: (K, Cin // groups, Cout); b: (Cout,).
    padding: "valid", "same", "causal" (all padding on the left, Keras), an int
    or (left, right). Returns (N, OL, Cout)."""
    x = _array(x, "x", 3, "(N, L, Cin)")
    w = _array(w, "w", 3, "(K, Cin // groups, Cout)")
    geometry = _geometry_1d(x, w, stride, padding, dilation, groups)
    y = _forward(geometry, x, w, _bias(b, w.shape[2]))
    return y.reshape(y.shape[0], y.shape[2], y.shape[3])


def conv1d_backward(x, w, dy, stride=1, padding="valid", dilation=1, groups=1, need_dx=True, need_dw=True,
                    need_db=True):
    """Gradients of conv1d: (dx, dw, db) given dy (N, OL, Cout); None for the
    parts not needed (db: also when need_db is False)."""
    x = _array(x, "x", 3, "(N, L, Cin)")
    w = _array(w, "w", 3, "(K, Cin // groups, Cout)")
    geometry = _geometry_1d(x, w, stride, padding, dilation, groups)
    n, _, length, cout = geometry.y_shape
    dy = _check_dy(dy, (n, length, cout))
    dx, dw, db = _backward(geometry, x, w, dy, need_dx, need_dw, need_db)
    return (None if dx is None else dx.reshape(x.shape)), (None if dw is None else dw.reshape(w.shape)), db


# ---- Conv2DTranspose -----------------------------------------------------------

def _transpose_geometry(x, w, strides, padding, output_padding, dilation, groups):
    """The forward convolution that the transposed one is the adjoint of: its
    input is the transposed convolution's output."""
    strides = _ints(strides, 2, "strides", 1)
    dilation = _ints(dilation, 2, "dilation", 1)
    groups = _int(groups, "groups")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if output_padding is not None:
        output_padding = _ints(output_padding, 2, "output_padding", 0)
        for op, s in zip(output_padding, strides):
            if op >= s:
                raise ValueError(f"output_padding {output_padding} must be smaller than strides {strides}")
    n, h, w_in, cin = x.shape
    kh, kw, filters_g, w_cin = w.shape
    if w_cin != cin:
        raise ValueError(f"w has shape {w.shape}, expected (KH, KW, filters // groups, {cin}) for x with "
                         f"{cin} channels")
    if cin % groups:
        raise ValueError(f"groups = {groups} does not divide the {cin} input channels of x")
    sizes, pads = [], []
    mode = padding.lower() if isinstance(padding, str) else None
    explicit = None if mode is not None else _padding_2d(padding, (1, 1), (1, 1), (1, 1), (1, 1))
    if mode is not None and mode not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid', 'same' or explicit ((top, bottom), (left, right)), "
                         f"got {padding!r}")
    for axis, (size, k, s, d) in enumerate(zip((h, w_in), (kh, kw), strides, dilation)):
        span = (k - 1) * d + 1
        op = None if output_padding is None else output_padding[axis]
        if mode == "valid":
            length = size * s + max(span - s, 0) if op is None else (size - 1) * s + span + op
            pad = (0, 0)
        elif mode == "same":
            length = size * s if op is None else (size - 1) * s + span - 2 * (span // 2) + op
            total = max((size - 1) * s + span - length, 0)
            pad = (total // 2, total - total // 2)
        else:
            pad = explicit[axis]
            length = (size - 1) * s + span - pad[0] - pad[1] + (op or 0)
        if length < 1:
            raise ValueError(f"padding {padding!r} leaves no output along the {('height', 'width')[axis]}")
        sizes.append(length)
        pads.append(pad)
    geometry = _Geometry((n, sizes[0], sizes[1], filters_g * groups), w.shape, strides, tuple(pads), dilation,
                         groups)
    if geometry.y_shape[1:3] != (h, w_in):
        raise ValueError(f"padding {padding!r} with strides {strides} does not map the output back onto x")
    return geometry


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1),
                     groups=1):
    """Transposed 2-D convolution (Keras Conv2DTranspose), the adjoint of conv2d.

    x: (N, H, W, Cin); w in the Keras layout (KH, KW, filters // groups, Cin);
    b: (filters,). Output size as Keras computes it: "valid" gives
    H * s + max(k_eff - s, 0), "same" gives H * s; with output_padding p,
    (H - 1) * s + k_eff + p ("valid") or (H - 1) * s + k_eff - 2 * (k_eff // 2) + p
    ("same"); explicit ((top, bottom), (left, right)) crops
    (H - 1) * s + k_eff - top - bottom + p. Returns (N, OH, OW, filters).
    """
    x = _array(x, "x", 4, "(N, H, W, Cin)")
    w = _array(w, "w", 4, "(KH, KW, filters // groups, Cin)")
    geometry = _transpose_geometry(x, w, strides, padding, output_padding, dilation, groups)
    b = _bias(b, geometry.x_shape[3])
    return _run_forward(_desc(geometry), x, w, b, geometry.x_shape, cnnc_conv2d_transpose_forward)


def conv2d_transpose_backward(x, w, dy, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1),
                              groups=1, need_dx=True, need_dw=True):
    """Gradients of conv2d_transpose: (dx, dw, db) given dy (N, OH, OW, filters);
    None for the parts not needed."""
    x = _array(x, "x", 4, "(N, H, W, Cin)")
    w = _array(w, "w", 4, "(KH, KW, filters // groups, Cin)")
    geometry = _transpose_geometry(x, w, strides, padding, output_padding, dilation, groups)
    dy = _check_dy(dy, geometry.x_shape)
    return _run_backward(_desc(geometry), x, w, dy, x.shape, w.shape, geometry.x_shape[3],
                         need_dx, need_dw, cnnc_conv2d_transpose_backward_data,
                         cnnc_conv2d_transpose_backward_weights)
