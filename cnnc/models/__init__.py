"""Models (``cnnc.models``): Sequential, the functional Model, load_model."""
from cnnc.models.functional import Model
from cnnc.models.sequential import Sequential
from cnnc.saving import CorruptFileError, load_model, model_from_config

__all__ = ["Model", "Sequential", "load_model", "model_from_config", "clone_model",
           "CorruptFileError"]


def clone_model(model, custom_objects=None):
    """A new model with the same architecture and freshly initialized weights."""
    from cnnc.saving import serialize_layer
    return model_from_config(serialize_layer(model), custom_objects)
