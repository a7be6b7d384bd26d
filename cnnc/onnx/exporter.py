"""cnnc model -> ONNX file."""
import os


from cnnc.onnx import layout
from cnnc.onnx.dependency import require_onnx
from cnnc.onnx.export_layers import converter_for
from cnnc.onnx.graph_builder import GraphBuilder, Value

DEFAULT_OPSET = 17
MIN_OPSET = 13


def _walk(g, model, inputs):
    """Add ``model``'s layers to ``g``; ``inputs``: a Value per model input.
    Returns a Value per model output. Nested models are inlined."""
    from cnnc.models import Model
    values = [None] * model._n_slots
    for slot, layer, value in zip(model._input_slots, model._input_layers, inputs):
        values[slot] = value
    for step in model._steps:
        layer = step.layer
        args = [values[s] for s in step.inputs]
        if isinstance(layer, Model):
            outs = _walk(g, layer, args)
        else:
            fn = converter_for(layer)
            if fn is None:
                raise ValueError(f"cannot export layer {layer.name!r} of class "
                                 f"{type(layer).__name__} to ONNX")
            shapes = [model._slot_shapes[s] for s in step.outputs]
            out = fn(g, layer, args, shapes[0])
            outs = out if isinstance(out, list) else [out]
        for s, v in zip(step.outputs, outs):
            values[s] = v
    return [values[s] for s in model._output_slots]


def _dims(shape, batch):
    return [batch] + [d if d is not None else f"d{i}" for i, d in enumerate(shape[1:], 1)]


def export(model, path, opset=None, input_layout="NHWC", batch_size=None):
    """Write ``model`` (a cnnc functional or Sequential Model) to ``path`` as
    ONNX; returns the path.

    opset: the ONNX opset (default 17, at least 13). input_layout: "NHWC"
    (default: inputs and outputs as cnnc takes and gives them) or "NCHW"
    (image inputs of rank 3 or 4 channels-first, as PyTorch exports them;
    outputs then channels-first too). batch_size: a fixed batch size, or
    None for a dynamic one. Inference semantics: dropout and augmentation
    layers are the identity, batch normalization uses its moving statistics.
    """
    onnx = require_onnx()
    from cnnc.models import Model
    if not isinstance(model, Model):
        raise TypeError(f"export takes a cnnc Model, got {type(model).__name__}")
    model._require_graph()
    plan = model._mask_plan() if not model._traced else None
    if plan is not None and plan.consumes:
        raise ValueError(f"model {model.name!r} has layers that consume masks "
                         f"(Embedding(mask_zero=True) / Masking feeding a mask-aware layer); "
                         f"ONNX has no masks, so it cannot be exported")
    opset = DEFAULT_OPSET if opset is None else int(opset)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be between {MIN_OPSET} and {newest}, got {opset}")
    if input_layout not in ("NHWC", "NCHW"):
        raise ValueError(f"input_layout must be 'NHWC' or 'NCHW', got {input_layout!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None or a positive int, got {batch_size!r}")
    batch = batch_size if batch_size is not None else "batch"
    g = GraphBuilder(onnx, opset)
    helper = onnx.helper
    graph_inputs, inputs = [], []
    for i, tensor in enumerate(model.inputs):
        shape = tuple(tensor.shape)
        perm = (layout.channels_first(len(shape)) if input_layout == "NCHW" and len(shape) >= 3
                else layout.identity(len(shape)))
        name = g.unique(model.input_names[i] if i < len(model.input_names) else f"input_{i}")
        onnx_shape = [shape[a] for a in perm]
        graph_inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                          _dims(onnx_shape, batch)))
        inputs.append(Value(name, perm, shape))
    outputs = _walk(g, model, inputs)
    graph_outputs = []
    for i, value in enumerate(outputs):
        want = (layout.channels_first(value.rank) if input_layout == "NCHW" and value.rank >= 3
                else layout.identity(value.rank))
        value = g.in_perm(value, want)
        hint = model.output_names[i] if i < len(model.output_names) else f"output_{i}"
        name = g.node("Identity", [value.name], f"{hint}_output")
        onnx_shape = [value.shape[a] for a in value.perm]
        graph_outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                           _dims(onnx_shape, batch)))
    graph = helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="cnnc")
    if opset <= 17:  # the IR version of that opset, for older runtimes
        proto.ir_version = 8
    onnx.checker.check_model(proto)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
