"""A compact residual network for small images (28x28 to 32x32): few
layers at full resolution, the width where the feature maps are small."""
from cnnc import layers
from cnnc.applications._common import check_top, load_weights, model_input, pool_features
from cnnc.models import Model


def _conv_bn_relu(x, filters, strides, name, relu=True):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _check_blocks(blocks):
    try:
        blocks = tuple(blocks)
    except TypeError:
        blocks = None
    if (blocks is None or len(blocks) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in blocks)):
        raise ValueError(f"blocks must be two integers >= 0 (residual blocks per stage), got {blocks!r}")
    return blocks


def _residual(x, filters, name):
    """Two 3x3 conv-BN (ReLU between) added to the input, then ReLU."""
    y = _conv_bn_relu(x, filters, 1, f"{name}_a")
    y = _conv_bn_relu(y, filters, 1, f"{name}_b", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def CompactResNet(input_shape=None, classes=10, width=80, dropout=0.2, weights=None,
                  include_top=True, pooling=None, classifier_activation="softmax",
                  name="compact_resnet", blocks=(1, 1)):
    """stem: conv ``width // 2`` at the input resolution; stage 1: a stride-2
    conv to ``width`` and ``blocks[0]`` residual blocks (two 3x3 convs each);
    stage 2: a stride-2 conv to ``2 * width`` and ``blocks[1]`` residual
    blocks; then global average pooling, dropout and a ``classes``-way Dense.
    Every conv is 3x3 without bias, followed by batch normalization and ReLU.
    For (28, 28, 1): 14x14 and 7x7 stages; with 10 classes, 725,010
    parameters (non-trainable batch-norm statistics included) at width 80
    and blocks (1, 1), 1,302,930 at blocks (2, 2). Default input_shape
    (28, 28, 1).
    """
    check_top(include_top, classes)
    if not isinstance(width, int) or width < 2:
        raise ValueError(f"width must be an integer >= 2, got {width!r}")
    blocks = _check_blocks(blocks)
    inputs = model_input(input_shape, (28, 28, 1))
    x = _conv_bn_relu(inputs, width // 2, 1, "stem")
    for stage, count in enumerate(blocks, start=1):
        x = _conv_bn_relu(x, width * stage, 2, f"down{stage}")
        for block in range(count):
            # the first block keeps the names of the single-block network,
            # so its saved weights still load
            x = _residual(x, width * stage, f"res{stage}" + (f"_{block + 1}" if block else ""))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = pool_features(x, pooling)
    return load_weights(Model(inputs, x, name=name), weights)
