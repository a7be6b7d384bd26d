"""Traced neural-network operations: the activations, softmax, the
convolutions (cnnc's ``conv2d``/``conv1d``/``conv2d_transpose`` and Keras's
``conv``/``conv_transpose``/``depthwise_conv``/``separable_conv``), pooling
and the cross-entropies of ``keras.ops``. Forward and backward run the C
kernels; on plain arrays the functions return arrays as before."""
import numpy as np

from cnnc import _activation, _conv, _loss, _pool
from cnnc.autodiff.dispatch import any_traced, float_array, node_input, raw, unary
from cnnc.autodiff.tensor import apply

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "tanh", "silu",
           "swish", "softplus", "softsign", "hard_sigmoid", "hard_swish", "hard_silu",
           "log_sigmoid", "softmax", "log_softmax", "conv2d", "conv1d", "conv2d_transpose",
           "conv", "conv_transpose", "depthwise_conv", "separable_conv", "max_pool2d",
           "avg_pool2d", "max_pool1d", "avg_pool1d", "max_pool", "average_pool",
           "global_avg_pool2d", "global_max_pool2d", "global_avg_pool1d", "global_max_pool1d",
           "categorical_crossentropy", "sparse_categorical_crossentropy",
           "binary_crossentropy"]


def _activation_op(forward, backward, name):
    def activation(x, out=None, **params):
        if not any_traced(x):
            return forward(x, out=out, **params)
        if out is not None:
            raise ValueError(f"{name}: out= is not accepted on traced tensors")
        return unary(x, lambda v: forward(float_array(v), **params),
                     lambda v, y, g: backward(float_array(v), float_array(g), **params))
    activation.__name__ = name
    activation.__doc__ = (f"``{name}`` elementwise (C kernel); on traced tensors the "
                          f"gradient is ``{backward.__name__}``.")
    return activation


relu = _activation_op(_activation.relu, _activation.relu_backward, "relu")
relu6 = _activation_op(_activation.relu6, _activation.relu6_backward, "relu6")
elu = _activation_op(_activation.elu, _activation.elu_backward, "elu")
selu = _activation_op(_activation.selu, _activation.selu_backward, "selu")
sigmoid = _activation_op(_activation.sigmoid, _activation.sigmoid_backward, "sigmoid")
tanh = _activation_op(_activation.tanh, _activation.tanh_backward, "tanh")
silu = _activation_op(_activation.silu, _activation.silu_backward, "silu")
swish = silu
softplus = _activation_op(_activation.softplus, _activation.softplus_backward, "softplus")
hard_sigmoid = _activation_op(_activation.hard_sigmoid, _activation.hard_sigmoid_backward,
                              "hard_sigmoid")
hard_swish = _activation_op(_activation.hard_swish, _activation.hard_swish_backward,
                            "hard_swish")
hard_silu = hard_swish
_leaky_relu = _activation_op(_activation.leaky_relu, _activation.leaky_relu_backward,
                             "leaky_relu")
_gelu = _activation_op(_activation.gelu, _activation.gelu_backward, "gelu")


def leaky_relu(x, alpha=None, out=None, negative_slope=None):
    """``x`` where positive, else ``alpha * x``; ``negative_slope`` is
    Keras's name of ``alpha`` (default 0.3 as the cnnc kernel; Keras's op
    defaults to 0.2)."""
    if alpha is not None and negative_slope is not None:
        raise ValueError("give alpha or negative_slope, not both")
    slope = negative_slope if negative_slope is not None else (0.3 if alpha is None else alpha)
    return _leaky_relu(x, out=out, alpha=slope)


def gelu(x, approximate=False, out=None):
    """GELU, the erf form by default (``approximate=True``: the tanh form)."""
    return _gelu(x, out=out, approximate=approximate)


def softsign(x):
    return unary(x, lambda v: v / (1 + np.abs(v)),
                 lambda v, y, g: g / np.square(1 + np.abs(v)))


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return unary(x, lambda v: -_activation.softplus(float_array(-v)),
                 lambda v, y, g: g * _activation.sigmoid(float_array(-v)))


def _softmax_op(forward, backward, name):
    def op(x, axis=-1, out=None):
        if not any_traced(x):
            return forward(x, axis=axis, out=out)
        return unary(x, lambda v: forward(float_array(v), axis=axis),
                     lambda v, y, g: backward(y, float_array(g), axis=axis))
    op.__name__ = name
    op.__doc__ = f"``{name}`` over ``axis`` (C kernel; its backward takes the output)."
    return op


softmax = _softmax_op(_activation.softmax, _activation.softmax_backward, "softmax")
log_softmax = _softmax_op(_activation.log_softmax, _activation.log_softmax_backward,
                          "log_softmax")


# -- convolutions ---------------------------------------------------------------------
def _kernel_op(operands, forward, backward):
    """``forward(values) -> y`` and ``backward(values, dy, needs) -> grads``
    (one per operand, None where not needed) for C kernels with a fused
    backward."""
    tensors = [node_input(x) if x is not None else None for x in operands]
    values = [t.value if t is not None else (None if x is None else float_array(raw(x)))
              for t, x in zip(tensors, operands)]
    y = forward(values)
    if all(t is None for t in tensors):
        return y

    def grad(g):
        needs = [t is not None and t.requires_grad for t in tensors]
        return backward(values, float_array(g[0]), needs)
    return apply(y, tensors, grad)


def _conv_backward(kernel_backward, **geometry):
    def backward(values, dy, needs):
        x, w, b = values
        dx, dw, db = kernel_backward(x, w, dy, need_dx=needs[0], need_dw=needs[1] or needs[2],
                                     **geometry)
        return dx, (dw if needs[1] else None), (db if needs[2] else None)
    return backward


def conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1):
    """2-D convolution, NHWC (see docs/ops-api.md for the arguments)."""
    if not any_traced(x, w, b):
        return _conv.conv2d(x, w, b, strides, padding, dilation, groups)
    geometry = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
    return _kernel_op((x, w, b), lambda v: _conv.conv2d(v[0], v[1], v[2], **geometry),
                      _conv_backward(_conv.conv2d_backward, **geometry))


def conv1d(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1):
    """1-D convolution, NLC."""
    if not any_traced(x, w, b):
        return _conv.conv1d(x, w, b, stride, padding, dilation, groups)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _kernel_op((x, w, b), lambda v: _conv.conv1d(v[0], v[1], v[2], **geometry),
                      _conv_backward(_conv.conv1d_backward, **geometry))


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid", output_padding=None,
                     dilation=(1, 1), groups=1):
    """Transposed 2-D convolution, w in Keras's ``(KH, KW, Cout, Cin)``."""
    if not any_traced(x, w, b):
        return _conv.conv2d_transpose(x, w, b, strides, padding, output_padding, dilation,
                                      groups)
    geometry = dict(strides=strides, padding=padding, output_padding=output_padding,
                    dilation=dilation, groups=groups)
    return _kernel_op((x, w, b), lambda v: _conv.conv2d_transpose(v[0], v[1], v[2], **geometry),
                      _conv_backward(_conv.conv2d_transpose_backward, **geometry))


def _check_format(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"cnnc computes channels_last only, got data_format={data_format!r}")


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Keras's ``ops.conv``: 1-D (kernel ``(K, Cin/g, Cout)``) or 2-D
    (``(KH, KW, Cin/g, Cout)``) by the kernel's rank; grouped when the
    input has a multiple of the kernel's input channels."""
    _check_format(data_format)
    k_shape = np.shape(raw(kernel))
    groups = np.shape(raw(inputs))[-1] // k_shape[-2]
    if len(k_shape) == 3:
        return conv1d(inputs, kernel, None, strides, padding, dilation_rate, groups)
    if len(k_shape) == 4:
        return conv2d(inputs, kernel, None, strides, padding, dilation_rate, groups)
    raise ValueError(f"conv: kernels of rank 3 (1-D) or 4 (2-D) are supported, got {k_shape}")


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """Keras's ``ops.depthwise_conv``: kernel ``(KH, KW, Cin, M)`` (or
    ``(K, Cin, M)`` in 1-D), output channels ``Cin * M``."""
    _check_format(data_format)
    k_shape = np.shape(raw(kernel))
    from cnnc.autodiff.shape_ops import reshape
    flat = reshape(kernel, k_shape[:-2] + (1, k_shape[-2] * k_shape[-1]))
    return conv(inputs, flat, strides, padding, None, dilation_rate)


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1):
    """Depthwise convolution followed by a 1x1 (pointwise) convolution."""
    return conv(depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format,
                               dilation_rate), pointwise_kernel, 1, "valid", data_format)


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1):
    """Keras's ``ops.conv_transpose``: kernel ``(KH, KW, Cout, Cin)`` (or
    ``(K, Cout, Cin)`` in 1-D, run as a 2-D transpose of height 1)."""
    _check_format(data_format)
    k_shape = np.shape(raw(kernel))
    if len(k_shape) == 4:
        return conv2d_transpose(inputs, kernel, None, strides, padding, output_padding,
                                dilation_rate)
    if len(k_shape) != 3:
        raise ValueError(f"conv_transpose: kernels of rank 3 or 4 are supported, got {k_shape}")
    from cnnc.autodiff.shape_ops import expand_dims, squeeze

    def pair(v, first):
        if v is None:
            return None
        v = v[0] if isinstance(v, (list, tuple)) else v
        return (first, v)
    y = conv2d_transpose(expand_dims(inputs, 1), expand_dims(kernel, 0), None,
                         pair(strides, 1), padding, pair(output_padding, 0),
                         pair(dilation_rate, 1))
    return squeeze(y, 1)


# -- pooling ----------------------------------------------------------------------------
def _pool_op(forward, backward, by_input, name, default_size):
    def op(x, pool_size=default_size, strides=None, padding="valid"):
        size = pool_size
        if not any_traced(x):
            return forward(x, size, strides, padding)

        def grad(values, dy, needs):
            if by_input:
                return (backward(values[0], dy, size, strides, padding),)
            return (backward(dy, values[0].shape, size, strides, padding),)
        return _kernel_op((x,), lambda v: forward(v[0], size, strides, padding), grad)
    op.__name__ = name
    op.__doc__ = f"``{name}`` (C kernel, see docs/ops-api.md), differentiable."
    return op


max_pool2d = _pool_op(_pool.max_pool2d, _pool.max_pool2d_backward, True, "max_pool2d", (2, 2))
avg_pool2d = _pool_op(_pool.avg_pool2d, _pool.avg_pool2d_backward, False, "avg_pool2d", (2, 2))
max_pool1d = _pool_op(_pool.max_pool1d, _pool.max_pool1d_backward, True, "max_pool1d", 2)
avg_pool1d = _pool_op(_pool.avg_pool1d, _pool.avg_pool1d_backward, False, "avg_pool1d", 2)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Keras's ``ops.max_pool`` on ``(N, L, C)`` or ``(N, H, W, C)``."""
    _check_format(data_format)
    rank = np.ndim(raw(inputs)) - 2
    return (max_pool1d if rank == 1 else max_pool2d)(inputs, pool_size, strides, padding)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Keras's ``ops.average_pool`` on ``(N, L, C)`` or ``(N, H, W, C)``."""
    _check_format(data_format)
    rank = np.ndim(raw(inputs)) - 2
    return (avg_pool1d if rank == 1 else avg_pool2d)(inputs, pool_size, strides, padding)


def _global_op(forward, backward, by_input, name):
    def op(x):
        if not any_traced(x):
            return forward(x)

        def grad(values, dy, needs):
            return (backward(values[0], dy) if by_input else backward(dy, values[0].shape),)
        return _kernel_op((x,), lambda v: forward(v[0]), grad)
    op.__name__ = name
    op.__doc__ = f"``{name}`` (C kernel), differentiable."
    return op


global_avg_pool2d = _global_op(_pool.global_avg_pool2d, _pool.global_avg_pool2d_backward,
                               False, "global_avg_pool2d")
global_max_pool2d = _global_op(_pool.global_max_pool2d, _pool.global_max_pool2d_backward,
                               True, "global_max_pool2d")
global_avg_pool1d = _global_op(_pool.global_avg_pool1d, _pool.global_avg_pool1d_backward,
                               False, "global_avg_pool1d")
global_max_pool1d = _global_op(_pool.global_max_pool1d, _pool.global_max_pool1d_backward,
                               True, "global_max_pool1d")


# -- cross-entropies ----------------------------------------------------------------
def _rows(x, axis):
    """``x`` with ``axis`` moved last and flattened to (rows, classes)."""
    x = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]), np.float32), x.shape[:-1]


def _crossentropy(output, target_rows, kernel, axis, **options):
    """Per-position loss of a C loss kernel (which averages each row),
    differentiable with respect to ``output``."""
    t = node_input(output)
    value = t.value if t is not None else float_array(raw(output))
    rows, lead = _rows(value, axis)
    loss, _ = kernel(rows, target_rows, need_grad=False, **options)
    y = loss.reshape(lead)
    if t is None:
        return y

    def grad(g):
        _, d = kernel(rows, target_rows, sample_weight=float_array(g[0]).reshape(-1), **options)
        d = d.reshape(lead + (value.shape[axis],))
        return (np.moveaxis(d, -1, axis),)
    return apply(y, (t,), grad)


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Keras's ``ops.categorical_crossentropy``: the loss at each position
    (``output``'s shape without ``axis``); probabilities are normalized and
    clipped to ``[1e-7, 1 - 1e-7]`` as Keras."""
    target_rows, _ = _rows(float_array(raw(target)), axis)
    if from_logits:
        return _crossentropy(output, target_rows, _loss.softmax_cross_entropy, axis)
    return _crossentropy(output, target_rows, _loss.categorical_cross_entropy, axis)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """As ``categorical_crossentropy`` with integer class targets."""
    labels = np.asarray(raw(target))
    if labels.ndim == np.ndim(raw(output)) and labels.shape[-1] == 1:
        labels = labels[..., 0]
    labels = labels.reshape(-1).astype(np.int64)
    kernel = _loss.softmax_cross_entropy if from_logits else _loss.categorical_cross_entropy
    return _crossentropy(output, labels, kernel, axis)


def binary_crossentropy(target, output, from_logits=False):
    """Keras's ``ops.binary_crossentropy``: elementwise, same shape as
    ``output`` (probabilities clipped to ``[1e-7, 1 - 1e-7]``)."""
    kernel = _loss.sigmoid_cross_entropy if from_logits else _loss.binary_cross_entropy
    targets = float_array(raw(target)).reshape(-1, 1)
    t = node_input(output)
    value = t.value if t is not None else float_array(raw(output))
    column = np.ascontiguousarray(value.reshape(-1, 1), np.float32)
    loss, _ = kernel(column, targets, need_grad=False)
    y = loss.reshape(value.shape)
    if t is None:
        return y

    def grad(g):
        _, d = kernel(column, targets, sample_weight=float_array(g[0]).reshape(-1))
        return (d.reshape(value.shape),)
    return apply(y, (t,), grad)
