"""What every model-zoo constructor shares: the input, the head, weights."""
import os

from cnnc import layers


def model_input(input_shape, default_shape, input_tensor=None, name="input_layer"):
    """The input tensor: ``input_tensor`` if given, else Input(input_shape)."""
    if input_tensor is not None:
        return input_tensor
    shape = tuple(default_shape if input_shape is None else input_shape)
    if len(shape) != len(default_shape):
        raise ValueError(f"input_shape must have {len(default_shape)} dimensions "
                         f"(height, width, channels), got {shape}")
    return layers.Input(shape=shape, name=name)


def check_top(include_top, classes):
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}")


def pool_features(x, pooling, name_prefix=""):
    """include_top=False: global pooling 'avg', 'max' or None."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name_prefix}avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name_prefix}max_pool")(x)
    if pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return x


def average_pool_head(x, include_top, pooling, classes, classifier_activation,
                      pool_name="avg_pool"):
    """The end of the global-average-pooling networks: with include_top,
    GlobalAveragePooling2D then a ``classes``-way Dense "predictions";
    otherwise the features, pooled as ``pooling`` says."""
    if not include_top:
        return pool_features(x, pooling)
    x = layers.GlobalAveragePooling2D(name=pool_name)(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def load_weights(model, weights):
    """``weights``: None (random initialization) or a path to a file written
    by ``model.save_weights``/``model.save``."""
    if weights is None:
        return model
    if not isinstance(weights, (str, os.PathLike)) or not os.path.exists(weights):
        raise ValueError(f"weights must be None or the path of a saved weights file; "
                         f"{weights!r} is not a file (cnnc bundles no pretrained weights)")
    model.load_weights(weights)
    return model


def check_spatial(x, what):
    shape = x.shape
    if any(d is not None and d < 1 for d in shape[1:3]):
        raise ValueError(f"the input is too small for {what}: the feature map shrinks to "
                         f"{shape[1:3]}")
