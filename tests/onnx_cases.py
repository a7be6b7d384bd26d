"""Helpers for the ONNX tests: build one-node (or small) ONNX graphs with
onnx.helper and compare cnnc's import against onnxruntime."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def make_model(nodes, inputs, outputs, initializers=None, opset=17):
    """inputs: {name: shape (batch first; None for a dynamic batch)};
    outputs: names; initializers: {name: array}."""
    graph_inputs = [helper.make_tensor_value_info(
        name, TensorProto.FLOAT, ["N"] + list(shape[1:]) if shape[0] is None else list(shape))
        for name, shape in inputs.items()]
    graph_outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                     for name in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "case", graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def ort_run(model_or_path, feeds):
    data = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def compare(tmp_path, model, feeds, atol=1e-4, input_layout="NCHW"):
    """Import ``model`` into cnnc and check its outputs against onnxruntime's
    on ``feeds`` ({name: array}, NCHW); returns the cnnc model."""
    from cnnc.onnx import load_model
    path = str(tmp_path / "case.onnx")
    onnx.save(model, path)
    expected = ort_run(path, feeds)
    cm = load_model(path, input_layout=input_layout)
    xs = [feeds[name] for name in (i.name for i in model.graph.input) if name in feeds]
    if input_layout == "NHWC":
        xs = [np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim >= 3 else x for x in xs]
    got = cm.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    got = got if isinstance(got, list) else [got]
    for g, e in zip(got, expected):
        if input_layout == "NHWC" and e.ndim >= 3:
            e = np.moveaxis(e, 1, -1)
        assert g.shape == e.shape, (g.shape, e.shape)
        np.testing.assert_allclose(g, e, atol=atol, rtol=1e-4)
    return cm


def rand(*shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)
