"""AlexNet (Krizhevsky et al., 2012), in the single-stream form of
torchvision."""
from cnnc import layers
from cnnc.applications._common import (check_spatial, check_top, load_weights, model_input,
                                       pool_features)
from cnnc.models import Model


def AlexNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", dropout=0.5, name="alexnet"):
    """conv 64@11x11/4 - max pool 3/2 - conv 192@5x5 - max pool - conv 384@3x3 -
    conv 256@3x3 - conv 256@3x3 - max pool - dropout - dense 4096 - dropout -
    dense 4096 - dense ``classes`` (ReLU): 61,100,840 parameters at
    (224, 224, 3) with 1000 classes, as torchvision's. Inputs from 63x63."""
    check_top(include_top, classes)
    inputs = model_input(input_shape, (224, 224, 3), input_tensor)
    x = layers.ZeroPadding2D(2, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    check_spatial(x, name)
    x = layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    check_spatial(x, name)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    check_spatial(x, name)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="drop6")(x)
        x = layers.Dense(4096, activation="relu", name="fc6")(x)
        x = layers.Dropout(dropout, name="drop7")(x)
        x = layers.Dense(4096, activation="relu", name="fc7")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = pool_features(x, pooling)
    return load_weights(Model(inputs, x, name=name), weights)
