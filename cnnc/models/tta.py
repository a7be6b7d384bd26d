"""Test-time augmentation for ``Model.predict(..., tta=...)``: the outputs
for several views of the same inputs, averaged."""
import numpy as np

from cnnc.models import data_adapter

MODES = ("flip", "shift", "flip+shift")

# One-pixel moves (rows, columns) of the "shift" views, after the image itself.
_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def _shifted(a, rows, cols):
    """``a`` (N, H, W, C) moved by ``rows`` and ``cols`` pixels, the pixels
    moved in filled with zeros (the fill of ``RandomCrop(padding=...)``)."""
    if rows == 0 and cols == 0:
        return a
    out = np.zeros_like(a)
    height, width = a.shape[1:3]
    dst_r = slice(max(rows, 0), height + min(rows, 0))
    src_r = slice(max(-rows, 0), height + min(-rows, 0))
    dst_c = slice(max(cols, 0), width + min(cols, 0))
    src_c = slice(max(-cols, 0), width + min(-cols, 0))
    out[:, dst_r, dst_c] = a[:, src_r, src_c]
    return out


def views(x, tta, input_names):
    """The inputs to predict on, one entry per view: ``[x]`` without ``tta``.

    ``"flip"``: ``x`` and its horizontal mirror image (the width axis of
    ``(N, H, W, C)`` image arrays). ``"shift"``: ``x`` and ``x`` moved by one
    pixel up, down, left and right (zeros fill the vacated row or column).
    ``"flip+shift"``: those five and their mirror images. Every input of a
    multi-input model gets the same view."""
    if tta is None:
        return [x]
    if tta not in MODES:
        raise ValueError(f"tta must be None or one of {MODES}, got {tta!r}")
    if not data_adapter.is_array_like(x):
        raise ValueError("tta needs the inputs as arrays (a dataset or generator cannot be mirrored "
                         "or shifted)")
    xs = [np.asarray(a) for a in data_adapter.to_list(x, input_names, "x")]
    for a in xs:
        if a.ndim != 4:
            raise ValueError(f"tta={tta!r} mirrors or shifts images (N, H, W, C); got an input of "
                             f"shape {a.shape}")
    shifts = _SHIFTS if "shift" in tta else _SHIFTS[:1]
    mirrors = (False, True) if "flip" in tta else (False,)
    out = []
    for mirror in mirrors:
        for rows, cols in shifts:
            view = []
            for a in xs:
                v = _shifted(a, rows, cols)
                view.append(np.ascontiguousarray(v[:, :, ::-1]) if mirror else v)
            out.append(view)
    return out


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
