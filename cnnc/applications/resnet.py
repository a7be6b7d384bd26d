"""Residual networks (He et al., 2015).

ResNet18/34 follow torchvision (basic blocks, convolutions without bias,
BatchNormalization epsilon 1e-5 and momentum 0.9, stride-2 convolutions
padded by one pixel on every side); ResNet50 follows Keras's
``keras.applications.ResNet50`` (bottleneck blocks with the stride on the
first 1x1 convolution, convolutions with bias, epsilon 1.001e-5), so its
parameter counts are those of each reference.
"""
from cnnc import layers
from cnnc.applications._common import average_pool_head, check_top, load_weights, model_input
from cnnc.models import Model


def _bn(x, name, epsilon, momentum):
    return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def _conv(x, filters, kernel, strides, name, use_bias):
    """A convolution padded like PyTorch's (k // 2 on every side)."""
    if kernel > 1 and strides > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
                         name=name)(x)


def _basic_block(x, filters, strides, name):
    eps, mom = 1e-5, 0.9
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                 name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn", eps, mom)
    y = _conv(x, filters, 3, strides, f"{name}_1_conv", False)
    y = _bn(y, f"{name}_1_bn", eps, mom)
    y = layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv(y, filters, 3, 1, f"{name}_2_conv", False)
    y = _bn(y, f"{name}_2_bn", eps, mom)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, filters, strides, name, conv_shortcut):
    eps, mom = 1.001e-5, 0.99
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn", eps, mom)
    else:
        shortcut = x
    y = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_1_conv")(x)
    y = _bn(y, f"{name}_1_bn", eps, mom)
    y = layers.ReLU(name=f"{name}_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(y)
    y = _bn(y, f"{name}_2_bn", eps, mom)
    y = layers.ReLU(name=f"{name}_2_relu")(y)
    y = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y)
    y = _bn(y, f"{name}_3_bn", eps, mom)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _resnet(blocks, bottleneck, include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name):
    check_top(include_top, classes)
    inputs = model_input(input_shape, (224, 224, 3), input_tensor)
    eps, mom = (1.001e-5, 0.99) if bottleneck else (1e-5, 0.9)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=bottleneck, name="conv1_conv")(x)
    x = _bn(x, "conv1_bn", eps, mom)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (count, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), start=2):
        for i in range(1, count + 1):
            strides = 2 if i == 1 and stage > 2 else 1
            block_name = f"conv{stage}_block{i}"
            if bottleneck:
                x = _bottleneck_block(x, filters, strides, block_name, conv_shortcut=(i == 1))
            else:
                x = _basic_block(x, filters, strides, block_name)
    x = average_pool_head(x, include_top, pooling, classes, classifier_activation)
    return load_weights(Model(inputs, x, name=name), weights)


def ResNet18(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet18"):
    """Basic blocks [2, 2, 2, 2]: 11,689,512 trainable parameters at 1000
    classes (torchvision's count), plus 9,600 BatchNormalization moving
    statistics that Keras counts as non-trainable parameters."""
    return _resnet((2, 2, 2, 2), False, include_top, weights, input_tensor, input_shape, pooling,
                   classes, classifier_activation, name)


def ResNet34(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet34"):
    """Basic blocks [3, 4, 6, 3]: 21,797,672 trainable parameters at 1000
    classes (torchvision's count) plus 17,024 moving statistics."""
    return _resnet((3, 4, 6, 3), False, include_top, weights, input_tensor, input_shape, pooling,
                   classes, classifier_activation, name)


def ResNet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="resnet50"):
    """Bottleneck blocks [3, 4, 6, 3] as Keras's ResNet50: 25,636,712
    parameters (25,583,592 trainable) at 1000 classes."""
    return _resnet((3, 4, 6, 3), True, include_top, weights, input_tensor, input_shape, pooling,
                   classes, classifier_activation, name)
