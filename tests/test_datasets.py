"""IDX, npz, PNG and image-folder loaders on real and corrupted files."""
import gzip
import os

import numpy as np
import pytest

from cnnc import _png
from cnnc.datasets import (fashion_mnist, find_idx_files, load_idx, load_image_folder,
                           load_image_folders, load_npz, mnist, read_idx, read_idx_pair,
                           read_image, save_npz, write_idx)
from cnnc.datasets import images as images_module

SAMPLE = fashion_mnist.SAMPLE_DIR


def _raw_idx(code, shape, payload):
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes() + payload


def test_bundled_sample_is_real_stratified_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = load_idx(SAMPLE)
    assert x_train.shape == (3000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (1000, 28, 28) and y_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [300] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    # Real images: dark background, varied content, trousers taller than wide.
    assert x_train[:, 0, 0].mean() < 10 and 50 < x_train.mean() < 120
    trousers = x_train[y_train == 1].astype(np.float32).mean(axis=0) > 60
    assert trousers.any(axis=1).sum() > trousers.any(axis=0).sum()
    size = sum(os.path.getsize(os.path.join(SAMPLE, f)) for f in os.listdir(SAMPLE))
    assert size < 2_000_000
    assert "Zalando" in open(os.path.join(SAMPLE, "LICENSE")).read()


def test_fashion_mnist_falls_back_to_sample(monkeypatch, tmp_path, capsys):
    from cnnc.datasets import _search
    monkeypatch.setenv("CNNC_DATA", str(tmp_path))
    monkeypatch.setattr(_search, "SYSTEM_ROOT", str(tmp_path / "none"))
    (x, y), (xt, yt) = fashion_mnist.load_data()
    assert x.shape == (3000, 28, 28)
    assert "bundled" in capsys.readouterr().err
    assert fashion_mnist.locate() == (SAMPLE, True)


def test_fashion_mnist_search_order(monkeypatch, tmp_path):
    from cnnc.datasets import _search
    (x, y), (xt, yt) = load_idx(SAMPLE)
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", x[:20])
    write_idx(d / "train-labels-idx1-ubyte", y[:20])
    write_idx(d / "t10k-images-idx3-ubyte.gz", xt[:10])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yt[:10])
    monkeypatch.setattr(_search, "SYSTEM_ROOT", str(tmp_path / "none"))
    monkeypatch.setenv("CNNC_DATA", str(tmp_path))       # found in the sub-directory
    (a, b), (c, e) = fashion_mnist.load_data()
    np.testing.assert_array_equal(a, x[:20])
    np.testing.assert_array_equal(e, yt[:10])
    monkeypatch.delenv("CNNC_DATA")
    assert fashion_mnist.locate(d) == (str(d), False)     # explicit path
    with pytest.raises(FileNotFoundError, match="t10k"):
        fashion_mnist.load_data(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="MNIST was not found"):
        mnist.load_data()
    (a, _), _ = mnist.load_data(d)
    assert a.shape == (20, 28, 28)


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="dataset-fashion-mnist is not installed")
def test_full_fashion_mnist_from_system(monkeypatch):
    monkeypatch.delenv("CNNC_DATA", raising=False)
    (x, y), (xt, yt) = fashion_mnist.load_data(verbose=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
    # The sample is a subset of the full set.
    (xs, ys), _ = load_idx(SAMPLE)
    index = {row.tobytes(): label for row, label in zip(x[y == 3], y[y == 3])}
    assert all(img.tobytes() in index for img in xs[ys == 3][:50])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_all_types(tmp_path, dtype, compress, rng):
    a = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, a)
    raw = open(path, "rb").read()
    assert raw[:2] == (b"\x1f\x8b" if compress else b"\x00\x00")
    b = read_idx(path)
    assert b.dtype == a.dtype and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_idx_header_decoded_by_hand(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(_raw_idx(0x0B, (2, 3), np.arange(6, dtype=">i2").tobytes()))
    np.testing.assert_array_equal(read_idx(path), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_corrupt_files(tmp_path, gz):
    good = _raw_idx(0x08, (4, 2, 2), bytes(range(16)))

    def put(name, data):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if gz else data)
        return str(path)

    with pytest.raises(ValueError, match="truncated IDX file.*needs 32 bytes, found 31"):
        read_idx(put("trunc", good[:-1]))
    with pytest.raises(ValueError, match=r"trunc.*truncated IDX header"):
        read_idx(put("trunc2", good[:9]))
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(put("magic", b"\x01\x00" + good[2:]))
    with pytest.raises(ValueError, match="unknown element type 0x07"):
        read_idx(put("dtype", good[:2] + b"\x07" + good[3:]))
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(put("ndim0", b"\x00\x00\x08\x00"))
    with pytest.raises(ValueError, match="too short"):
        read_idx(put("tiny", b"\x00\x00"))
    with pytest.raises(ValueError, match="beyond"):
        read_idx(put("extra", good + b"\x00"))
    # ndim byte claims 2 dimensions: the third size becomes data and the counts disagree.
    with pytest.raises(ValueError, match="magic2"):
        read_idx(put("magic2", good[:3] + b"\x02" + good[4:]))
    with pytest.raises(ValueError, match="implausibly large"):
        read_idx(put("huge", _raw_idx(0x08, (2**31, 2**31, 16), b"")))
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


def test_idx_truncated_gzip_stream(tmp_path):
    data = gzip.compress(_raw_idx(0x08, (100, 28, 28), bytes(78400)))
    path = tmp_path / "t.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.gz.*gzip"):
        read_idx(path)


def test_idx_pair_and_directory_errors(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="5 images but .*train-labels-idx1-ubyte holds 4 labels"):
        read_idx_pair(tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(ValueError, match="1-D label"):
        read_idx_pair(tmp_path / "train-images-idx3-ubyte", tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(FileNotFoundError, match="test images"):
        load_idx(tmp_path)


def test_emnist_style_prefixes(tmp_path, rng):
    for prefix in ("emnist-letters-", "emnist-digits-"):
        for split in ("train", "test"):
            n = 6 if split == "train" else 3
            write_idx(tmp_path / f"{prefix}{split}-images-idx3-ubyte.gz",
                      rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
            write_idx(tmp_path / f"{prefix}{split}-labels-idx1-ubyte.gz",
                      rng.integers(0, 9, n, dtype=np.uint8))
    with pytest.raises(ValueError, match="prefix"):
        find_idx_files(tmp_path)
    (x, y), (xt, yt) = load_idx(tmp_path, prefix="emnist-digits-")
    assert x.shape == (6, 28, 28) and xt.shape == (3, 28, 28)


def test_npz(tmp_path, rng):
    x = rng.integers(0, 255, (8, 5, 5), dtype=np.uint8)
    y = np.arange(8, dtype=np.uint8)
    save_npz(tmp_path / "d.npz", x, y, x[:3], y[:3])
    (a, b), (c, d) = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(d, y[:3])
    (a, _), _ = mnist.load_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(a, x)
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(ValueError, match="missing"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "len.npz", x_train=x, y_train=y[:5], x_test=x, y_test=y)
    with pytest.raises(ValueError, match="y_train"):
        load_npz(tmp_path / "len.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="junk.npz"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([{}], dtype=object), y_train=y[:1],
             x_test=x, y_test=y)
    with pytest.raises(ValueError):
        load_npz(tmp_path / "obj.npz")


@pytest.mark.parametrize("shape", [(7, 9), (5, 6, 3), (4, 3, 4), (1, 1, 1)])
def test_png_round_trip(tmp_path, rng, shape):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    _png.write_png(tmp_path / "a.png", img)
    back = _png.read_png(tmp_path / "a.png")
    np.testing.assert_array_equal(back.reshape(img.shape), img)


def test_png_decoder_against_pillow(tmp_path, rng):
    Image = pytest.importorskip("PIL.Image")
    smooth = (np.add.outer(np.arange(20), np.arange(30)) * 4 % 256).astype(np.uint8)
    cases = {"L": smooth, "RGB": np.stack([smooth, smooth[::-1], 255 - smooth], axis=2),
             "RGBA": rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)}
    for mode, arr in cases.items():
        for optimize in (False, True):  # Pillow picks adaptive row filters
            Image.fromarray(arr, mode).save(tmp_path / "p.png", optimize=optimize)
            np.testing.assert_array_equal(_png.read_png(tmp_path / "p.png").reshape(arr.shape), arr)
    Image.fromarray(cases["RGB"]).convert("P", palette=Image.ADAPTIVE, colors=16).save(tmp_path / "q.png")
    ref = np.asarray(Image.open(tmp_path / "q.png").convert("RGB"))
    np.testing.assert_array_equal(_png.read_png(tmp_path / "q.png"), ref)
    Image.fromarray(smooth > 100).save(tmp_path / "b.png")  # 1-bit
    np.testing.assert_array_equal(_png.read_png(tmp_path / "b.png")[:, :, 0], (smooth > 100) * 255)
    Image.fromarray((smooth.astype(np.uint16) * 257)).save(tmp_path / "w.png")  # 16-bit
    np.testing.assert_array_equal(_png.read_png(tmp_path / "w.png")[:, :, 0], smooth)


def test_png_corrupt(tmp_path):
    data = _png.encode_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="not a PNG"):
        _png.decode_png(b"GIF89a" + data[6:])
    with pytest.raises(ValueError, match="CRC"):
        _png.decode_png(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(ValueError, match="truncated"):
        _png.decode_png(data[:-20])


def _make_folder(root, rng, with_pillow_jpeg=False):
    for c, name in enumerate(["cat", "dog", "emu"]):
        os.makedirs(root / name)
        for i in range(4):
            img = np.full((6 + c, 8, 3), 40 * c + i, np.uint8)
            _png.write_png(root / name / f"{i}.png", img)
    (root / "cat" / "notes.txt").write_text("not an image")


@pytest.mark.parametrize("pillow", [True, False])
def test_image_folder(tmp_path, rng, monkeypatch, pillow):
    if pillow:
        pytest.importorskip("PIL")
    else:
        monkeypatch.setattr(images_module, "_pillow", lambda: None)
    _make_folder(tmp_path, rng)
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path)
    x, y, names = load_image_folder(tmp_path, image_size=(6, 8), color_mode="grayscale")
    assert names == ["cat", "dog", "emu"] and x.shape == (12, 6, 8, 1)
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(x[:4, 0, 0, 0], [0, 1, 2, 3])   # constant images survive resize
    np.testing.assert_array_equal(x[8:, 3, 3, 0], [80, 81, 82, 83])
    x, y, names = load_image_folder(tmp_path, image_size=(5, 5), color_mode="rgba", class_names=["emu", "cat"])
    assert x.shape == (8, 5, 5, 4) and names == ["emu", "cat"] and (x[..., 3] == 255).all()
    (a, b), (c, d), _ = load_image_folders(tmp_path, image_size=(6, 8), validation_split=0.25)
    assert len(a) == 9 and len(c) == 3 and sorted(d) == [0, 1, 2]
    with pytest.raises(ValueError, match="color_mode"):
        load_image_folder(tmp_path, color_mode="cmyk")
    with pytest.raises(ValueError, match="no sub-folder"):
        load_image_folder(tmp_path, class_names=["yak"])


def test_jpeg_without_pillow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0fake")
    monkeypatch.setattr(images_module, "_pillow", lambda: None)
    with pytest.raises(ImportError, match="pip install pillow"):
        read_image(tmp_path / "a.jpg")


def test_resize_matches_pillow(rng):
    Image = pytest.importorskip("PIL.Image")
    img = (np.add.outer(np.arange(12), np.arange(16)) * 9 % 256).astype(np.uint8)
    for size in ((24, 32), (18, 20)):  # upsampling: Pillow's bilinear is a plain tent there
        ref = np.asarray(Image.fromarray(img).resize(size[::-1], Image.BILINEAR))
        got = images_module.resize_bilinear(img[:, :, None], size)[:, :, 0]
        assert np.abs(ref.astype(int) - got).max() <= 1
