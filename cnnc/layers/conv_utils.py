"""Argument checks and output-size arithmetic shared by the convolution and
pooling layers (Keras's rules)."""
import numbers


def normalize_tuple(value, n, name, allow_zero=False):
    """An int or a sequence of ``n`` ints -> tuple of ``n`` positive ints
    (non-negative if ``allow_zero``), else ValueError naming ``name``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}") from None
        if len(values) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                       for v in values):
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
        values = tuple(int(v) for v in values)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return values


def normalize_padding(value, allowed=("valid", "same")):
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"padding must be one of {allowed}, got {value!r}")
    return value.lower()


def normalize_conv_padding(value, rank, allowed=("valid", "same")):
    """A padding mode from ``allowed`` (lower-cased), or explicit padding as
    ``rank`` ``(before, after)`` pairs: an int (every side), ``rank`` ints
    (symmetric per axis), ``rank`` pairs, or in 1-D one ``(left, right)``
    pair, as ``ops.conv2d``/``ops.conv1d`` accept."""
    if isinstance(value, str):
        return normalize_padding(value, allowed)
    error = (f"padding must be one of {allowed}, an int, {rank} ints or {rank} (before, after) "
             f"pairs, got {value!r}")
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, (list, tuple))
                                                          for p in value):
        if len(value) != rank:
            raise ValueError(error)
        return tuple(normalize_tuple(p, 2, "padding", allow_zero=True) for p in value)
    if rank == 1 and isinstance(value, (list, tuple)) and len(value) == 2:
        return (normalize_tuple(value, 2, "padding", allow_zero=True),)
    try:
        return tuple((p, p) for p in normalize_tuple(value, rank, "padding", allow_zero=True))
    except ValueError:
        raise ValueError(error) from None


def padding_config(padding):
    """A normalized padding as stored in a layer config (JSON: lists)."""
    return padding if isinstance(padding, str) else [list(p) for p in padding]


def check_data_format(value):
    if value not in (None, "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' (cnnc is channels-last), "
                         f"got {value!r}")
    return "channels_last"


def conv_output_length(length, kernel, padding, stride, dilation=1):
    """Output length of a convolution or pooling window along one axis
    (None stays None)."""
    if length is None:
        return None
    effective = (kernel - 1) * dilation + 1
    if not isinstance(padding, str):  # explicit (before, after)
        return (length + padding[0] + padding[1] - effective) // stride + 1
    if padding in ("same", "causal"):
        out = (length + stride - 1) // stride
    else:
        out = (length - effective) // stride + 1
    return out


def deconv_output_length(length, kernel, padding, output_padding, stride, dilation=1):
    """Output length of a transposed convolution along one axis, as Keras."""
    if length is None:
        return None
    kernel = kernel + (kernel - 1) * (dilation - 1)
    if not isinstance(padding, str):  # explicit (before, after) crops the full output
        return (length - 1) * stride + kernel - padding[0] - padding[1] + (output_padding or 0)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(kernel - stride, 0)
        return length * stride
    pad = kernel // 2 if padding == "same" else 0
    return (length - 1) * stride + kernel - 2 * pad + output_padding


def check_input_rank(layer, input_shape, rank):
    """At build time: a clear ValueError unless the input shape has ``rank`` axes."""
    if len(tuple(input_shape)) != rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects inputs of rank {rank}, "
                         f"got shape {tuple(input_shape)}")


# Bounds on what a layer that enlarges its input (upsampling, padding) may be
# asked to make: an axis of more than 2**31 - 1 steps, or more than 2**36
# floats (256 GiB) per sample, is a mistaken argument, refused before NumPy
# spends minutes (or all memory) building it.
MAX_AXIS_LENGTH = 2**31 - 1
MAX_SAMPLE_ELEMENTS = 2**36


def check_output_size(layer, output_shape):
    """A clear ValueError if ``output_shape`` (batch axis first; None for
    unknown sizes) is beyond the bounds above, whatever the batch size."""
    per_sample = 1
    for length in tuple(output_shape)[1:]:
        if length is None:
            continue
        if length > MAX_AXIS_LENGTH:
            raise ValueError(f"{type(layer).__name__} {layer.name!r} would make an axis of {length} "
                             f"steps (output shape {tuple(output_shape)}); the limit is "
                             f"{MAX_AXIS_LENGTH}: check its size/padding arguments")
        per_sample *= length
    if per_sample > MAX_SAMPLE_ELEMENTS:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} would make {per_sample} values per "
                         f"sample (output shape {tuple(output_shape)}); the limit is "
                         f"{MAX_SAMPLE_ELEMENTS}: check its size/padding arguments")
    return tuple(output_shape)


def check_rank(layer, x, rank, what):
    """Raise a clear ValueError unless ``x`` has ``rank`` axes."""
    if x.ndim != rank:
        raise ValueError(f"layer {layer.name!r} expects {what} input of rank {rank}, "
                         f"got shape {x.shape}")


def check_channels(layer, x, channels):
    if x.shape[-1] != channels:
        raise ValueError(f"layer {layer.name!r} was built for {channels} input channels, "
                         f"got input of shape {x.shape}")
