"""VGG-16 and VGG-19 (Simonyan & Zisserman, 2014), with Keras's layer names."""
from cnnc import layers
from cnnc.applications._common import (check_spatial, check_top, load_weights, model_input,
                                       pool_features)
from cnnc.models import Model

_BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)


def _vgg(depth, include_top, weights, input_tensor, input_shape, pooling, classes,
         classifier_activation, name, dense_units=4096):
    check_top(include_top, classes)
    inputs = model_input(input_shape, (224, 224, 3), input_tensor)
    x = inputs
    for block, (convs, filters) in enumerate(zip(_BLOCKS[depth], _FILTERS), start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
        check_spatial(x, name)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
        x = layers.Dense(dense_units, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = pool_features(x, pooling)
    return load_weights(Model(inputs, x, name=name), weights)


def VGG16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", dense_units=4096, name="vgg16"):
    """13 convolutions 3x3 in 5 blocks + 3 dense layers: 138,357,544
    parameters at (224, 224, 3) with 1000 classes (14,714,688 without the
    top). ``dense_units`` shrinks the two hidden dense layers for small
    inputs. Any input of at least 32x32."""
    return _vgg(16, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, dense_units)


def VGG19(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", dense_units=4096, name="vgg19"):
    """16 convolutions 3x3 + 3 dense layers: 143,667,240 parameters at
    (224, 224, 3) with 1000 classes."""
    return _vgg(19, include_top, weights, input_tensor, input_shape, pooling, classes,
                classifier_activation, name, dense_units)
