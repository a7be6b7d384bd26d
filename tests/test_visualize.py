"""cnnc.visualize: grids, filters, curves (built-in PNG writer and, when
installed, matplotlib)."""
import numpy as np
import pytest

from cnnc import _png, visualize


@pytest.fixture(params=["builtin", "matplotlib"])
def backend(request, monkeypatch):
    if request.param == "matplotlib":
        pytest.importorskip("matplotlib")
    else:
        monkeypatch.setattr(visualize, "have_matplotlib", lambda: False)
    return request.param


def test_image_grid_layout_and_scaling():
    tiles = np.stack([np.full((2, 3), v, np.float32) for v in range(5)])
    tiles[:, 0, 0] = -1  # each tile then spans [-1, v]: stretched to 0..255 per tile
    grid = visualize.image_grid(tiles, ncols=3, pad=1, background=0.5)
    assert grid.shape == (2 * 2 + 3, 3 * 3 + 4) and grid.dtype == np.uint8
    assert grid[0, 0] == 128 and grid[1, 1] == 0 and grid[1, 2] == 255    # tile 0 at (1, 1)
    assert grid[4, 5] == 0 and grid[5, 6] == 255                          # tile 4 at (4, 5)
    assert grid[5, 10] == 128                                             # empty slot
    big = visualize.image_grid(tiles[:1], scale=4, pad=0)
    assert big.shape == (8, 12)
    rgb = visualize.image_grid(np.random.rand(3, 4, 4, 3))
    assert rgb.shape[-1] == 3
    with pytest.raises(ValueError):
        visualize.image_grid(np.zeros((0, 3, 3)))


def test_filters_grid_from_kernels():
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)
    tiles = visualize.filters_grid(kernel)
    np.testing.assert_allclose(tiles, np.moveaxis(kernel.mean(axis=2), 2, 0))
    np.testing.assert_array_equal(visualize.filters_grid(kernel, channel=1), np.moveaxis(kernel[:, :, 1], 2, 0))
    assert visualize.filters_grid(np.zeros((3, 3, 3, 5))).shape == (5, 3, 3, 3)
    with pytest.raises(ValueError):
        visualize.filters_grid(np.zeros((3, 3)))


def test_png_files(tmp_path, backend):
    kernel = np.random.default_rng(0).standard_normal((5, 5, 1, 6))
    path = visualize.plot_filters(kernel, tmp_path / "f.png")
    image = _png.read_png(path) if backend == "builtin" else None
    assert open(path, "rb").read(8) == _png.SIGNATURE
    if image is not None:
        assert image.shape[0] > 5 * 2 and image.shape[1] > 5 * 3
    history = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.6, 0.8, 0.85],
               "val_loss": [0.9, 0.7, 0.6], "val_accuracy": [0.65, 0.75, 0.8]}
    path = visualize.plot_history(history, tmp_path / "h.png")
    assert open(path, "rb").read(8) == _png.SIGNATURE
    if backend == "builtin":
        img = _png.read_png(path)
        assert img.shape == (300, 840, 3)  # two panels of 420 x 300
        colors = {tuple(c) for c in img.reshape(-1, 3)}
        assert (31, 119, 180) in colors and (255, 127, 14) in colors   # training and validation
    visualize.plot_history({"loss": [0.5]}, tmp_path / "one.png")
    with pytest.raises(ValueError):
        visualize.plot_history({}, tmp_path / "none.png")


def _find(image, template):
    """Whether the boolean ``template`` occurs in the boolean ``image``."""
    th, tw = template.shape
    windows = np.lib.stride_tricks.sliding_window_view(image, (th, tw))
    return bool((windows == template).all(axis=(2, 3)).any())


def _text_mask(text):
    from cnnc._font import draw_text, text_size
    w, h = text_size(text)
    canvas = np.full((h, w, 3), 255, np.uint8)
    draw_text(canvas, 0, 0, text)
    return canvas[..., 0] == 0


def test_builtin_curves_have_labels_ticks_and_legend(tmp_path, monkeypatch):
    monkeypatch.setattr(visualize, "have_matplotlib", lambda: False)
    history = {"loss": [0.9, 0.6, 0.5, 0.45], "val_loss": [0.8, 0.7, 0.6, 0.62],
               "accuracy": [0.6, 0.7, 0.8, 0.82], "val_accuracy": [0.62, 0.7, 0.75, 0.76]}
    path = visualize.plot_history(history, tmp_path / "curves.png")
    image = _png.read_png(path)
    dark = image[..., :3].max(axis=-1) == 0 if image.ndim == 3 else image == 0
    for text in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "1", "2", "3", "4", "0.5"):
        assert _find(dark, _text_mask(text)), text
    assert not _find(dark, _text_mask("1.5"))  # epochs are whole numbers


def test_feature_map_grid_leaves_empty_cells_neutral(tmp_path):
    pytest.importorskip("matplotlib")
    tiles = np.random.default_rng(0).random((5, 8, 8))  # a 3x3 grid: 4 empty cells
    path = visualize.save_image_grid(tiles, tmp_path / "maps.png", scale=8, cmap="viridis")
    image = _png.read_png(path)[..., :3].astype(int)
    h, w = image.shape[:2]
    corner = image[int(h * 0.85), int(w * 0.85)]  # inside the last, empty cell
    assert (corner >= 250).all(), corner
