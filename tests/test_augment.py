"""Augmentation kernels against NumPy references written here."""
import math

import numpy as np
import pytest

import cnnc
from cnnc import ops

U = ops.augment_uniform


def _fill_index(i, n, mode):
    i = np.asarray(i, np.int64)
    inside = (i >= 0) & (i < n)
    if mode == "constant":
        return np.where(inside, i, -1)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        k = np.mod(i, 2 * n)
        return np.where(k < n, k, 2 * n - 1 - k)
    return np.mod(i, n)


def warp_reference(x, m, out_hw, interpolation, fill_mode, fill):
    """Float64 NumPy affine warp; coordinates rounded to float32 exactly as
    the documented formula (row term first, then the column term)."""
    n, h, w, c = x.shape
    oh, ow = out_hw
    y = np.empty((n, oh, ow, c))
    f32 = np.float32
    for i in range(n):
        mi = m[i] if m.ndim == 2 else m
        v = np.arange(oh, dtype=f32)[:, None]
        u = np.arange(ow, dtype=f32)[None, :]
        xs = u * f32(mi[0]) + (v * f32(mi[1]) + f32(mi[2]))
        ys = u * f32(mi[3]) + (v * f32(mi[4]) + f32(mi[5]))
        img = x[i].astype(np.float64)

        def read(yy, xx):
            yi, xi = _fill_index(yy, h, fill_mode), _fill_index(xx, w, fill_mode)
            ok = (yi >= 0) & (xi >= 0)
            vals = img[np.where(ok, yi, 0), np.where(ok, xi, 0)]
            return np.where(ok[..., None], vals, fill)

        if interpolation == "nearest":
            y[i] = read(np.floor(ys + f32(0.5)).astype(np.int64), np.floor(xs + f32(0.5)).astype(np.int64))
            continue
        x0, y0 = np.floor(xs), np.floor(ys)
        fx, fy = (xs - x0)[..., None].astype(np.float64), (ys - y0)[..., None].astype(np.float64)
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        top = read(y0, x0) * (1 - fx) + read(y0, x0 + 1) * fx
        bottom = read(y0 + 1, x0) * (1 - fx) + read(y0 + 1, x0 + 1) * fx
        y[i] = top * (1 - fy) + bottom * fy
    return y


def affine_matrix_reference(h, w, seed, i, rotation, ty, tx, zy, zx=None):
    theta = rotation[0] + U(seed, i, 0) * (rotation[1] - rotation[0])
    dy = (ty[0] + U(seed, i, 1) * (ty[1] - ty[0])) * h
    dx = (tx[0] + U(seed, i, 2) * (tx[1] - tx[0])) * w
    sy = 1 + zy[0] + U(seed, i, 3) * (zy[1] - zy[0])
    sx = sy if zx is None else 1 + zx[0] + U(seed, i, 4) * (zx[1] - zx[0])
    cy, cx = (h - 1) / 2, (w - 1) / 2
    a = np.array([[sx * math.cos(theta), -sx * math.sin(theta)], [sy * math.sin(theta), sy * math.cos(theta)]])
    off = np.array([cx, cy]) - a @ np.array([cx + dx, cy + dy])
    return np.array([a[0, 0], a[0, 1], off[0], a[1, 0], a[1, 1], off[1]])


@pytest.fixture
def images(rng):
    return rng.standard_normal((5, 9, 11, 3)).astype(np.float32) * 10


def test_generator_is_uniform_and_counter_based():
    draws = np.array([U(7, i, s) for i in range(2000) for s in range(3)])
    assert 0 <= draws.min() and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.02
    assert U(7, 3, 1) == U(7, 3, 1) != U(8, 3, 1)
    assert U(2**64 - 1, 0, 0) == U(-1, 0, 0)


def test_flip(isa, threads, images):
    for seed in (0, 5):
        for hz, vt in ((True, False), (False, True), (True, True)):
            got = ops.random_flip(images, horizontal=hz, vertical=vt, seed=seed)
            for i in range(len(images)):
                ref = images[i]
                if hz and U(seed, i, 0) < 0.5:
                    ref = ref[:, ::-1]
                if vt and U(seed, i, 1) < 0.5:
                    ref = ref[::-1]
                np.testing.assert_array_equal(got[i], ref)
    np.testing.assert_array_equal(ops.random_flip(images, False, False), images)
    flips = [U(3, i, 0) < 0.5 for i in range(64)]
    assert 15 < sum(flips) < 49


def test_crop_with_padding(isa, threads, images):
    n, h, w, c = images.shape
    for (oh, ow, pad, fill) in ((9, 11, 2, 0.0), (5, 7, 0, 0.0), (12, 4, 3, -1.5), (13, 15, 2, 9.0)):
        got = ops.random_crop(images, oh, ow, padding=pad, fill_value=fill, seed=11)
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
        for i in range(n):
            top = min(int(U(11, i, 0) * np.float32(h + 2 * pad - oh + 1)), h + 2 * pad - oh)
            left = min(int(U(11, i, 1) * np.float32(w + 2 * pad - ow + 1)), w + 2 * pad - ow)
            np.testing.assert_array_equal(got[i], padded[i, top:top + oh, left:left + ow])
    np.testing.assert_array_equal(ops.random_crop(images, h, w), images)
    with pytest.raises(ValueError, match="does not fit"):
        ops.random_crop(images, h + 5, w, padding=2)


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_warp_matches_reference(isa, fill_mode, interpolation, rng):
    for c in (1, 3):
        x = rng.standard_normal((3, 10, 13, c)).astype(np.float32)
        m = np.concatenate([rng.uniform(0.6, 1.4, (3, 1)), rng.uniform(-0.5, 0.5, (3, 1)),
                            rng.uniform(-4, 4, (3, 1)), rng.uniform(-0.5, 0.5, (3, 1)),
                            rng.uniform(0.6, 1.4, (3, 1)), rng.uniform(-4, 4, (3, 1))], axis=1).astype(np.float32)
        for out_hw in ((10, 13), (7, 40)):
            got = ops.affine_warp(x, m, output_size=out_hw, interpolation=interpolation,
                                  fill_mode=fill_mode, fill_value=0.25)
            ref = warp_reference(x, m, out_hw, interpolation, fill_mode, 0.25)
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_affine_warp_identity_is_exact(isa, images):
    eye = np.array([1, 0, 0, 0, 1, 0], np.float32)
    for mode in ("constant", "nearest", "reflect", "wrap"):
        for interp in ("bilinear", "nearest"):
            np.testing.assert_array_equal(ops.affine_warp(images, eye, fill_mode=mode, interpolation=interp), images)
            np.testing.assert_array_equal(ops.affine_warp(images[..., :1], eye, fill_mode=mode), images[..., :1])
    np.testing.assert_array_equal(ops.random_affine(images, seed=3), images)


def test_rotation_is_counter_clockwise_about_the_centre():
    x = np.zeros((1, 5, 5, 1), np.float32)
    x[0, 0, :, 0] = 1  # top row
    y = ops.random_affine(x, rotation=(math.pi / 2, math.pi / 2), fill_mode="constant")
    np.testing.assert_allclose(y[0, :, :, 0], np.rot90(x[0, :, :, 0]), atol=1e-6)
    z = ops.random_affine(x, translate_y=(0.4, 0.4), translate_x=(-0.2, -0.2), fill_mode="constant")
    np.testing.assert_allclose(z[0, 2, :4, 0], 1, atol=1e-6)  # moved down 2, left 1
    assert z[0].sum() == pytest.approx(4)


def test_random_affine_is_one_warp(isa, threads, images):
    kw = dict(rotation=(-0.4, 0.3), translate_y=0.1, translate_x=(-0.2, 0.05), zoom_y=(-0.2, 0.3))
    n, h, w, c = images.shape
    m = ops.random_affine_matrices(n, h, w, seed=9, **kw)
    for i in range(n):
        ref = affine_matrix_reference(h, w, 9, i, (-0.4, 0.3), (-0.1, 0.1), (-0.2, 0.05), (-0.2, 0.3))
        np.testing.assert_allclose(m[i], ref, rtol=1e-5, atol=1e-5)
    got = ops.random_affine(images, fill_mode="reflect", seed=9, **kw)
    np.testing.assert_array_equal(got, ops.affine_warp(images, m, fill_mode="reflect"))
    m2 = ops.random_affine_matrices(n, h, w, zoom_y=(0.1, 0.2), zoom_x=(-0.3, -0.2), seed=4)
    for i in range(n):
        ref = affine_matrix_reference(h, w, 4, i, (0, 0), (0, 0), (0, 0), (0.1, 0.2), (-0.3, -0.2))
        np.testing.assert_allclose(m2[i], ref, rtol=1e-5, atol=1e-5)


def test_bilinear_fast_path_on_large_single_channel_images(isa, threads, rng):
    x = rng.standard_normal((4, 64, 80, 1)).astype(np.float32)
    m = ops.random_affine_matrices(4, 64, 80, rotation=0.5, zoom_y=(-0.3, 0.3), translate_x=0.2, seed=1)
    ref = warp_reference(x, m, (64, 80), "bilinear", "wrap", 0.0)
    np.testing.assert_allclose(ops.affine_warp(x, m, fill_mode="wrap"), ref, rtol=1e-5, atol=1e-5)


def test_brightness_and_contrast(isa, threads, images):
    n = len(images)
    got = ops.random_brightness(images, -3, 5, value_range=(-10, 12), seed=2)
    for i in range(n):
        delta = np.float32(-3 + U(2, i, 0) * 8)
        np.testing.assert_allclose(got[i], np.clip(images[i] + delta, -10, 12), rtol=1e-6, atol=1e-5)
    for c in (1, 3):
        x = images[..., :c].copy()
        got = ops.random_contrast(x, 0.5, 1.5, seed=6)
        clipped = ops.random_contrast(x, 0.5, 1.5, value_range=(-5, 5), seed=6)
        for i in range(n):
            f = 0.5 + U(6, i, 0) * 1.0
            mean = x[i].astype(np.float64).mean(axis=(0, 1))
            ref = (x[i] - mean) * f + mean
            np.testing.assert_allclose(got[i], ref, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(clipped[i], np.clip(ref, -5, 5), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(ops.random_brightness(images, 0, 0), images)
    np.testing.assert_array_equal(ops.random_contrast(images, 1, 1), images)


def test_random_erasing(isa, threads, images):
    n, h, w, c = images.shape
    got = ops.random_erasing(images, probability=0.7, area=(0.1, 0.4), ratio=(0.5, 2.0), value=-7, seed=5)
    erased = 0
    for i in range(n):
        ref = images[i].copy()
        if U(5, i, 0) < np.float32(0.7):
            for attempt in range(10):
                s = 1 + 4 * attempt
                target = h * w * (np.float32(0.1) + U(5, i, s) * (np.float32(0.4) - np.float32(0.1)))
                lr = (np.log(np.float32(0.5)), np.log(np.float32(2.0)))
                ratio = math.exp(np.float32(lr[0] + U(5, i, s + 1) * (lr[1] - lr[0])))
                eh, ew = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
                if eh < 1 or ew < 1 or eh > h or ew > w:
                    continue
                top = min(int(U(5, i, s + 2) * np.float32(h - eh + 1)), h - eh)
                left = min(int(U(5, i, s + 3) * np.float32(w - ew + 1)), w - ew)
                ref[top:top + eh, left:left + ew] = -7
                erased += 1
                break
        np.testing.assert_array_equal(got[i], ref)
    assert erased >= 1
    np.testing.assert_array_equal(ops.random_erasing(images, probability=0.0), images)


def _all_transforms(x, seed):
    return [ops.random_flip(x, True, True, seed=seed),
            ops.random_crop(x, x.shape[1], x.shape[2], padding=3, seed=seed),
            ops.random_affine(x, rotation=0.3, translate_y=0.1, zoom_y=0.2, seed=seed),
            ops.random_brightness(x, -1, 1, seed=seed),
            ops.random_contrast(x, 0.5, 1.5, seed=seed),
            ops.random_erasing(x, 0.9, seed=seed)]


def test_same_seed_same_output_at_1_and_2_threads(isa, rng):
    x = rng.standard_normal((64, 28, 28, 1)).astype(np.float32)
    before = cnnc.get_num_threads()
    try:
        cnnc.set_num_threads(1)
        one = _all_transforms(x, 42)
        cnnc.set_num_threads(2)
        two = _all_transforms(x, 42)
    finally:
        cnnc.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[2], _all_transforms(x, 43)[2])


def test_in_place(images):
    for fn in (lambda x, out: ops.random_flip(x, True, True, seed=1, out=out),
               lambda x, out: ops.random_crop(x, 9, 11, padding=2, seed=1, out=out),
               lambda x, out: ops.random_affine(x, rotation=0.5, seed=1, out=out),
               lambda x, out: ops.random_contrast(x, 0.2, 2, seed=1, out=out),
               lambda x, out: ops.random_erasing(x, 1.0, seed=1, out=out)):
        expected = fn(images, None)
        x = images.copy()
        assert fn(x, x) is x
        np.testing.assert_array_equal(x, expected)


def test_errors(images):
    with pytest.raises(ValueError, match="batch of images"):
        ops.random_flip(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="fill_mode"):
        ops.random_affine(images, fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation"):
        ops.affine_warp(images, np.eye(2, 3).ravel(), interpolation="cubic")
    with pytest.raises(ValueError, match="not finite"):
        ops.affine_warp(images, np.array([np.nan, 0, 0, 0, 1, 0]))
    with pytest.raises(ValueError, match="matrices"):
        ops.affine_warp(images, np.zeros((2, 6)))
    with pytest.raises(ValueError, match="overlaps"):
        ops.random_flip(images[:4], out=images.reshape(-1)[images[0].size:].reshape(4, 9, 11, 3))
    with pytest.raises(ValueError, match="probability"):
        ops.random_erasing(images, probability=1.5)
    with pytest.raises(ValueError, match="zoom"):
        ops.random_affine(images, zoom_y=(-1.5, 0))
    with pytest.raises(ValueError, match="lower > upper"):
        ops.random_affine(images, rotation=(1, 0))
    with pytest.raises(TypeError, match="seed"):
        ops.random_flip(images, seed=1.5)
    assert ops.random_flip(np.zeros((0, 4, 4, 1), np.float32)).shape == (0, 4, 4, 1)


def test_every_isa_gives_the_same_bits(rng):
    from conftest import AVAILABLE_ISAS
    x = rng.standard_normal((8, 30, 31, 1)).astype(np.float32)
    previous = cnnc.isa()
    results = []
    try:
        for name in AVAILABLE_ISAS:
            cnnc.set_isa(name)
            results.append(_all_transforms(x, 8))
    finally:
        cnnc.set_isa(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
