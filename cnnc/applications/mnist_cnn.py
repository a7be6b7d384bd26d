"""The classic Keras MNIST convolutional network."""
from cnnc import layers
from cnnc.applications._common import check_top, load_weights, model_input, pool_features
from cnnc.models import Sequential


def MnistCNN(input_shape=None, classes=10, weights=None, include_top=True, pooling=None,
             classifier_activation="softmax", name="mnist_cnn"):
    """conv 32@3x3 relu - max pool 2 - conv 64@3x3 relu - max pool 2 - flatten -
    dense 128 relu - dense ``classes``: 225,034 parameters for (28, 28, 1)
    and 10 classes. A Sequential model. Default input_shape (28, 28, 1)."""
    check_top(include_top, classes)
    model = Sequential(name=name)
    model.add(model_input(input_shape, (28, 28, 1)))
    model.add(layers.Conv2D(32, (3, 3), activation="relu", name="conv2d"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2), name="max_pooling2d"))
    model.add(layers.Conv2D(64, (3, 3), activation="relu", name="conv2d_1"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2), name="max_pooling2d_1"))
    if include_top:
        model.add(layers.Flatten(name="flatten"))
        model.add(layers.Dense(128, activation="relu", name="dense"))
        model.add(layers.Dense(classes, activation=classifier_activation, name="dense_1"))
    elif pooling == "avg":
        model.add(layers.GlobalAveragePooling2D(name="avg_pool"))
    elif pooling == "max":
        model.add(layers.GlobalMaxPooling2D(name="max_pool"))
    elif pooling is not None:
        pool_features(None, pooling)  # raises the error for an unknown value
    return load_weights(model, weights)
