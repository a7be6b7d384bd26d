"""Saving and loading models and weights in one single-file format.

The container is safetensors (see :mod:`cnnc._safetensors` and
docs/format.md): weights as named little-endian tensors, and in the
``__metadata__`` JSON strings describing the architecture (layer configs and
graph), the training configuration and the optimizer's step count. Optimizer
state arrays are tensors named ``optimizer/<weight key>/<slot>``. Nothing is
pickled: loading a file never runs code from it.
"""
import json
import os

from cnnc import _safetensors

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_layer",
           "deserialize_layer", "weight_keys", "FORMAT_VERSION"]

FORMAT_NAME = "cnnc"
FORMAT_VERSION = "1"
_OPTIMIZER_PREFIX = "optimizer/"


# -- architecture ---------------------------------------------------------------
def _model_classes():
    from cnnc.models.functional import Model
    from cnnc.models.sequential import Sequential
    return {"Functional": Model, "Model": Model, "Sequential": Sequential}


def serialize_layer(layer):
    """``{"class_name", "config"}`` of a layer or a nested model."""
    from cnnc import layers
    from cnnc.models.functional import Model
    if isinstance(layer, Model):
        name = "Functional" if type(layer) is Model else type(layer).__name__
        return {"class_name": name, "config": layer.get_config()}
    return layers.serialize(layer)


def deserialize_layer(entry, custom_objects=None):
    """A new layer (or model) from :func:`serialize_layer`'s output."""
    from cnnc import layers
    from cnnc.models.functional import Model
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"a layer entry must be a dict with 'class_name', got {entry!r}")
    name = entry["class_name"]
    cls = (custom_objects or {}).get(name) or _model_classes().get(name)
    if cls is not None and isinstance(cls, type) and issubclass(cls, Model):
        return cls.from_config(entry["config"], custom_objects=custom_objects)
    return layers.deserialize({"class_name": name, "config": entry.get("config")},
                              custom_objects=custom_objects)


def model_from_config(config, custom_objects=None):
    """A model from ``{"class_name", "config"}`` (the ``model_config``
    metadata entry)."""
    return deserialize_layer(config, custom_objects)


# -- weights ------------------------------------------------------------------------
def weight_keys(model):
    """``[(key, Weight)]``: every weight of the model under a stable name
    ``<layer>/<weight>`` (nested models add their name as a prefix). In a
    subclassed model or a custom layer with sub-layers the names are
    attribute paths (``encoder/kernel``, ``blocks/0/kernel``), the same for
    every instance of the class; a weight reached twice is stored once."""
    from cnnc.models.functional import Model
    table = []
    seen = set()

    def add(weights, prefix):
        used = set()
        for i, weight in enumerate(weights):
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            short = weight.name.rsplit("/", 1)[-1] if weight.name else str(i)
            key = f"{prefix}{short}"
            if key in used:
                key = f"{key}_{i}"
            used.add(key)
            table.append((key, weight))

    def walk_traced(layer, prefix):
        add(layer._weights, prefix)
        for path, sub in layer._tracked_items():
            walk_layer(sub, f"{prefix}{path}/", by_position=True)

    def walk_layer(layer, prefix, by_position):
        if layer._traced:
            walk_traced(layer, prefix)
        elif isinstance(layer, Model):
            walk(layer, prefix if by_position else f"{prefix}{layer.name}/", by_position)
        else:
            add(layer.weights, prefix)

    def walk(m, prefix, by_position=False):
        for i, layer in enumerate(m.layers):
            name = str(i) if by_position else layer.name
            if isinstance(layer, Model) and not layer._traced:
                walk(layer, f"{prefix}{name}/", by_position)
            else:
                walk_layer(layer, f"{prefix}{name}/", by_position)

    if model._traced:
        walk_traced(model, "")
    else:
        walk(model, "")
    return table


def _check_writable(filepath, overwrite):
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")


def _serialize_compile_value(value):
    from cnnc import losses, metrics
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: _serialize_compile_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize_compile_value(v) for v in value]
    if isinstance(value, losses.Loss):
        return {"loss": losses.serialize(value)}
    if isinstance(value, metrics.Metric):
        return {"metric": {"class_name": type(value).__name__, "config": value.get_config()}}
    for table in (losses._FUNCTIONS, metrics._FUNCTIONS):
        if value in table:
            return value.__name__
    raise TypeError(f"cannot save the compile argument {value!r}")


def _deserialize_compile_value(value, custom_objects):
    from cnnc import losses, metrics
    if isinstance(value, dict):
        if set(value) == {"loss"}:
            return losses.deserialize(value["loss"], custom_objects)
        if set(value) == {"metric"}:
            spec = value["metric"]
            cls = (custom_objects or {}).get(spec["class_name"])
            if cls is not None:
                return cls.from_config(spec["config"])
            return metrics.get(spec)
        return {k: _deserialize_compile_value(v, custom_objects) for k, v in value.items()}
    if isinstance(value, list):
        return [_deserialize_compile_value(v, custom_objects) for v in value]
    return value


def compile_config(model):
    """The JSON-able arguments of ``model.compile``."""
    from cnnc import optimizers
    args = dict(model._compile_args, loss=_custom_loss_functions(model._compile_args["loss"]))
    return {"optimizer": optimizers.serialize(model.optimizer),
            **{k: _serialize_compile_value(v) for k, v in args.items()}}


def _custom_loss_functions(spec):
    """Loss functions written by the user, wrapped so they save by name."""
    from cnnc import losses
    if isinstance(spec, dict):
        return {k: _custom_loss_functions(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_custom_loss_functions(v) for v in spec]
    if callable(spec) and not isinstance(spec, (type, losses.Loss)) \
            and spec not in losses._FUNCTIONS:
        return losses.LossFunctionWrapper(spec)
    return spec


def _metadata(kind):
    import cnnc
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind,
            "cnnc_version": cnnc.__version__}


def save_weights(model, filepath, overwrite=True):
    """Write the model's weights (see docs/format.md)."""
    filepath = os.fspath(filepath)
    _check_writable(filepath, overwrite)
    model._require_graph()
    tensors = {key: w.value for key, w in weight_keys(model)}
    _safetensors.write(filepath, tensors, _metadata("weights"))


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Write architecture, weights, compile config and optimizer state."""
    filepath = os.fspath(filepath)
    _check_writable(filepath, overwrite)
    model._require_graph()
    table = weight_keys(model)
    tensors = {key: w.value for key, w in table}
    metadata = _metadata("model")
    metadata["model_config"] = json.dumps(serialize_layer(model))
    if model.compiled:
        try:
            metadata["training_config"] = json.dumps(compile_config(model))
        except TypeError as exc:
            import warnings
            warnings.warn(f"the compile configuration is not saved ({exc}); the loaded model "
                          f"will need compile()")
        optimizer = model.optimizer
        if include_optimizer and optimizer is not None:
            metadata["optimizer_state"] = json.dumps({"iterations": int(optimizer.iterations)})
            for key, weight in table:
                if optimizer.has_slots(weight):
                    for slot, array in optimizer.slots(weight).items():
                        tensors[f"{_OPTIMIZER_PREFIX}{key}/{slot}"] = array
    _safetensors.write(filepath, tensors, metadata)


def _read(filepath):
    filepath = os.fspath(filepath)
    tensors, metadata = _safetensors.read(filepath)
    if metadata.get("format") != FORMAT_NAME:
        # A plain safetensors file: weights only, matched by name.
        return tensors, metadata
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{filepath}: cnnc format version {metadata.get('format_version')!r} "
                         f"is not supported (this cnnc reads version {FORMAT_VERSION})")
    return tensors, metadata


def _json_entry(metadata, key, filepath):
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{filepath}: the {key!r} metadata is not valid JSON ({exc})") from None


def _assign_weights(model, tensors, filepath, skip_mismatch=False):
    table = weight_keys(model)
    weight_tensors = {k: v for k, v in tensors.items() if not k.startswith(_OPTIMIZER_PREFIX)}
    problems = []
    for key, weight in table:
        array = weight_tensors.get(key)
        if array is None:
            problems.append(f"missing weight {key!r} of shape {weight.value.shape}")
        elif array.shape != weight.value.shape:
            problems.append(f"weight {key!r} has shape {array.shape} in the file but "
                            f"{weight.value.shape} in the model")
    unknown = sorted(set(weight_tensors) - {key for key, _ in table})
    if unknown:
        problems.append(f"the file has weights the model does not: {unknown[:5]}"
                        + (" ..." if len(unknown) > 5 else ""))
    if problems and not skip_mismatch:
        raise ValueError(f"{filepath}: the weights do not match the model:\n  "
                         + "\n  ".join(problems))
    for key, weight in table:
        array = weight_tensors.get(key)
        if array is not None and array.shape == weight.value.shape:
            weight.value[...] = array


def load_weights(model, filepath, skip_mismatch=False):
    """Load weights written by save_weights or save_model into ``model``
    (matched by layer and weight names; shapes must agree)."""
    filepath = os.fspath(filepath)
    model._require_graph()
    tensors, _ = _read(filepath)
    _assign_weights(model, tensors, filepath, skip_mismatch)


def _restore_optimizer(model, tensors, metadata, filepath):
    optimizer = model.optimizer
    state = _json_entry(metadata, "optimizer_state", filepath)
    table = dict(weight_keys(model))
    for name, array in tensors.items():
        if not name.startswith(_OPTIMIZER_PREFIX):
            continue
        key, _, slot = name[len(_OPTIMIZER_PREFIX):].rpartition("/")
        weight = table.get(key)
        if weight is None:
            raise ValueError(f"{filepath}: optimizer state {name!r} belongs to no weight")
        slots = optimizer.slots(weight)
        if slot not in slots:
            raise ValueError(f"{filepath}: optimizer state {name!r}: {type(optimizer).__name__} "
                             f"has no slot {slot!r} (slots: {sorted(slots)})")
        if slots[slot].shape != array.shape:
            raise ValueError(f"{filepath}: optimizer state {name!r} has shape {array.shape}, "
                             f"expected {slots[slot].shape}")
        slots[slot][...] = array
    optimizer.iterations = int(state.get("iterations", 0))


def load_model(filepath, custom_objects=None, compile=True):
    """A model saved by ``model.save``: architecture, weights and, when it
    was compiled and ``compile`` is true, its compile config and optimizer
    state (training resumes exactly where it stopped)."""
    filepath = os.fspath(filepath)
    tensors, metadata = _read(filepath)
    if "model_config" not in metadata:
        raise ValueError(f"{filepath} holds weights only (no architecture): build the model "
                         f"and call model.load_weights")
    config = _json_entry(metadata, "model_config", filepath)
    model = model_from_config(config, custom_objects)
    model._require_graph()
    _assign_weights(model, tensors, filepath)
    if compile and "training_config" in metadata:
        from cnnc import optimizers
        training = _json_entry(metadata, "training_config", filepath)
        optimizer = optimizers.deserialize(training.pop("optimizer"), custom_objects)
        args = {k: _deserialize_compile_value(v, custom_objects) for k, v in training.items()}
        model.compile(optimizer=optimizer, **args)
        if "optimizer_state" in metadata:
            _restore_optimizer(model, tensors, metadata, filepath)
    return model
