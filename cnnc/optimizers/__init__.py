"""Optimizers (``cnnc.optimizers``): SGD, Adam, AdamW, RMSprop, Adagrad,
Adadelta, Adamax, Nadam and Lion, their string names as in Keras, and
learning-rate schedules."""
from cnnc.optimizers import schedules  # noqa: F401
from cnnc.optimizers.adadelta import Adadelta
from cnnc.optimizers.adagrad import Adagrad
from cnnc.optimizers.adam import Adam
from cnnc.optimizers.adamax import Adamax
from cnnc.optimizers.adamw import AdamW
from cnnc.optimizers.lion import Lion
from cnnc.optimizers.nadam import Nadam
from cnnc.optimizers.optimizer import Optimizer
from cnnc.optimizers.rmsprop import RMSprop
from cnnc.optimizers.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
           "Nadam", "Lion", "schedules", "get", "serialize", "deserialize"]

_CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
            "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam, "lion": Lion}


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    custom_objects = custom_objects or {}
    name = config.get("class_name")
    cls = custom_objects.get(name) or _CLASSES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(_CLASSES)}")
    return cls.from_config(config.get("config", {}), custom_objects)


def get(identifier):
    """An optimizer from a name ('adam', 'SGD', ...), a config dict or an
    Optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {sorted(_CLASSES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer")
