"""``Model.summary()``: the Keras table of layers, output shapes and
parameter counts."""


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")")


def _layer_rows(model):
    """(name (type), output shape, params, connected-to) per layer."""
    rows = []
    if model._traced and model._graph_ready:
        from cnnc.models.subclassed import output_shape_rows
        return [(name, shape if isinstance(shape, str) else _shape_text(shape), params, conn)
                for name, shape, params, conn in output_shape_rows(model)]
    if not model._graph_ready:
        for layer in model.layers:
            params = layer.count_params() if layer.built else "0 (unbuilt)"
            rows.append((f"{layer.name} ({type(layer).__name__})", "?", params, ""))
        return rows
    producer = {}
    node_index = {}
    for step in model._steps:
        producer.setdefault(id(step.layer), []).append(step)
        node_index[id(step.node)] = len(producer[id(step.layer)]) - 1
    for layer in model.layers:
        steps = producer.get(id(layer))
        if steps is None:  # an input layer
            node = layer._inbound_nodes[0]
            shape = node.outputs[0].shape
            connected = ""
        else:
            # A shared layer: the output shape of its first call, the inputs of all.
            outs = [t.shape for t in steps[0].node.outputs]
            shape = outs[0] if len(outs) == 1 else outs
            connected = ", ".join(
                f"{t.node.layer.name}[{node_index.get(id(t.node), 0)}][{t.index}]"
                if t.node is not None else "input"
                for step in steps for t in step.node.inputs)
        rows.append((f"{layer.name} ({type(layer).__name__})", _shape_text(shape),
                     layer.count_params(), connected))
    return rows


def print_summary(model, line_length=None, positions=None, print_fn=None, show_trainable=False,
                  batch_size=32):
    print_fn = print_fn or print
    from cnnc.models.sequential import Sequential
    sequential = isinstance(model, Sequential) or model._traced
    rows = _layer_rows(model)
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if not sequential:
        headers.append("Connected to")
    if show_trainable:
        headers.append("Trainable")
    table = []
    for i, (name, shape, params, connected) in enumerate(rows):
        layer = model.layers[i]
        fields = [name, shape, f"{params:,}" if isinstance(params, int) else params]
        if not sequential:
            fields.append(connected)
        if show_trainable:
            fields.append("Y" if layer.trainable else "N")
        table.append(fields)
    if positions is None:
        # Columns as wide as their content (the last one is never padded).
        widths = [max([len(headers[c])] + [len(str(r[c])) for r in table]) + 3
                  for c in range(len(headers))]
        positions = [sum(widths[:c + 1]) for c in range(len(headers))]
    elif positions[-1] <= 1:
        positions = [int((line_length or 98) * p) for p in positions]
    line_length = line_length or max(positions[-1], 65)

    def line(fields):
        text = ""
        for i, field in enumerate(fields):
            if i > 0:
                text = text[:positions[i - 1] - 1] + " "
            text += str(field)
            if i < len(fields) - 1:
                text = text.ljust(positions[i])
        print_fn(" " + text.rstrip())

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    line(headers)
    print_fn("=" * line_length)
    for i, fields in enumerate(table):
        line(fields)
        if i < len(table) - 1:
            print_fn("")
    print_fn("=" * line_length)
    for line_text in _memory_lines(model, batch_size):
        print_fn(line_text)
    total = model.count_params()
    trainable = int(sum(w.size for w in model.trainable_weights))
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)


def _memory_lines(model, batch_size):
    """The estimated peaks of training and inference, when the model's
    tensor sizes are known."""
    if batch_size is None or getattr(model, "_traced", False):
        return []
    from cnnc.models.memory import estimate_memory, format_bytes
    try:
        train = estimate_memory(model, batch_size, training=True)
        infer = estimate_memory(model, batch_size, training=False)
    except ValueError:  # sizes unknown beyond the batch axis
        return []
    return [f"Estimated peak memory (batch_size={batch_size}): training "
            f"{format_bytes(train.total)}, inference {format_bytes(infer.total)}"]
