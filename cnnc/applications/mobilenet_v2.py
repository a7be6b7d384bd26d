"""MobileNetV2 (Sandler et al., 2018), as ``keras.applications.MobileNetV2``:
the same layers, names, weight shapes and parameter count (3,538,984 at
alpha 1.0 and 1000 classes, 34,112 of them BatchNormalization moving
statistics)."""
from cnnc import layers
from cnnc.applications._common import average_pool_head, check_top, load_weights, model_input
from cnnc.models import Model

# (expansion, output filters, stride) of blocks 0..16
_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2),
           (6, 64, 1), (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2),
           (6, 160, 1), (6, 160, 1), (6, 320, 1))


def make_divisible(value, divisor=8):
    """``value`` rounded to the nearest multiple of ``divisor`` (at least
    ``divisor``), never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _bn(x, name):
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)(x)


def _stride2_padding(x):
    """TensorFlow's "same" padding of a 3x3 stride-2 window, made explicit:
    one pixel after, and one before unless the size is odd."""
    def before(size):
        return 0 if size is None else size % 2
    return ((before(x.shape[1]), 1), (before(x.shape[2]), 1))


def _inverted_res_block(x, expansion, filters, stride, alpha, block_id):
    in_channels = x.shape[-1]
    out_channels = make_divisible(int(filters * alpha))
    inputs = x
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False,
                          name=prefix + "expand")(x)
        x = _bn(x, prefix + "expand_BN")
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(_stride2_padding(x), name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False,
                               padding="same" if stride == 1 else "valid",
                               name=prefix + "depthwise")(x)
    x = _bn(x, prefix + "depthwise_BN")
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(out_channels, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = _bn(x, prefix + "project_BN")
    if in_channels == out_channels and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights=None, input_tensor=None,
                pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """MobileNetV2 for ``(N, 224, 224, 3)`` inputs by default (any input of
    at least 32x32 works).

    alpha: width multiplier; every block's channels are ``filters * alpha``
    rounded by :func:`make_divisible` (the last 1x1 convolution keeps 1280
    channels unless alpha > 1). Blocks are inverted residuals: a 1x1
    expansion (x6), a 3x3 depthwise convolution, a linear 1x1 projection and
    a residual Add when shapes allow, each convolution bias-free and
    followed by BatchNormalization (epsilon 1e-3, momentum 0.999) and ReLU6
    (none after the projection). include_top, pooling, classes,
    classifier_activation and weights (None or a path of weights saved by
    cnnc) as the other zoo models.
    """
    check_top(include_top, classes)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    inputs = model_input(input_shape, (224, 224, 3), input_tensor)
    if any(d is not None and d < 32 for d in inputs.shape[1:3]):
        raise ValueError(f"MobileNetV2 needs inputs of at least 32x32, got {inputs.shape[1:3]}")
    x = layers.Conv2D(make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                      name="Conv1")(inputs)
    x = _bn(x, "bn_Conv1")
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (expansion, filters, stride) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, expansion, filters, stride, alpha, block_id)
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = _bn(x, "Conv_1_bn")
    x = layers.ReLU(6.0, name="out_relu")(x)
    x = average_pool_head(x, include_top, pooling, classes, classifier_activation,
                          pool_name="global_average_pooling2d")
    if name is None:
        name = f"mobilenetv2_{alpha:.2f}_{inputs.shape[1]}"
    return load_weights(Model(inputs, x, name=name), weights)
