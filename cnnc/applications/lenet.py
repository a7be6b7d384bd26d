"""LeNet-5 (LeCun et al., 1998), in its common modern form."""
from cnnc import layers
from cnnc.applications._common import check_top, load_weights, model_input, pool_features
from cnnc.models import Model


def LeNet5(input_shape=None, classes=10, weights=None, include_top=True, input_tensor=None,
           pooling=None, activation="tanh", classifier_activation="softmax", name="lenet5"):
    """conv 6@5x5 ('same') - avg pool 2 - conv 16@5x5 - avg pool 2 - dense 120 -
    dense 84 - dense ``classes``, tanh activations.

    The first convolution pads ('same') so that a 28x28 MNIST digit gives the
    5x5x16 feature map of the original 32x32 network: 61,706 parameters for
    (28, 28, 1) and 10 classes. Default input_shape (28, 28, 1).
    """
    check_top(include_top, classes)
    inputs = model_input(input_shape, (28, 28, 1), input_tensor)
    x = layers.Conv2D(6, 5, padding="same", activation=activation, name="conv1")(inputs)
    x = layers.AveragePooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="conv2")(x)
    x = layers.AveragePooling2D(2, name="pool2")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=activation, name="fc1")(x)
        x = layers.Dense(84, activation=activation, name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = pool_features(x, pooling)
    return load_weights(Model(inputs, x, name=name), weights)
