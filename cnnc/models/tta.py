"""Test-time augmentation for ``Model.predict(..., tta=...)``: the outputs
for several views of the same inputs, averaged."""
import numpy as np

from cnnc.models import data_adapter

MODES = ("flip",)


def views(x, tta, input_names):
    """The inputs to predict on: ``[x]`` without ``tta``; with ``"flip"``,
    ``x`` and its horizontal mirror image (the width axis of ``(N, H, W, C)``
    image arrays)."""
    if tta is None:
        return [x]
    if tta not in MODES:
        raise ValueError(f"tta must be None or one of {MODES}, got {tta!r}")
    if not data_adapter.is_array_like(x):
        raise ValueError("tta needs the inputs as arrays (a dataset or generator cannot be mirrored)")
    xs = data_adapter.to_list(x, input_names, "x")
    flipped = []
    for a in xs:
        a = np.asarray(a)
        if a.ndim != 4:
            raise ValueError(f"tta='flip' mirrors images (N, H, W, C); got an input of shape {a.shape}")
        flipped.append(np.ascontiguousarray(a[:, :, ::-1]))
    return [xs, flipped]


def average(results):
    """The mean of the per-view outputs (arrays, or lists of arrays for
    several outputs), in float32."""
    if len(results) == 1:
        return results[0]
    if isinstance(results[0], list):
        return [average([r[k] for r in results]) for k in range(len(results[0]))]
    total = np.zeros_like(results[0], dtype=np.float32)
    for r in results:
        total += r
    return total / np.float32(len(results))
