"""Inception-v3 (Szegedy et al., 2015), as ``keras.applications.InceptionV3``:
the same layers, names, weight shapes and parameter count (23,851,784 at
1000 classes, 34,432 of them BatchNormalization moving statistics)."""
from cnnc import layers
from cnnc.applications._common import (average_pool_head, check_spatial, check_top, load_weights,
                                       model_input)
from cnnc.models import Model

# Keras numbers its convolution/batch-norm pairs conv2d_1, conv2d_2, ... in
# creation order; a per-model counter gives every model the same names.


class _Namer:
    def __init__(self):
        self.count = 0

    def next(self):
        self.count += 1
        suffix = "" if self.count == 1 else f"_{self.count - 1}"
        return f"conv2d{suffix}", f"batch_normalization{suffix}", f"activation{suffix}"


def _conv_bn(x, namer, filters, rows, cols, strides=1, padding="same"):
    """Conv2D without bias, BatchNormalization without scale, ReLU."""
    conv, bn, act = namer.next()
    x = layers.Conv2D(filters, (rows, cols), strides=strides, padding=padding, use_bias=False,
                      name=conv)(x)
    x = layers.BatchNormalization(scale=False, name=bn)(x)
    return layers.Activation("relu", name=act)(x)


def _avg_pool_branch(x, namer, filters, name):
    pool = layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)
    return _conv_bn(pool, namer, filters, 1, 1)


def _block_35(x, namer, pool_filters, index, pool_name):
    """mixed0-2: 35x35 grid, four branches."""
    b1 = _conv_bn(x, namer, 64, 1, 1)
    b5 = _conv_bn(x, namer, 48, 1, 1)
    b5 = _conv_bn(b5, namer, 64, 5, 5)
    b3 = _conv_bn(x, namer, 64, 1, 1)
    b3 = _conv_bn(b3, namer, 96, 3, 3)
    b3 = _conv_bn(b3, namer, 96, 3, 3)
    bp = _avg_pool_branch(x, namer, pool_filters, pool_name)
    return layers.Concatenate(name=f"mixed{index}")([b1, b5, b3, bp])


def _block_17(x, namer, mid, index, pool_name):
    """mixed4-7: 17x17 grid with factorized 7x7 convolutions."""
    b1 = _conv_bn(x, namer, 192, 1, 1)
    b7 = _conv_bn(x, namer, mid, 1, 1)
    b7 = _conv_bn(b7, namer, mid, 1, 7)
    b7 = _conv_bn(b7, namer, 192, 7, 1)
    bd = _conv_bn(x, namer, mid, 1, 1)
    bd = _conv_bn(bd, namer, mid, 7, 1)
    bd = _conv_bn(bd, namer, mid, 1, 7)
    bd = _conv_bn(bd, namer, mid, 7, 1)
    bd = _conv_bn(bd, namer, 192, 1, 7)
    bp = _avg_pool_branch(x, namer, 192, pool_name)
    return layers.Concatenate(name=f"mixed{index}")([b1, b7, bd, bp])


def _block_8(x, namer, index, pool_name):
    """mixed9-10: 8x8 grid with split 1x3 / 3x1 branches."""
    b1 = _conv_bn(x, namer, 320, 1, 1)
    b3 = _conv_bn(x, namer, 384, 1, 1)
    b3 = layers.Concatenate(name=f"mixed9_{index - 9}")(
        [_conv_bn(b3, namer, 384, 1, 3), _conv_bn(b3, namer, 384, 3, 1)])
    bd = _conv_bn(x, namer, 448, 1, 1)
    bd = _conv_bn(bd, namer, 384, 3, 3)
    bd = layers.Concatenate(name=f"concatenate_{index - 9}" if index > 9 else "concatenate")(
        [_conv_bn(bd, namer, 384, 1, 3), _conv_bn(bd, namer, 384, 3, 1)])
    bp = _avg_pool_branch(x, namer, 192, pool_name)
    return layers.Concatenate(name=f"mixed{index}")([b1, b3, bd, bp])


def InceptionV3(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="inception_v3"):
    """Inception-v3 for ``(N, 299, 299, 3)`` inputs by default (any input of
    at least 75x75 works; a channel count other than 3 too).

    include_top: end in global average pooling and a ``classes``-way Dense
    ("predictions") with ``classifier_activation``; otherwise return the
    ``(N, h, w, 2048)`` features of "mixed10", globally pooled if
    ``pooling`` is "avg" or "max". ``weights``: None or the path of weights
    saved by cnnc. Every convolution is bias-free and followed by a
    BatchNormalization without scale (epsilon 1e-3) and a ReLU.
    """
    check_top(include_top, classes)
    inputs = model_input(input_shape, (299, 299, 3), input_tensor)
    if any(d is not None and d < 75 for d in inputs.shape[1:3]):
        raise ValueError(f"InceptionV3 needs inputs of at least 75x75, got {inputs.shape[1:3]}")
    namer = _Namer()
    x = _conv_bn(inputs, namer, 32, 3, 3, strides=2, padding="valid")
    x = _conv_bn(x, namer, 32, 3, 3, padding="valid")
    x = _conv_bn(x, namer, 64, 3, 3)
    x = layers.MaxPooling2D(3, strides=2, name="max_pooling2d")(x)
    x = _conv_bn(x, namer, 80, 1, 1, padding="valid")
    x = _conv_bn(x, namer, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2, name="max_pooling2d_1")(x)

    pools = iter(["average_pooling2d"] + [f"average_pooling2d_{i}" for i in range(1, 9)])
    for index, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(x, namer, pool_filters, index, next(pools))

    # mixed3: 35x35 -> 17x17
    b3 = _conv_bn(x, namer, 384, 3, 3, strides=2, padding="valid")
    bd = _conv_bn(x, namer, 64, 1, 1)
    bd = _conv_bn(bd, namer, 96, 3, 3)
    bd = _conv_bn(bd, namer, 96, 3, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name="max_pooling2d_2")(x)
    x = layers.Concatenate(name="mixed3")([b3, bd, bp])

    for index, mid in zip((4, 5, 6, 7), (128, 160, 160, 192)):
        x = _block_17(x, namer, mid, index, next(pools))

    # mixed8: 17x17 -> 8x8
    b3 = _conv_bn(x, namer, 192, 1, 1)
    b3 = _conv_bn(b3, namer, 320, 3, 3, strides=2, padding="valid")
    b7 = _conv_bn(x, namer, 192, 1, 1)
    b7 = _conv_bn(b7, namer, 192, 1, 7)
    b7 = _conv_bn(b7, namer, 192, 7, 1)
    b7 = _conv_bn(b7, namer, 192, 3, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name="max_pooling2d_3")(x)
    x = layers.Concatenate(name="mixed8")([b3, b7, bp])
    check_spatial(x, "InceptionV3")

    for index in (9, 10):
        x = _block_8(x, namer, index, next(pools))

    x = average_pool_head(x, include_top, pooling, classes, classifier_activation)
    return load_weights(Model(inputs, x, name=name), weights)
