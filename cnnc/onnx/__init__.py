"""ONNX export and import (``pip install cnnc[onnx]``).

``export(model, path)`` writes a cnnc model as an ONNX file that ONNX
runtimes run with the same predictions; ``load_model(path)`` turns an ONNX
file (e.g. one written by ``torch.onnx.export``) into a trainable cnnc
functional Model. The ``onnx`` package is imported only when one of them is
called.
"""
from cnnc.onnx.exporter import export
from cnnc.onnx.importer import load_model

__all__ = ["export", "load_model"]
