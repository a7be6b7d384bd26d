"""The optional ``onnx`` package, imported on first use."""


def require_onnx():
    """The ``onnx`` module, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError("cnnc.onnx needs the 'onnx' package: pip install 'cnnc[onnx]' "
                          "(or pip install onnx)") from error
    return onnx
