"""Saving and loading models and weights in one single-file format.

The container is safetensors (see :mod:`cnnc._safetensors` and
docs/format.md): weights as named little-endian tensors, and in the
``__metadata__`` JSON strings describing the architecture (layer configs and
graph), the training configuration, the optimizer's step count and the
position of every random stream training uses, plus a CRC-32 of every
tensor. Optimizer state arrays are tensors named
``optimizer/<weight key>/<slot>``. Nothing is pickled: loading a file never
runs code from it.

Every defect of a file being loaded (truncated, altered, inconsistent or
hostile) raises :class:`CorruptFileError`, a ValueError.
"""
import json
import os

import numpy as np

from cnnc import _safetensors, _weight_limit
from cnnc._safetensors import CorruptFileError

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_layer",
           "deserialize_layer", "weight_keys", "CorruptFileError", "FORMAT_VERSION"]

FORMAT_NAME = "cnnc"
FORMAT_VERSION = "2"
_READABLE_VERSIONS = ("1", "2")  # 1: no checksums, no random state
_OPTIMIZER_PREFIX = "optimizer/"
_WEIGHT_SLACK = 1 << 16  # weight elements a file's architecture may declare beyond its tensors
_UINT64_LIMIT = 1 << 64  # steps, seeds and stream positions are uint64 counters


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
def _leaf_layers(model, prefix="", by_position=False):
    """``(key, layer)`` for every layer with weights or state of its own,
    depth first. Layers of functional models are keyed ``<layer name>``,
    each nested model adding ``<model name>/``. Inside a subclassed model or
    a custom layer with sub-layers the keys are attribute paths
    (``encoder``, ``blocks/0``; below them positions), the same for every
    instance of the class; such a traced layer comes itself first, for the
    weights it creates directly."""
    from cnnc.models.functional import Model
    if model._traced:
        yield prefix.rstrip("/"), model
        for path, sub in model._tracked_items():
            yield from _layer_entries(sub, f"{prefix}{path}", True)
        return
    for i, layer in enumerate(model.layers):
        yield from _layer_entries(layer, f"{prefix}{i if by_position else layer.name}",
                                  by_position)


def _layer_entries(layer, key, by_position):
    from cnnc.models.functional import Model
    if layer._traced or isinstance(layer, Model):
        yield from _leaf_layers(layer, f"{key}/", by_position)
    else:
        yield key, layer


def weight_keys(model):
    """``[(key, Weight)]``: every weight of the model under a stable name
    ``<layer key>/<weight>`` (see :func:`_leaf_layers`); a weight reached
    twice (tied) is stored once."""
    table = []
    seen = set()
    for prefix, layer in _leaf_layers(model):
        used = set()
        for i, weight in enumerate(layer._weights if layer._traced else layer.weights):
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            short = weight.name.rsplit("/", 1)[-1] if weight.name else str(i)
            key = f"{prefix}/{short}" if prefix else short
            if key in used:
                key = f"{key}_{i}"
            used.add(key)
            table.append((key, weight))
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
    tensors = {key: w._value for key, w in weight_keys(model)}
    _safetensors.write(filepath, tensors, _metadata("weights"))


def _random_layers(model):
    """``[(key, layer)]``: the layers holding a random stream (Dropout, the
    random preprocessing layers), keyed ``<layer>`` as weights are (nested
    models add their name as a prefix)."""
    return [(key, layer) for key, layer in _leaf_layers(model)
            if callable(getattr(layer, "random_state", None))]


def random_state(model):
    """The position of every random stream of ``model``'s training: each
    random layer's state and the root of the shuffling streams of ``fit``."""
    state = {"layers": {key: layer.random_state() for key, layer in _random_layers(model)}}
    shuffle_root = getattr(model, "shuffle_root", None)
    if callable(shuffle_root):
        state["shuffle_root"] = int(shuffle_root())
    return state


def inference_parts(model):
    """``(model_config JSON text, {name: weight array})``: what the C runtime
    needs to run the model (the arrays are the weights' own, not copies)."""
    model._require_graph()
    return (json.dumps(serialize_layer(model)),
            {key: w._value for key, w in weight_keys(model)})


def inference_file_bytes(model):
    """The bytes of a model file holding only the architecture and the
    weights, built in memory."""
    config, tensors = inference_parts(model)
    metadata = _metadata("model")
    metadata["model_config"] = config
    return b"".join(_safetensors.encode(tensors, metadata))


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Write architecture, weights, compile config, optimizer state and the
    position of the random streams of training."""
    filepath = os.fspath(filepath)
    _check_writable(filepath, overwrite)
    model._require_graph()
    table = weight_keys(model)
    tensors = {key: w._value for key, w in table}
    metadata = _metadata("model")
    metadata["model_config"] = json.dumps(serialize_layer(model))
    metadata["random_state"] = json.dumps(random_state(model))
    if model.compiled:
        try:
            metadata["training_config"] = json.dumps(compile_config(model))
        except TypeError as exc:
            import warnings
            warnings.warn(f"the compile configuration is not saved ({exc}); the loaded model "
                          f"will need compile()")
        optimizer = model.optimizer
        if include_optimizer and optimizer is not None and "training_config" in metadata:
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
    version = metadata.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise CorruptFileError(f"{filepath}: cnnc format version {str(version)[:20]!r} is not "
                               f"supported (this cnnc reads versions "
                               f"{', '.join(_READABLE_VERSIONS)})")
    if version != "1":
        for key in (_safetensors.CHECKSUMS_KEY, _safetensors.METADATA_CHECKSUM_KEY):
            if key not in metadata:
                raise CorruptFileError(f"{filepath}: a version {version} file must have "
                                       f"the {key!r} metadata")
    for name, array in tensors.items():
        if array.dtype != np.float32:
            # cnnc writes float32 only: another dtype of the same size would
            # reinterpret the checksummed bytes.
            raise CorruptFileError(f"{filepath}: tensor {name!r} has dtype {array.dtype}; "
                                   f"cnnc files hold float32 tensors only")
    return tensors, metadata


def _json_entry(metadata, key, filepath, kind=dict):
    value = _safetensors.parse_json(metadata[key], filepath, f"the {key!r} metadata")
    if not isinstance(value, kind):
        raise CorruptFileError(f"{filepath}: the {key!r} metadata is not a JSON "
                               f"{'object' if kind is dict else kind.__name__}")
    return value


def _counter(value, filepath, what):
    """A uint64 counter from the file (steps, seeds, stream positions)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UINT64_LIMIT:
        raise CorruptFileError(f"{filepath}: {what} must be an integer in [0, 2**64), "
                               f"got {str(value)[:40]}")
    return value


def _weight_tensors(tensors):
    return {k: v for k, v in tensors.items() if not k.startswith(_OPTIMIZER_PREFIX)}


def _assign_weights(model, tensors, filepath, skip_mismatch=False):
    table = weight_keys(model)
    weight_tensors = _weight_tensors(tensors)
    problems = []
    for key, weight in table:
        array = weight_tensors.get(key)
        if array is None:
            problems.append(f"missing weight {key!r} of shape {weight.shape}")
        elif array.shape != weight.shape:
            problems.append(f"weight {key!r} has shape {array.shape} in the file but "
                            f"{weight.shape} in the model")
    unknown = sorted(set(weight_tensors) - {key for key, _ in table})
    if unknown:
        problems.append(f"the file has weights the model does not: {unknown[:5]}"
                        + (" ..." if len(unknown) > 5 else ""))
    if problems and not skip_mismatch:
        raise ValueError(f"{filepath}: the weights do not match the model:\n  "
                         + "\n  ".join(problems))
    for key, weight in table:
        array = weight_tensors.get(key)
        if array is not None and array.shape == weight.shape:
            weight.value[...] = array


def load_weights(model, filepath, skip_mismatch=False):
    """Load weights written by save_weights or save_model into ``model``
    (matched by layer and weight names; shapes must agree). A corrupt file
    raises CorruptFileError; weights that do not match the model, ValueError."""
    filepath = os.fspath(filepath)
    model._require_graph()
    tensors, _ = _read(filepath)
    _assign_weights(model, tensors, filepath, skip_mismatch)


def _restore_optimizer(model, tensors, metadata, filepath):
    optimizer = model.optimizer
    state = _json_entry(metadata, "optimizer_state", filepath)
    if set(state) != {"iterations"}:
        raise CorruptFileError(f"{filepath}: the optimizer_state metadata must be exactly "
                               f"{{\"iterations\": <steps>}}")
    iterations = _counter(state["iterations"], filepath, "the optimizer's step count")
    table = dict(weight_keys(model))
    found = {}  # weight key -> {slot: array}
    for name, array in tensors.items():
        if not name.startswith(_OPTIMIZER_PREFIX):
            continue
        key, _, slot = name[len(_OPTIMIZER_PREFIX):].rpartition("/")
        if key not in table:
            raise CorruptFileError(f"{filepath}: optimizer state {name!r} belongs to no weight")
        found.setdefault(key, {})[slot] = array
    for key, arrays in found.items():
        slots = optimizer.slots(table[key])
        if set(arrays) != set(slots):
            raise CorruptFileError(
                f"{filepath}: the optimizer state of {key!r} has the slots {sorted(arrays)}, "
                f"but {type(optimizer).__name__} keeps {sorted(slots)}")
        for slot, array in arrays.items():
            if slots[slot].shape != array.shape:
                raise CorruptFileError(f"{filepath}: optimizer state {key!r}/{slot} has shape "
                                       f"{array.shape}, expected {slots[slot].shape}")
            slots[slot][...] = array
    optimizer.iterations = iterations


def _check_optimizer_entries(tensors, metadata, filepath):
    """State and step count go together: optimizer tensors without the
    optimizer_state metadata, or that metadata without a training
    configuration, mean an altered file."""
    has_tensors = any(name.startswith(_OPTIMIZER_PREFIX) for name in tensors)
    if has_tensors and "optimizer_state" not in metadata:
        raise CorruptFileError(f"{filepath}: the file has optimizer state tensors but no "
                               f"optimizer_state metadata")
    # Version 1 wrote the state even when the compile configuration was not
    # serializable; version 2 writes both or neither.
    if ("optimizer_state" in metadata and "training_config" not in metadata
            and metadata.get("format_version") != "1"):
        raise CorruptFileError(f"{filepath}: the file has optimizer_state metadata but no "
                               f"training_config")


def _restore_random_state(model, metadata, filepath):
    state = _json_entry(metadata, "random_state", filepath)
    layers = dict(_random_layers(model))
    saved = state.get("layers")
    if set(state) - {"layers", "shuffle_root"} or not isinstance(saved, dict):
        raise CorruptFileError(f"{filepath}: the random_state metadata must be "
                               f"{{\"layers\": {{...}}, \"shuffle_root\": <int>}}")
    if set(saved) != set(layers):
        raise CorruptFileError(f"{filepath}: the random_state metadata names the layers "
                               f"{sorted(saved)[:5]}, the model's random layers are "
                               f"{sorted(layers)[:5]}")
    checked = {}
    for key, layer in layers.items():
        entry = saved[key]
        expected = layer.random_state()
        if not isinstance(entry, dict) or set(entry) != set(expected):
            raise CorruptFileError(f"{filepath}: the random state of layer {key!r} must have "
                                   f"exactly {sorted(expected)}")
        checked[key] = {k: _counter(v, filepath, f"random state {key!r}/{k}")
                        for k, v in entry.items()}
    root = state.get("shuffle_root")
    if root is not None:
        root = _counter(root, filepath, "the shuffle root")
    for key, layer in layers.items():
        layer.set_random_state(checked[key])
    if root is not None and hasattr(model, "_shuffle_seed"):
        model._shuffle_seed = root


# What rebuilding objects from a file's JSON can raise on hostile values
# (a config entry of the wrong type, a missing key, absurd numbers, nesting).
_REBUILD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
                   RecursionError, MemoryError, ZeroDivisionError, LookupError)


def _rebuild(filepath, what, build):
    try:
        return build()
    except CorruptFileError:
        raise
    except _REBUILD_ERRORS as exc:
        raise CorruptFileError(f"{filepath}: cannot rebuild the {what} from the file: "
                               f"{type(exc).__name__}: {str(exc)[:300]}") from exc


def load_model(filepath, custom_objects=None, compile=True):
    """A model saved by ``model.save``: architecture, weights and, when it
    was compiled and ``compile`` is true, its compile config, optimizer state
    and random streams (training resumes exactly where it stopped).

    Raises CorruptFileError (a ValueError) for any truncated, altered,
    inconsistent or hostile file; a file's architecture is never allowed to
    create more weight elements than the file's tensors hold."""
    filepath = os.fspath(filepath)
    tensors, metadata = _read(filepath)
    if "model_config" not in metadata:
        raise ValueError(f"{filepath} holds weights only (no architecture): build the model "
                         f"and call model.load_weights")
    config = _json_entry(metadata, "model_config", filepath)
    _check_optimizer_entries(tensors, metadata, filepath)
    # Weights the file cannot fill are refused later with a clearer message
    # when they are small; the slack keeps that while bounding the waste.
    budget = sum(array.size for array in _weight_tensors(tensors).values()) + _WEIGHT_SLACK

    def build():
        with _weight_limit.weights_within(budget, budget,
                                          lambda why: CorruptFileError(f"{filepath}: {why}")):
            model = model_from_config(config, custom_objects)
        model._require_graph()
        return model

    model = _rebuild(filepath, "architecture", build)
    _rebuild(filepath, "weights", lambda: _assign_weights(model, tensors, filepath))
    if metadata.get("format_version") not in (None, "1"):
        if "random_state" not in metadata:
            raise CorruptFileError(f"{filepath}: a version {metadata['format_version']} model "
                                   f"file must have random_state metadata")
        _restore_random_state(model, metadata, filepath)
    if compile and "training_config" in metadata:
        training = _json_entry(metadata, "training_config", filepath)

        def compile_from_file():
            from cnnc import optimizers
            optimizer = optimizers.deserialize(training.pop("optimizer"), custom_objects)
            args = {k: _deserialize_compile_value(v, custom_objects) for k, v in training.items()}
            model.compile(optimizer=optimizer, **args)

        _rebuild(filepath, "training configuration", compile_from_file)
        if "optimizer_state" in metadata:
            _rebuild(filepath, "optimizer state",
                     lambda: _restore_optimizer(model, tensors, metadata, filepath))
    return model
