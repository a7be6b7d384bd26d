"""Seeing what a CNN learns: PNG grids of a layer's filters and of the
feature maps an image produces, and training curves.

Images are written with matplotlib when it is installed (colour maps,
titles, axes) and otherwise with cnnc's own PNG writer, so everything here
works with NumPy alone.
"""
import os

import numpy as np

from cnnc import _png

__all__ = ["image_grid", "save_image_grid", "filters_grid", "plot_filters", "feature_extractor",
           "feature_maps", "plot_feature_maps", "plot_history", "write_png", "have_matplotlib"]

write_png = _png.write_png

# Train and validation curve colours of the built-in plotter (RGB).
_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _normalize_tiles(tiles, per_tile=True):
    tiles = np.asarray(tiles, np.float64)
    axes = tuple(range(1, tiles.ndim)) if per_tile else None
    lo = tiles.min(axis=axes, keepdims=per_tile)
    hi = tiles.max(axis=axes, keepdims=per_tile)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (tiles - lo) / span


def image_grid(tiles, ncols=None, pad=1, scale=1, per_tile=True, background=1.0):
    """Arrange ``tiles`` (N, H, W) or (N, H, W, 3) into one uint8 image.

    Each tile is stretched to the full 0..255 range (``per_tile``) or all
    together; ``scale`` enlarges pixels (nearest); ``pad`` pixels of
    ``background`` (0..1) separate the tiles."""
    tiles = np.asarray(tiles)
    if tiles.ndim == 4 and tiles.shape[-1] == 1:
        tiles = tiles[..., 0]
    if tiles.ndim not in (3, 4) or len(tiles) == 0 or (tiles.ndim == 4 and tiles.shape[-1] != 3):
        raise ValueError(f"tiles must be (N, H, W) or (N, H, W, 3) with N >= 1, got {tiles.shape}")
    n, h, w = tiles.shape[:3]
    ncols = int(ncols or int(np.ceil(np.sqrt(n))))
    nrows = -(-n // ncols)
    tiles = _normalize_tiles(tiles, per_tile)
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    shape = (nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad) + tiles.shape[3:]
    grid = np.full(shape, background, np.float64)
    for k in range(n):
        r, c = divmod(k, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = tiles[k]
    return np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)


def save_image_grid(tiles, path, ncols=None, title=None, cmap="viridis", scale=None, pad=None, **kwargs):
    """Write an image_grid of ``tiles`` to ``path`` (PNG); returns the path."""
    path = os.fspath(path)
    tiles = np.asarray(tiles)
    if scale is None:
        scale = max(1, 96 // max(tiles.shape[1], tiles.shape[2]))
    if pad is None:  # separators that stay visible on enlarged tiles
        pad = max(1, scale // 8)
    grid = image_grid(tiles, ncols=ncols, scale=scale, pad=pad, **kwargs)
    if have_matplotlib():
        plt = _pyplot()
        height, width = grid.shape[:2]
        fig = plt.figure(figsize=(max(3.0, width / 100), max(3.0, height / 100) + (0.4 if title else 0)))
        ax = fig.add_axes([0, 0, 1, 0.92 if title else 1])
        ax.imshow(grid, cmap=None if grid.ndim == 3 else cmap, interpolation="nearest")
        ax.set_axis_off()
        if title:
            fig.suptitle(title)
        fig.savefig(path, dpi=100)
        plt.close(fig)
    else:
        _png.write_png(path, grid)
    return path


def _kernel_of(layer_or_kernel):
    if isinstance(layer_or_kernel, np.ndarray):
        return layer_or_kernel
    weights = layer_or_kernel.get_weights()
    if not weights:
        raise ValueError(f"layer {getattr(layer_or_kernel, 'name', layer_or_kernel)!r} has no weights")
    return weights[0]


def filters_grid(layer_or_kernel, channel=None):
    """The filters of a convolution layer (or a kernel array (kh, kw, cin,
    cout)) as tiles (cout, kh, kw[, 3]): RGB when the layer reads three
    channels, else input ``channel`` (default: the mean over input channels)."""
    kernel = np.asarray(_kernel_of(layer_or_kernel), np.float64)
    if kernel.ndim == 3:  # Conv1D (k, cin, cout): show each filter as a 1-pixel-high strip
        kernel = kernel[None]
    if kernel.ndim != 4:
        raise ValueError(f"expected a 2-D convolution kernel (kh, kw, cin, cout), got shape {kernel.shape}")
    tiles = np.moveaxis(kernel, 3, 0)  # (cout, kh, kw, cin)
    if channel is not None:
        return tiles[..., int(channel)]
    if tiles.shape[-1] == 3:
        return tiles
    return tiles.mean(axis=-1)


def plot_filters(layer_or_kernel, path, channel=None, ncols=None, title=None):
    """Write a PNG grid of a convolution layer's filters; returns the path."""
    tiles = filters_grid(layer_or_kernel, channel)
    name = getattr(layer_or_kernel, "name", "kernel")
    return save_image_grid(tiles, path, ncols=ncols, cmap="gray",
                           title=title or f"{name}: {len(tiles)} filters")


def _find_layer(model, layer):
    if not isinstance(layer, str):
        return layer
    try:
        return model.get_layer(layer)
    except (ValueError, AttributeError, KeyError):
        pass
    for candidate in getattr(model, "layers", []):  # one level of nesting (models in models)
        if hasattr(candidate, "get_layer"):
            try:
                return candidate.get_layer(layer)
            except (ValueError, AttributeError, KeyError):
                continue
    raise ValueError(f"no layer named {layer!r} in model {getattr(model, 'name', model)!r}")


def feature_extractor(model, layer):
    """``Model(inputs, layer.output)``: a model that returns the activations of
    ``layer`` (a layer or its name; in a nested model too) for its inputs."""
    from cnnc.models import Model
    layer = _find_layer(model, layer)
    for owner in [model] + [m for m in getattr(model, "layers", []) if hasattr(m, "get_layer")]:
        if layer in getattr(owner, "layers", []):
            inputs = owner.inputs if hasattr(owner, "inputs") else owner.input
            return Model(inputs, layer.output, name=f"{layer.name}_features")
    return Model(model.inputs, layer.output, name=f"{layer.name}_features")


def feature_maps(model, layer, image):
    """Activations (H, W, C) of ``layer`` for one image (H, W, C) or (H, W)."""
    image = np.asarray(image, np.float32)
    extractor = feature_extractor(model, layer)
    want = extractor.inputs[0].shape if hasattr(extractor, "inputs") else None
    if want is not None and image.ndim == len(want) - 2:
        image = image[..., None]
    out = extractor.predict(image[None], verbose=0)
    return out[0]


def plot_feature_maps(model, layer, image, path, max_maps=64, ncols=None, title=None):
    """Write a PNG grid of the feature maps ``layer`` produces for ``image``;
    returns the path."""
    maps = np.asarray(feature_maps(model, layer, image))
    if maps.ndim == 1:
        maps = maps[None, None, :]
    if maps.ndim == 2:  # 1-D features (length, channels): one strip per channel
        maps = maps[None]
    tiles = np.moveaxis(maps, -1, 0)[:max_maps]
    name = layer if isinstance(layer, str) else layer.name
    return save_image_grid(tiles, path, ncols=ncols,
                           title=title or f"{name}: {len(tiles)} feature maps")


def _history_dict(history):
    data = getattr(history, "history", history)
    if not isinstance(data, dict) or not data:
        raise ValueError("history must be a History or a dict of metric name -> list of values")
    return {k: [float(v) for v in vals] for k, vals in data.items() if len(vals)}


def _curve_panels(data):
    """[(title, [names])]: losses in one panel, each other metric in its own."""
    base = [k for k in data if not k.startswith("val_") and k not in ("lr", "learning_rate")]
    panels = []
    for name in base:
        names = [name] + ([f"val_{name}"] if f"val_{name}" in data else [])
        panels.append((name, names))
    return panels or [(k, [k]) for k in data]


def plot_history(history, path, title=None):
    """Write training curves (one panel per metric, training and validation
    together) to a PNG; returns the path. ``history``: the History returned
    by fit, or a dict of lists. Without matplotlib, a plain plot is drawn:
    training in blue, validation in orange."""
    path = os.fspath(path)
    data = _history_dict(history)
    panels = _curve_panels(data)
    if have_matplotlib():
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
        for ax, (name, names) in zip(axes[0], panels):
            for key in names:
                ax.plot(range(1, len(data[key]) + 1), data[key], marker="o", label=key)
            ax.set_xlabel("epoch")
            ax.set_title(name)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
    _png.write_png(path, _raster_plot(data, panels))
    return path


def _draw_line(canvas, x0, y0, x1, y1, color, width=2):
    steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
    ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
    h, w = canvas.shape[:2]
    for dx in range(width):
        for dy in range(width):
            ok = (ys + dy < h) & (xs + dx < w)
            canvas[ys[ok] + dy, xs[ok] + dx] = color


def _raster_plot(data, panels, panel_w=360, panel_h=260, margin=24):
    canvas = np.full((panel_h, panel_w * len(panels), 3), 255, np.uint8)
    for p, (_, names) in enumerate(panels):
        left, right = p * panel_w + margin, (p + 1) * panel_w - margin // 2
        top, bottom = margin // 2, panel_h - margin
        values = np.concatenate([data[k] for k in names])
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        span = hi - lo
        lo, hi = lo - 0.05 * span, hi + 0.05 * span
        canvas[top:bottom + 1, left] = canvas[bottom, left:right + 1] = 0  # axes
        for frac in (0.25, 0.5, 0.75):  # light horizontal grid lines
            y = int(round(bottom - frac * (bottom - top)))
            canvas[y, left + 1:right + 1] = 225
        count = max(len(data[k]) for k in names)
        for e in range(count):  # one tick per epoch
            x = left if count == 1 else int(round(left + e * (right - left) / (count - 1)))
            canvas[bottom:bottom + 4, x] = 0
        for color, key in zip(_COLORS, names):
            vals = data[key]
            pts = [(left if len(vals) == 1 else left + e * (right - left) / max(1, count - 1),
                    bottom - (v - lo) / (hi - lo) * (bottom - top)) for e, v in enumerate(vals)
                   if np.isfinite(v)]
            for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
                _draw_line(canvas, xa, ya, xb, yb, color)
            for xa, ya in pts:
                _draw_line(canvas, xa - 2, ya - 2, xa - 2, ya + 2, color, width=5)
    return canvas
