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


def _predictions(rng, n=400, c=5):
    truth = rng.integers(0, c, n)
    probs = rng.dirichlet(np.ones(c), n)
    probs[np.arange(n) % 3 == 0, :] *= 0.2
    probs[np.arange(n) % 3 == 0, truth[np.arange(n) % 3 == 0]] += 0.8  # a third right for sure
    return truth, probs


def test_confusion_matrix_counts_as_numpy():
    rng = np.random.default_rng(3)
    truth, probs = _predictions(rng)
    pred = probs.argmax(1)
    reference = np.zeros((5, 5), np.int64)
    for t, p in zip(truth, pred):
        reference[t, p] += 1
    np.testing.assert_array_equal(visualize.confusion_matrix(truth, probs), reference)
    np.testing.assert_array_equal(visualize.confusion_matrix(truth[:, None], pred), reference)
    assert visualize.confusion_matrix([0, 1], [1, 1], num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match="out of range"):
        visualize.confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="samples"):
        visualize.confusion_matrix([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="negative"):
        visualize.confusion_matrix([0, -1], [0, 1])


def test_hardest_misclassified_order():
    rng = np.random.default_rng(4)
    truth, probs = _predictions(rng)
    wrong = np.flatnonzero(probs.argmax(1) != truth)
    p_true = probs[np.arange(len(truth)), truth]
    got = visualize.hardest_misclassified(truth, probs)
    assert sorted(got.tolist()) == wrong.tolist()
    assert np.all(np.diff(p_true[got]) >= 0)                   # lowest true-class probability first
    assert p_true[got[0]] == p_true[wrong].min()
    np.testing.assert_array_equal(visualize.hardest_misclassified(truth, probs, count=7), got[:7])
    assert len(visualize.hardest_misclassified(truth, np.eye(5)[truth])) == 0


def _colour_mask(image, colour):
    return (image[..., :3].astype(int) == np.array(colour)).all(axis=-1)


def test_confusion_matrix_picture(tmp_path, backend):
    rng = np.random.default_rng(5)
    truth, probs = _predictions(rng, c=4)
    counts = visualize.confusion_matrix(truth, probs)
    path = visualize.plot_confusion_matrix(truth, probs, tmp_path / "cm.png",
                                           class_names=["tee", "trouser", "coat", "bag"])
    image = _png.read_png(path)
    assert open(path, "rb").read(8) == _png.SIGNATURE and image.shape[0] > 100 and image.shape[1] > 100
    if backend == "builtin":
        dark = image[..., :3].max(axis=-1) == 0
        white = image[..., :3].min(axis=-1) == 255
        for text in ("tee", "trouser", "coat", "bag", "predicted"):
            assert _find(dark, _text_mask(text)), text
        share = counts / counts.sum(1, keepdims=True)
        for i in range(4):
            for j in range(4):   # every count drawn, black on light cells and white on dark ones
                mask = _text_mask(str(counts[i, j]))
                assert _find(white if share[i, j] > 0.5 else dark, mask), (i, j)
                assert _colour_mask(image, visualize._cell_colour(share[i, j])).any()
    with pytest.raises(ValueError, match="class_names"):
        visualize.plot_confusion_matrix(truth, probs, tmp_path / "x.png", class_names=["a"])


def test_misclassified_picture(tmp_path, backend):
    rng = np.random.default_rng(6)
    truth, probs = _predictions(rng, n=60, c=3)
    images = rng.integers(0, 256, (60, 28, 28, 1)).astype(np.uint8)
    hardest = visualize.hardest_misclassified(truth, probs, count=10)
    path = visualize.plot_misclassified(images, truth, probs, tmp_path / "wrong.png",
                                        class_names=["shirt", "coat", "bag"], count=10, ncols=5)
    image = _png.read_png(path)
    assert open(path, "rb").read(8) == _png.SIGNATURE
    if backend == "builtin":
        scale = 84 // 28
        first = images[hardest[0], :, :, 0]
        expected = np.rint(visualize._normalize_tiles(first[None])[0] * 255).astype(np.uint8)
        expected = expected.repeat(scale, 0).repeat(scale, 1)
        gray = image[..., 0]
        windows = np.lib.stride_tricks.sliding_window_view(gray, expected.shape)
        assert (windows == expected).all(axis=(2, 3)).any()       # the hardest image is drawn
        dark = image[..., :3].max(axis=-1) == 0
        assert _find(dark, _text_mask(["shirt", "coat", "bag"][truth[hardest[0]]]))
    nothing = visualize.plot_misclassified(images[:3], truth[:3], np.eye(3)[truth[:3]], tmp_path / "none.png")
    assert open(nothing, "rb").read(8) == _png.SIGNATURE
