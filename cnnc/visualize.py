"""Seeing what a CNN learns: PNG grids of a layer's filters and of the
feature maps an image produces, training curves, the confusion matrix of a
test set and the test images it got most wrong.

Images are written with matplotlib when it is installed (colour maps,
titles, axes) and otherwise with cnnc's own PNG writer, so everything here
works with NumPy alone.
"""
import os
import textwrap

import numpy as np

from cnnc import _png

__all__ = ["image_grid", "save_image_grid", "filters_grid", "plot_filters", "feature_extractor",
           "feature_maps", "plot_feature_maps", "plot_history", "write_png", "have_matplotlib",
           "confusion_matrix", "plot_confusion_matrix", "hardest_misclassified", "plot_misclassified"]

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
        if grid.ndim == 2:
            # Colour-map the tiles only: separators and the empty cells of the
            # last row stay white instead of taking the map's top colour.
            layout = dict(kwargs, per_tile=False, background=1.0)
            outside = image_grid(np.zeros(tiles.shape[:3]), ncols=ncols, scale=scale, pad=pad, **layout) == 255
            grid = plt.get_cmap(cmap)(grid / 255.0)[..., :3]
            grid[outside] = 1.0
        height, width = grid.shape[:2]
        fig_w = max(3.0, width / 100)
        lines = textwrap.wrap(title, width=max(16, int(fig_w * 100 / 8))) if title else []
        title_h = 0.1 + 0.22 * len(lines)  # inches: one line of the default font each
        fig_h = max(3.0, height / 100) + (title_h if lines else 0)
        fig = plt.figure(figsize=(fig_w, fig_h))
        ax = fig.add_axes([0, 0, 1, 1 - (title_h / fig_h if lines else 0)])
        ax.imshow(grid, interpolation="nearest")
        ax.set_axis_off()
        if lines:
            fig.suptitle("\n".join(lines), y=1 - 0.05 / fig_h, va="top")
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


def _save_figure(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    by fit, or a dict of lists. Without matplotlib, cnnc draws the same
    panels itself (axes, ticks and their labels, integer epochs, a legend;
    training in blue, validation in orange) with a built-in bitmap font."""
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
        _save_figure(plt, fig, path)
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


def _nice_ticks(lo, hi, count=6):
    """About ``count`` round values (1, 2 or 5 times a power of ten apart)
    covering [lo, hi]."""
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(first, hi + step * 1e-9, step)]


def _epoch_ticks(count, most):
    """Integer epochs 1..count to label, every 1, 2, 5, 10, 20, ... so that
    at most ``most`` labels are drawn (the last epoch is always labelled)."""
    step = next(m * 10 ** k for k in range(19) for m in (1, 2, 5) if count / (m * 10 ** k) <= max(most, 1))
    ticks = list(range(1, count + 1, step))
    if ticks[-1] != count:
        if (count - ticks[-1]) * 2 < step:
            ticks.pop()
        ticks.append(count)
    return ticks


def _raster_plot(data, panels, panel_w=420, panel_h=300):
    """The curves drawn with NumPy alone: per panel a title, axes with tick
    marks and labels (integer epochs on x), the axis names and a legend."""
    from cnnc._font import GLYPH_H, draw_text, text_size
    left_room, bottom_room, top_room, right_room = 58, 34, 20, 12
    canvas = np.full((panel_h, panel_w * len(panels), 3), 255, np.uint8)
    black, grey = (0, 0, 0), (225, 225, 225)
    for p, (title, names) in enumerate(panels):
        x_origin = p * panel_w
        left, right = x_origin + left_room, x_origin + panel_w - right_room
        top, bottom = top_room, panel_h - bottom_room
        values = np.concatenate([data[k] for k in names])
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        span = hi - lo
        lo, hi = lo - 0.05 * span, hi + 0.05 * span
        to_y = lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)
        count = max(len(data[k]) for k in names)
        to_x = lambda e: left + (right - left) / 2 if count == 1 else left + (e - 1) * (right - left) / (count - 1)
        for v in _nice_ticks(lo, hi):  # y: grid line, tick, label
            y = int(round(to_y(v)))
            canvas[y, left + 1:right + 1] = grey
            canvas[y, left - 4:left] = black
            label = f"{v:.3g}"
            w, _ = text_size(label)
            draw_text(canvas, left - 7 - w, y - GLYPH_H // 2, label)
        for e in _epoch_ticks(count, (right - left) // 24):  # x: integer epochs
            x = int(round(to_x(e)))
            canvas[bottom:bottom + 5, x] = black
            w, _ = text_size(str(e))
            draw_text(canvas, x - w // 2, bottom + 8, str(e))
        canvas[top:bottom + 1, left] = canvas[bottom, left:right + 1] = black  # axes
        w, _ = text_size("epoch")
        draw_text(canvas, (left + right - w) // 2, panel_h - GLYPH_H - 4, "epoch")
        draw_text(canvas, x_origin + 3, (top + bottom + text_size(title)[0]) // 2, title, vertical=True)
        w, _ = text_size(title)
        draw_text(canvas, (left + right - w) // 2, 6, title)
        for color, key in zip(_COLORS, names):
            pts = [(to_x(e), to_y(v)) for e, v in enumerate(data[key], start=1) if np.isfinite(v)]
            for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
                _draw_line(canvas, xa, ya, xb, yb, color)
            for xa, ya in pts:
                _draw_line(canvas, xa - 2, ya - 2, xa - 2, ya + 2, color, width=5)
        legend_w = max(text_size(k)[0] for k in names) + 22
        legend_x, legend_y = right - legend_w - 4, top + 6
        box = canvas[legend_y - 4:legend_y + 12 * len(names), legend_x - 5:right - 2]
        box[...] = 255
        box[[0, -1], :] = 160  # a thin grey frame
        box[:, [0, -1]] = 160
        for i, (color, key) in enumerate(zip(_COLORS, names)):
            y = legend_y + 12 * i
            _draw_line(canvas, legend_x, y + 3, legend_x + 14, y + 3, color)
            draw_text(canvas, legend_x + 18, y, key)
    return canvas


def _class_indices(y, name):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be class indices (N,), got shape {y.shape}")
    if y.size and (y.dtype.kind not in "iu" and not np.array_equal(y, np.floor(y))):
        raise ValueError(f"{name} must hold integer class indices")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} holds a negative class index {int(y.min())}")
    return y


def _predicted_classes(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return y_pred.argmax(axis=1)
    return _class_indices(y_pred, "y_pred")


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts ``(C, C)`` (int64): entry ``[i, j]`` is the number of samples
    of true class ``i`` predicted as class ``j``. ``y_true``: class indices
    ``(N,)``; ``y_pred``: class indices ``(N,)`` or scores ``(N, C)`` (the
    highest is the prediction). ``num_classes``: C (default: one more than
    the largest index seen, or the width of the scores)."""
    truth = _class_indices(y_true, "y_true")
    pred = _predicted_classes(y_pred)
    if len(truth) != len(pred):
        raise ValueError(f"y_true has {len(truth)} samples, y_pred {len(pred)}")
    seen = int(max(truth.max(initial=-1), pred.max(initial=-1))) + 1
    width = np.asarray(y_pred).shape[1] if np.ndim(y_pred) == 2 and np.shape(y_pred)[1] > 1 else 0
    c = int(num_classes) if num_classes is not None else max(seen, width)
    if seen > c:
        raise ValueError(f"class index {seen - 1} is out of range for num_classes={c}")
    return np.bincount(truth * c + pred, minlength=c * c).reshape(c, c)


def _class_names(class_names, count):
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(count)]
    if len(names) != count:
        raise ValueError(f"class_names has {len(names)} names for {count} classes")
    return names


def _short(name, most):
    name = str(name)
    return name if len(name) <= most else name[:most - 1] + "."


def plot_confusion_matrix(y_true, y_pred, path, class_names=None, title=None, num_classes=None):
    """Write the confusion matrix (rows: true class, columns: predicted) as a
    PNG, each cell shaded by its share of the row and labelled with its
    count (see ``confusion_matrix``); returns the path. Without
    matplotlib, cnnc draws it with its own bitmap font."""
    path = os.fspath(path)
    counts = confusion_matrix(y_true, y_pred, num_classes)
    c = counts.shape[0]
    names = _class_names(class_names, c)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    heading = f"{title + ': ' if title else ''}accuracy {accuracy:.4f} on {counts.sum()} samples"
    if have_matplotlib():
        plt = _pyplot()
        size = max(4.0, 0.55 * c + 2.0)
        fig, ax = plt.subplots(figsize=(size + 1.0, size))
        image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(c):
            for j in range(c):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(c), [_short(n, 12) for n in names], rotation=45, ha="right")
        ax.set_yticks(range(c), [_short(n, 12) for n in names])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(heading)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        _save_figure(plt, fig, path)
    else:
        _png.write_png(path, _raster_confusion(counts, share, names, heading))
    return path


def _cell_colour(share):
    """White to dark blue as the share of the row goes from 0 to 1."""
    light, dark = np.array([247, 251, 255.0]), np.array([8, 48, 107.0])
    return tuple(int(v) for v in np.rint(light + (dark - light) * share))


def _raster_confusion(counts, share, names, heading):
    from cnnc._font import GLYPH_H, draw_text, text_size
    c = counts.shape[0]
    labels = [_short(n, 12) for n in names]
    cell = max(text_size(str(counts.max()))[0] + 8, 24)
    left = max(text_size(n)[0] for n in labels) + 24
    top = 34
    bottom = max(text_size(n)[0] for n in labels) + 24   # vertical column labels
    width = max(left + c * cell + 8, text_size(heading)[0] + 16)
    canvas = np.full((top + c * cell + bottom, width, 3), 255, np.uint8)
    draw_text(canvas, 8, 6, heading)
    draw_text(canvas, left, top - GLYPH_H - 6, "predicted (columns), true (rows)")
    for i in range(c):
        for j in range(c):
            y, x = top + i * cell, left + j * cell
            canvas[y:y + cell, x:x + cell] = _cell_colour(share[i, j])
            text = str(counts[i, j])
            w, _ = text_size(text)
            colour = (255, 255, 255) if share[i, j] > 0.5 else (0, 0, 0)
            draw_text(canvas, x + (cell - w) // 2, y + (cell - GLYPH_H) // 2, text, color=colour)
        w, _ = text_size(labels[i])
        draw_text(canvas, left - 6 - w, top + i * cell + (cell - GLYPH_H) // 2, labels[i])
        draw_text(canvas, left + i * cell + (cell - GLYPH_H) // 2, top + c * cell + 6 + text_size(labels[i])[0],
                  labels[i], vertical=True)
    grid = canvas[top:top + c * cell + 1, left:left + c * cell + 1]
    grid[::cell, :] = grid[:, ::cell] = 200    # cell borders
    return canvas


def hardest_misclassified(y_true, probs, count=None):
    """Indices of the misclassified samples, the hardest first: ordered by
    the probability the model gave the true class, lowest first (ties by
    the index). ``probs``: scores ``(N, C)``; ``count``: at most that many."""
    truth = _class_indices(y_true, "y_true")
    probs = np.asarray(probs)
    if probs.ndim != 2 or len(probs) != len(truth):
        raise ValueError(f"probs must be (N, C) for {len(truth)} labels, got shape {probs.shape}")
    if truth.size and truth.max() >= probs.shape[1]:
        raise ValueError(f"class index {int(truth.max())} is out of range for {probs.shape[1]} classes")
    wrong = np.flatnonzero(probs.argmax(axis=1) != truth)
    order = wrong[np.argsort(probs[wrong, truth[wrong]], kind="stable")]
    return order if count is None else order[:int(count)]


def plot_misclassified(images, y_true, probs, path, class_names=None, count=25, ncols=None,
                       title=None):
    """Write the ``count`` hardest misclassified images (see
    ``hardest_misclassified``) as a PNG grid, each captioned with its true
    class, the predicted one and the probability of the prediction; returns
    the path. ``images``: ``(N, H, W)``, ``(N, H, W, 1)`` or
    ``(N, H, W, 3)``."""
    path = os.fspath(path)
    images = np.asarray(images)
    probs = np.asarray(probs)
    if len(images) != len(probs):
        raise ValueError(f"images has {len(images)} samples, probs {len(probs)}")
    index = hardest_misclassified(y_true, probs, count)
    truth = _class_indices(y_true, "y_true")
    c = probs.shape[1]
    names = _class_names(class_names, c)
    captions = [(names[truth[k]], names[int(probs[k].argmax())], float(probs[k].max())) for k in index]
    heading = title or f"{len(index)} hardest misclassified (true / predicted p)"
    if len(index) == 0:
        tiles = np.zeros((1,) + images.shape[1:3])
        captions = [("none", "misclassified", 0.0)]
    else:
        tiles = images[index]
    if tiles.ndim == 4 and tiles.shape[-1] == 1:
        tiles = tiles[..., 0]
    ncols = int(ncols or min(len(tiles), 8))
    if have_matplotlib():
        plt = _pyplot()
        nrows = -(-len(tiles) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows + 0.4), squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, tile, (true, pred, p) in zip(axes.flat, tiles, captions):
            ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None)
            ax.set_title(f"{_short(true, 12)}\n> {_short(pred, 12)} {p:.2f}", fontsize=8)
        fig.suptitle(heading, fontsize=9)
        _save_figure(plt, fig, path)
    else:
        _png.write_png(path, _raster_captioned(tiles, captions, ncols, heading))
    return path


def _raster_captioned(tiles, captions, ncols, heading):
    from cnnc._font import GLYPH_H, draw_text, text_size
    scale = max(1, 84 // max(tiles.shape[1], tiles.shape[2]))
    tile_h, tile_w = tiles.shape[1] * scale, tiles.shape[2] * scale
    cell_w = max(tile_w, text_size("x" * 12)[0]) + 8
    cell_h = tile_h + 2 * (GLYPH_H + 3) + 8
    nrows = -(-len(tiles) // ncols)
    top = GLYPH_H + 12
    canvas = np.full((top + nrows * cell_h, max(ncols * cell_w, text_size(heading)[0] + 16), 3), 255, np.uint8)
    draw_text(canvas, 8, 6, heading)
    scaled = np.rint(_normalize_tiles(tiles) * 255).astype(np.uint8)
    for k, (tile, (true, pred, p)) in enumerate(zip(scaled, captions)):
        r, col = divmod(k, ncols)
        y, x = top + r * cell_h, col * cell_w + (cell_w - tile_w) // 2
        tile = tile.repeat(scale, axis=0).repeat(scale, axis=1)
        canvas[y:y + tile_h, x:x + tile_w] = tile[..., None] if tile.ndim == 2 else tile
        draw_text(canvas, col * cell_w + 4, y + tile_h + 3, _short(true, 12))
        draw_text(canvas, col * cell_w + 4, y + tile_h + GLYPH_H + 6, f"{_short(pred, 8)} {p:.2f}",
                  color=(200, 30, 30))
    return canvas
